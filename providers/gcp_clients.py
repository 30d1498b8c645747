"""How every Google client is built: real credentials by default, a fake or proxy by setting.

With ``SCHED_GCP_API_ENDPOINT`` set, clients talk REST to that base URL (tests point it at
a local fake); ``SCHED_GCP_ANONYMOUS=1`` sends no credentials. The Google SDKs are imported
here lazily because ``google.cloud.compute_v1`` alone takes seconds to import.
"""

from __future__ import annotations

import threading
from typing import Any

from pydantic import BaseModel


class GoogleEndpoint(BaseModel):
    api_endpoint: str | None = None
    anonymous: bool = False

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for any ``google.cloud.*`` client constructor."""
        kwargs: dict[str, Any] = {"transport": "rest"}
        if self.api_endpoint:
            from google.api_core.client_options import ClientOptions

            kwargs["client_options"] = ClientOptions(api_endpoint=self.api_endpoint)
        if self.anonymous:
            from google.auth.credentials import AnonymousCredentials

            kwargs["credentials"] = AnonymousCredentials()
        return kwargs


class ComputeClients:
    """One ``compute_v1`` client per kind, made on first use and shared by worker threads,
    so credentials are looked up once and the slow SDK import happens only when needed."""

    def __init__(self, endpoint: GoogleEndpoint) -> None:
        self.endpoint = endpoint
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def get(self, kind: str) -> Any:
        with self._lock:
            if kind not in self._clients:
                from google.cloud import compute_v1

                self._clients[kind] = getattr(compute_v1, kind)(**self.endpoint.client_kwargs())
            return self._clients[kind]
