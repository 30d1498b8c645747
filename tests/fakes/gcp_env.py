"""GCP for tests: the Compute + Billing fake with the zones and machine types the tests
use, and a way to pick one of the feed's offerings."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from providers.gcp_prices import n1_host
from providers.offering import Offering
from tests.fakes.google_compute import FakeCompute, us_central1_skus
from tests.fakes.http import Request

PROJECT = "test-project"
NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
IMAGE = "projects/debian-cloud/global/images/family/debian-12"


def gcp_fake() -> Iterator[FakeCompute]:
    """Four zones (one DOWN, one out of capacity), GPU machine types, the metadata route."""
    f = FakeCompute(PROJECT, skus=us_central1_skus())
    f.add_zone("us-central1-a")
    f.add_zone("us-central1-b")
    f.add_zone("us-central1-c", status="DOWN")
    f.add_zone("europe-west4-a")
    a = "us-central1-a"
    f.add_machine_type(a, "a2-highgpu-1g", 12, 85, {"nvidia-tesla-a100": 1})
    f.add_machine_type(a, "a2-ultragpu-1g", 12, 170, {"nvidia-a100-80gb": 1}, 1)
    f.add_machine_type(a, "a3-highgpu-1g", 26, 234, {"nvidia-h100-80gb": 1}, 2)
    f.add_machine_type(a, "g2-standard-4", 4, 16, {"nvidia-l4": 1})
    f.add_machine_type(a, "e2-standard-4", 4, 16)
    for gpus in (1, 2, 4, 8):
        f.add_machine_type(a, n1_host(gpus), 8 * gpus, 30 * gpus)
    f.add_accelerator_type(a, "nvidia-tesla-t4", 4)
    f.add_accelerator_type(a, "nvidia-tesla-v100", 8)
    f.add_accelerator_type(a, "nvidia-tesla-a100", 16)  # comes with A2; not attachable
    f.add_machine_type("us-central1-b", "g2-standard-4", 4, 16, {"nvidia-l4": 1})
    f.add_machine_type("europe-west4-a", "g2-standard-4", 4, 16, {"nvidia-l4": 1})
    f.add_zone("us-east1-b")
    f.add_machine_type("us-east1-b", "n1-standard-8", 8, 30)
    f.add_accelerator_type("us-east1-b", "nvidia-tesla-t4", 4)
    f.exhausted_zones.add("us-east1-b")
    f.server.route("GET", r"/computeMetadata/v1/instance/preempted", _metadata(f))
    with f:
        yield f


def _metadata(f: FakeCompute) -> Any:
    def handler(req: Request) -> Any:
        if req.headers.get("metadata-flavor") != "Google":
            return 403, b"Missing Metadata-Flavor:Google header."
        return 200, getattr(f, "metadata_answer", b"FALSE")

    return handler


def offering_of(offerings: list[Offering], itype: str, market: str, gpu: str = "", n: int = 0):
    return next(
        o
        for o in offerings
        if o.instance_type == itype
        and o.market == market
        and o.accelerators is not None
        and (not gpu or (o.accelerators.name, o.accelerators.count) == (gpu, n))
    )
