"""Compute Engine, Cloud TPU and the billing catalog behind one base URL.

``SCHED_GCP_API_ENDPOINT`` sends every Google API to one place, as a proxy would; this
fake answers all three by taking the routes of the per-API fakes and merging their SKUs.
"""

from __future__ import annotations

from typing import Any

from tests.fakes.google_compute import FakeCompute
from tests.fakes.google_tpu import FakeTpu
from tests.fakes.http import FakeHttpServer, Request

_SKUS = r"/v1/services/(?P<service>[^/]+)/skus"


class FakeGoogle:
    def __init__(self, project: str = "test-project") -> None:
        self.compute = FakeCompute(project)
        self.tpu = FakeTpu(project)
        self.server = FakeHttpServer()
        for fake in (self.compute, self.tpu):
            self.server.routes.extend(
                r for r in fake.server.routes if r[1].pattern != _SKUS + r"\Z"
            )
        self.server.route("GET", _SKUS, self._skus)

    def _skus(self, req: Request) -> dict[str, Any]:
        service = req.params["service"]
        mine = [s for s in self.compute.skus if str(s["name"]).split("/")[1] == service]
        return {"skus": mine + self.tpu.skus.get(service, [])}

    @property
    def url(self) -> str:
        return self.server.url

    def __enter__(self) -> FakeGoogle:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()
