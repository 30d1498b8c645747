"""TPU VMs (nodes) behind the Compute interface: launch, describe, delete.

Launch is idempotent through the node id, derived from the request's idempotency key:
``CreateNodeRequest`` has no ``requestId``, so a retry that finds ALREADY_EXISTS takes the
node the first try made. Create and delete are long-running operations, polled through
the API's own operations endpoint at a rate and for a time the caller sets.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from providers.gcp_clients import GoogleEndpoint
from providers.gcp_compute import launch_retry, sanitize_labels
from providers.gcp_tpu import as_dict, tpu_slice
from providers.instances import Instance, InstanceState, LaunchRequest
from providers.offering import MarketKind

# Runtime (software) versions used when the request names none: Google's documented base
# images per generation (https://cloud.google.com/tpu/docs/runtimes).
DEFAULT_RUNTIME_VERSIONS: dict[str, str] = {
    "v2": "tpu-ubuntu2204-base",
    "v3": "tpu-ubuntu2204-base",
    "v4": "tpu-ubuntu2204-base",
    "v5p": "v2-alpha-tpuv5",
    "v5litepod": "v2-alpha-tpuv5-lite",
    "v6e": "v2-alpha-tpuv6e",
}


# ---- nodes (pure) --------------------------------------------------------------------------

_NAME_LEN = 63
_NAME_BAD = re.compile(r"[^a-z0-9-]+")
ALREADY_EXISTS = 6  # google.rpc.Code
_STATES = {
    "READY": InstanceState.RUNNING,
    "STOPPING": InstanceState.STOPPING,
    "DELETING": InstanceState.STOPPING,
    "HIDING": InstanceState.STOPPING,
    "STOPPED": InstanceState.TERMINATED,
    "TERMINATED": InstanceState.TERMINATED,
    "HIDDEN": InstanceState.TERMINATED,
    "PREEMPTED": InstanceState.PREEMPTED,
}  # CREATING, STARTING, RESTARTING, REIMAGING, REPAIRING, UNHIDING, unknown: PENDING
_SETTLING = frozenset({"CREATING", "STARTING", "RESTARTING", "STATE_UNSPECIFIED", ""})


def node_ids(request: LaunchRequest) -> list[str]:
    """``<name>-<key hash>-<i>``: valid node ids (lowercase, start with a letter, at most
    63 characters), the same for the same key, so a retry names the same nodes."""
    base = _NAME_BAD.sub("-", request.name.lower()).strip("-") or "sched"
    if not base[0].isalpha():
        base = f"s-{base}"
    tag = hashlib.sha256(request.idempotency_key.encode()).hexdigest()[:8]
    out = []
    for i in range(request.count):
        suffix = f"-{tag}-{i}"
        out.append(base[: _NAME_LEN - len(suffix)].rstrip("-") + suffix)
    return out


def node_body(
    request: LaunchRequest,
    *,
    runtime_version: str | None = None,
    external_ips: bool = True,
    network: str | None = None,
) -> dict[str, Any]:
    """The REST ``Node`` for one slice of a request."""
    offering = request.offering
    if offering.cloud != "gcp":
        raise ValueError(f"GcpTpuCompute cannot launch a {offering.cloud!r} offering")
    tpu = tpu_slice(offering.instance_type.removeprefix("tpu-"))
    if tpu is None or not offering.instance_type.startswith("tpu-"):
        raise ValueError(f"{offering.instance_type!r} is not a TPU slice (tpu-GEN-SIZE)")
    version = request.image or runtime_version or DEFAULT_RUNTIME_VERSIONS[tpu.generation]
    net: dict[str, Any] = {"enableExternalIps": external_ips}
    if network:
        net["network"] = network
    body: dict[str, Any] = {
        "acceleratorType": tpu.api_type,
        "runtimeVersion": version,
        "networkConfig": net,
        "labels": sanitize_labels(request.tags),
    }
    if offering.market is MarketKind.SPOT:
        body["schedulingConfig"] = {"spot": True}
    if request.user_data is not None:
        body["metadata"] = {"startup-script": request.user_data}
    return body


def _time(value: Any) -> datetime | None:
    if not value:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def instance_from_node(data: Mapping[str, Any]) -> Instance:
    """One REST ``Node`` as ours; the TPU API's PREEMPTED state is the interruption."""
    name = str(data.get("name", ""))
    parts = name.split("/")
    zone = parts[3] if len(parts) >= 6 else ""
    state = str(data.get("state") or "STATE_UNSPECIFIED")
    sched = data.get("schedulingConfig") or {}
    spot = bool(sched.get("spot") or sched.get("preemptible"))
    endpoints = data.get("networkEndpoints") or [{}]
    access = endpoints[0].get("accessConfig") or {}
    health = str(data.get("healthDescription") or "")
    accel = str(data.get("acceleratorType") or "")
    return Instance(
        cloud="gcp",
        zone=zone,
        instance_id=parts[-1],
        instance_type=f"tpu-{accel}" if accel else "",
        state=_STATES.get(state, InstanceState.PENDING),
        spot=spot,
        name=parts[-1],
        private_ip=endpoints[0].get("ipAddress") or None,
        public_ip=access.get("externalIp") or None,
        launched_at=_time(data.get("createTime")),
        tags=dict(data.get("labels") or {}),
        interrupted=state == "PREEMPTED",
        detail=f"{state}: {health}" if health else state,
    )


class TpuOperationError(RuntimeError):
    """A TPU operation finished with an error. ``code`` is google.rpc.Code (8,
    RESOURCE_EXHAUSTED, when the zone has no capacity for the slice)."""

    def __init__(self, operation: str, code: int, message: str) -> None:
        super().__init__(f"{operation}: code {code}: {message}")
        self.code = code


# ---- the Compute protocol (I/O) ------------------------------------------------------------


class GcpTpuCompute:
    """The Compute protocol on Cloud TPU. ``instance_id`` is the node id; nodes that are
    gone are absent from ``describe``. A preempted spot node stays (state PREEMPTED) until
    ``terminate`` deletes it."""

    cloud = "gcp"

    def __init__(
        self,
        project: str,
        endpoint: GoogleEndpoint | None = None,
        *,
        runtime_version: str | None = None,
        external_ips: bool = True,
        network: str | None = None,
        poll_interval: float = 5.0,
        launch_wait_s: float = 30.0,
        retry_deadline: float = 20.0,
        call_timeout: float = 30.0,
    ) -> None:
        """``runtime_version``: used when a request names no image (else the generation's
        default). One launch call follows Google's operations (read every ``poll_interval``)
        for at most ``launch_wait_s``, then reports the slices as they are: a big slice can
        take many minutes to come up, and the controller asks again next pass. Each call is
        retried on throttling and transient errors for at most ``retry_deadline`` seconds
        (the TPU client retries nothing by default) and each try waits ``call_timeout``."""
        self.project = project
        self.endpoint = endpoint or GoogleEndpoint()
        self.runtime_version = runtime_version
        self.external_ips = external_ips
        self.network = network
        self.poll_interval = poll_interval
        self.launch_wait_s = launch_wait_s
        self.retry_deadline = retry_deadline
        self.call_timeout = call_timeout
        self._client_obj: Any = None
        self._lock = threading.Lock()

    def _client(self) -> Any:
        with self._lock:
            if self._client_obj is None:
                from google.cloud import tpu_v2

                self._client_obj = tpu_v2.TpuClient(**self.endpoint.client_kwargs())
            return self._client_obj

    @cached_property
    def _retry(self) -> Any:
        return launch_retry(self.retry_deadline)

    def _bounded(self) -> dict[str, Any]:
        """Per-call ``retry`` and ``timeout``: without them a TPU call has neither."""
        return {"retry": self._retry, "timeout": self.call_timeout}

    def _parent(self, zone: str) -> str:
        return f"projects/{self.project}/locations/{zone}"

    def launch(self, request: LaunchRequest) -> list[Instance]:
        """Create the request's slices and follow them for up to ``launch_wait_s``; a retry
        with the same key finds the slices the first call made instead of making more, and
        a create that failed by then (no capacity) raises TpuOperationError."""
        from google.api_core.exceptions import Conflict
        from google.cloud import tpu_v2

        body = node_body(
            request,
            runtime_version=self.runtime_version,
            external_ips=self.external_ips,
            network=self.network,
        )
        node = tpu_v2.Node.from_json(json.dumps(body))
        zone, ids = request.offering.zone, node_ids(request)
        deadline = time.monotonic() + self.launch_wait_s
        pending: list[tuple[str, Any]] = []
        existing: list[str] = []
        for node_id in ids:
            try:
                op = self._client().create_node(
                    parent=self._parent(zone), node_id=node_id, node=node, **self._bounded()
                )
                pending.append((node_id, op.operation))
            except Conflict:  # made by an earlier try with the same key
                existing.append(node_id)
        errors: list[TpuOperationError] = []
        for node_id, op in pending:
            done = self._wait(op, deadline)
            if not done.done or not done.HasField("error"):
                continue  # still creating (asked again next pass), or created
            if done.error.code == ALREADY_EXISTS:  # lost the race to an earlier try
                existing.append(node_id)
                continue
            what = f"create {zone}/{node_id}"
            errors.append(TpuOperationError(what, done.error.code, done.error.message))
        if errors:
            raise errors[0]
        for node_id in existing:
            self._wait_settled(zone, node_id, deadline)
        return self.describe(zone, ids)

    def describe(self, zone: str, instance_ids: Sequence[str]) -> list[Instance]:
        from google.api_core.exceptions import NotFound

        out = []
        for node_id in instance_ids:
            try:
                name = f"{self._parent(zone)}/nodes/{node_id}"
                node = self._client().get_node(name=name, **self._bounded())
            except NotFound:
                continue
            out.append(instance_from_node(as_dict(node)))
        return out

    def terminate(self, zone: str, instance_ids: Sequence[str]) -> None:
        """Delete; already-gone nodes are fine. Does not wait for the deletion to finish
        (``describe`` shows STOPPING until the node is gone)."""
        from google.api_core.exceptions import NotFound

        for node_id in instance_ids:
            try:
                name = f"{self._parent(zone)}/nodes/{node_id}"
                self._client().delete_node(name=name, **self._bounded())
            except NotFound:
                continue

    def abandon(self, request: LaunchRequest) -> list[str]:
        """Delete whatever a launch with this key made: its node ids are the key's."""
        zone = request.offering.zone
        gone = [i.instance_id for i in self.describe(zone, node_ids(request))]
        self.terminate(zone, gone)
        return gone

    def wait_deleted(
        self, zone: str, instance_ids: Sequence[str], timeout_s: float = 1800.0
    ) -> None:
        """Block until the nodes are gone (at most ``timeout_s``)."""
        deadline = time.monotonic() + timeout_s
        remaining = list(instance_ids)
        while remaining:
            remaining = [i.instance_id for i in self.describe(zone, remaining)]
            if not remaining:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"TPU nodes {remaining} in {zone} still not deleted")
            time.sleep(self.poll_interval)

    def _wait(self, op: Any, deadline: float) -> Any:
        from google.longrunning import operations_pb2

        while not op.done:
            if time.monotonic() + self.poll_interval > deadline:
                return op  # not done yet: the caller reports the node as it is
            time.sleep(self.poll_interval)
            request = operations_pb2.GetOperationRequest(name=op.name)
            op = self._client().get_operation(request, **self._bounded())
        return op

    def _wait_settled(self, zone: str, node_id: str, deadline: float) -> None:
        """For a node an earlier try created: wait while it is still coming up."""
        from google.api_core.exceptions import NotFound

        name = f"{self._parent(zone)}/nodes/{node_id}"
        while True:
            try:
                node = as_dict(self._client().get_node(name=name, **self._bounded()))
            except NotFound:
                return
            if str(node.get("state") or "") not in _SETTLING:
                return
            if time.monotonic() + self.poll_interval > deadline:
                return  # still coming up: reported as it is, asked again next pass
            time.sleep(self.poll_interval)
