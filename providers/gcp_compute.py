"""Compute Engine machines: launch, look at, stop, and hear that Google took a spot VM back.

Launch is idempotent twice over: each VM's name and ``requestId`` are derived from the
request's idempotency key, so a retry within Google's dedup window returns the first
call's operation, and a retry after it hits "already exists" on the same name.

``insert()`` returns an ExtendedOperation that polls through an internal operations
client built without our endpoint; ``insert_unary`` plus our own ZoneOperationsClient
(same kwargs) waits the same way against any endpoint.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import uuid
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from functools import cached_property
from typing import Any

from providers.gcp_clients import ComputeClients, GoogleEndpoint
from providers.gcp_prices import gcp_accelerator_type
from providers.instances import Instance, InstanceState, LaunchRequest
from providers.node_agent import gcp_preempted
from providers.offering import MarketKind

PREEMPTED_OPERATION = "compute.instances.preempted"
MAX_LABELS = 64
_LABEL_LEN = 63
_LABEL_BAD = re.compile(r"[^a-z0-9_-]+")
_NAME_BAD = re.compile(r"[^a-z0-9-]+")
# uuid5 namespace for requestIds: fixed, so the same key gives the same id in any process.
_REQUEST_NS = uuid.UUID("5b0c9a53-6f0e-4a43-9a1c-2f4f3c7d8e21")
_STATES = {
    "PROVISIONING": InstanceState.PENDING,
    "STAGING": InstanceState.PENDING,
    "REPAIRING": InstanceState.PENDING,
    "RUNNING": InstanceState.RUNNING,
    "STOPPING": InstanceState.STOPPING,
    "SUSPENDING": InstanceState.STOPPING,
    "SUSPENDED": InstanceState.STOPPING,
    "STOPPED": InstanceState.TERMINATED,
    "TERMINATED": InstanceState.TERMINATED,
}


def launch_retry(deadline: float = 20.0, initial: float = 1.0, maximum: float = 8.0) -> Any:
    """google.api_core's Retry for the calls that launch and watch machines: exponential
    backoff with jitter on what scheduler.launch_faults calls RETRY (429, 5xx, rate limits,
    timeouts; not a quota 429 nor a capacity 503), for at most ``deadline`` seconds, so a
    controller pass is not held for minutes (compute_v1's own ``get`` retries for 600 s)."""
    from google.api_core.retry import Retry

    from scheduler.launch_faults import retryable

    return Retry(
        predicate=retryable, initial=initial, maximum=maximum, multiplier=2.0, timeout=deadline
    )


class GcpOperationError(RuntimeError):
    """A zone operation finished with errors; ``codes`` are Google's (e.g.
    ZONE_RESOURCE_POOL_EXHAUSTED when a zone has no capacity left)."""

    def __init__(self, operation: str, codes: Sequence[str], message: str) -> None:
        super().__init__(f"{operation}: {message}")
        self.codes = tuple(codes)


# ---- labels and names (pure) ---------------------------------------------------------------


def _digest(text: str, n: int = 8) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:n]


def sanitize_label_value(value: str) -> str:
    """Lowercase, runs of other characters -> ``_``, at most 63 (values may be empty).

    Google's rule (values ``[\\p{Ll}\\p{Lo}\\p{N}_-]{0,63}``, under 128 bytes) also takes
    international characters; these are replaced too, which loses them but keeps every
    label inside the ASCII part of the rule that every Google API and report accepts."""
    return _LABEL_BAD.sub("_", value.lower())[:_LABEL_LEN]


def sanitize_label_key(key: str) -> str:
    """As a value, but never empty and starting with a lowercase letter (``k`` prefix)."""
    clean = sanitize_label_value(key)
    if not clean[:1].isalpha() or not clean[:1].isascii():
        clean = f"k{clean}"[:_LABEL_LEN]
    return clean


def sanitize_labels(tags: Mapping[str, str]) -> dict[str, str]:
    """Tags as GCP labels. Keys that collide once cleaned keep apart by a hash of the
    original key; more than 64 labels is an error rather than a silent cut.

    Namespaced keys (``sched:cluster``; a spec's tag keys cannot hold ``:``) claim their
    label first: sched finds its machines by ``sanitize_label_key(CLUSTER_TAG)``, so a job
    tagged ``sched.cluster`` must not take the ``sched_cluster`` label from it."""
    if len(tags) > MAX_LABELS:
        raise ValueError(f"GCP allows at most {MAX_LABELS} labels, got {len(tags)} tags")
    out: dict[str, str] = {}
    for key in sorted(tags, key=lambda k: (":" not in k, k)):
        base = clean = sanitize_label_key(key)
        tries = 0
        while clean in out:  # a hashed name can be taken too: hash again until one is free
            clean = f"{base[: _LABEL_LEN - 9]}-{_digest(key if not tries else f'{key}#{tries}')}"
            tries += 1
        out[clean] = sanitize_label_value(tags[key])
    return out


def instance_names(request: LaunchRequest) -> list[str]:
    """``<name>-<key hash>-<i>``: valid GCE names, the same for the same key."""
    base = _NAME_BAD.sub("-", request.name.lower()).strip("-") or "sched"
    if not base[0].isalpha():
        base = f"s-{base}"
    tag = _digest(request.idempotency_key)
    names = []
    for i in range(request.count):
        suffix = f"-{tag}-{i}"
        names.append(base[: _LABEL_LEN - len(suffix)].rstrip("-") + suffix)
    return names


def request_id(idempotency_key: str, index: int) -> str:
    return str(uuid.uuid5(_REQUEST_NS, f"{idempotency_key}/{index}"))


def instance_body(
    request: LaunchRequest,
    name: str,
    *,
    image: str,
    spot_termination_action: str = "DELETE",
    network: str = "global/networks/default",
    boot_disk_gb: int = 100,
) -> dict[str, Any]:
    """The REST ``Instance`` for one node of a request."""
    offering = request.offering
    zone = offering.zone
    spot = offering.market is MarketKind.SPOT
    body: dict[str, Any] = {
        "name": name,
        "machineType": f"zones/{zone}/machineTypes/{offering.instance_type}",
        "disks": [
            {
                "boot": True,
                "autoDelete": True,
                "type": "PERSISTENT",
                "initializeParams": {"sourceImage": image, "diskSizeGb": str(boot_disk_gb)},
            }
        ],
        "networkInterfaces": [
            {
                "network": network,
                "accessConfigs": [{"name": "External NAT", "type": "ONE_TO_ONE_NAT"}],
            }
        ],
        "labels": sanitize_labels(request.tags),
        "scheduling": {
            # VMs with GPUs cannot live-migrate; spot VMs must not restart on their own.
            "onHostMaintenance": "TERMINATE",
            "automaticRestart": not spot,
            "provisioningModel": "SPOT" if spot else "STANDARD",
        },
    }
    if spot:
        body["scheduling"]["instanceTerminationAction"] = spot_termination_action
    accel = offering.accelerators
    if accel and offering.instance_type.startswith("n1-"):
        gcp_type = gcp_accelerator_type(accel.name)
        if gcp_type is None:
            raise ValueError(f"no Compute Engine accelerator type for {accel.name!r}")
        body["guestAccelerators"] = [
            {
                "acceleratorType": f"zones/{zone}/acceleratorTypes/{gcp_type}",
                "acceleratorCount": accel.count,
            }
        ]
    if request.user_data is not None:
        body["metadata"] = {"items": [{"key": "startup-script", "value": request.user_data}]}
    return body


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")) if value else None


def instance_from_gce(data: Mapping[str, Any], preempted_ids: Collection[str] = ()) -> Instance:
    """One REST ``Instance`` as ours. ``preempted_ids``: the instance ids that a
    ``compute.instances.preempted`` operation in this zone targets (ids, not names, so
    a new VM that reuses a preempted one's name is not taken for it)."""
    status = str(data.get("status", ""))
    sched = data.get("scheduling") or {}
    spot = sched.get("provisioningModel") == "SPOT" or bool(sched.get("preemptible"))
    stopped = status in ("TERMINATED", "STOPPED")
    by_operation = str(data.get("id", "")) in preempted_ids
    interrupted = spot and (by_operation or (stopped and bool(data.get("lastStopTimestamp"))))
    nic = (data.get("networkInterfaces") or [{}])[0]
    access = (nic.get("accessConfigs") or [{}])[0]
    detail = str(data.get("statusMessage") or status)
    if interrupted:
        detail = (
            f"{status}: {PREEMPTED_OPERATION}"
            if by_operation
            else f"{status}: spot VM stopped by Google"
        )
    return Instance(
        cloud="gcp",
        zone=str(data.get("zone", "")).rsplit("/", 1)[-1],
        instance_id=str(data["name"]),
        instance_type=str(data.get("machineType", "")).rsplit("/", 1)[-1],
        state=InstanceState.PREEMPTED
        if interrupted
        else _STATES.get(status, InstanceState.PENDING),
        spot=spot,
        name=str(data["name"]),
        private_ip=nic.get("networkIP") or None,
        public_ip=access.get("natIP") or None,
        launched_at=_time(data.get("creationTimestamp")),
        tags=dict(data.get("labels") or {}),
        interrupted=interrupted,
        detail=detail,
    )


# ---- the Compute protocol (I/O) ------------------------------------------------------------


def _as_dict(message: Any) -> dict[str, Any]:
    return type(message).to_dict(
        message, preserving_proto_field_name=False, use_integers_for_enums=False
    )


class GcpCompute:
    """The Compute protocol on Compute Engine. ``instance_id`` is the VM's name (what
    get/delete take); VMs that are gone are absent from ``describe`` unless Google
    recorded preempting them, which shows as PREEMPTED."""

    cloud = "gcp"

    def __init__(
        self,
        project: str,
        endpoint: GoogleEndpoint | None = None,
        *,
        default_image: str | None = None,
        spot_termination_action: str = "DELETE",
        network: str = "global/networks/default",
        boot_disk_gb: int = 100,
        launch_wait_s: float = 30.0,
        poll_interval: float = 2.0,
        retry_deadline: float = 20.0,
        call_timeout: float = 30.0,
    ) -> None:
        """``spot_termination_action``: DELETE (default) leaves no disk to pay for after a
        preemption, which is still seen through the zone's operations; STOP keeps the VM
        TERMINATED until ``terminate``. ``launch_wait_s`` bounds how long one launch call
        follows its insert operations (read every ``poll_interval``); ``retry_deadline``
        bounds the retries of one call (launch_retry) and ``call_timeout`` each try of it."""
        if spot_termination_action not in ("DELETE", "STOP"):
            raise ValueError("spot_termination_action must be DELETE or STOP")
        self.project = project
        self.endpoint = endpoint or GoogleEndpoint()
        self.default_image = default_image
        self.spot_termination_action = spot_termination_action
        self.network = network
        self.boot_disk_gb = boot_disk_gb
        self.launch_wait_s = launch_wait_s
        self.poll_interval = poll_interval
        self.retry_deadline = retry_deadline
        self.call_timeout = call_timeout
        self._clients = ComputeClients(self.endpoint)

    def _client(self, kind: str) -> Any:
        return self._clients.get(kind)

    @cached_property
    def _retry(self) -> Any:
        return launch_retry(self.retry_deadline)

    def _bounded(self) -> dict[str, Any]:
        """Per-call ``retry`` and ``timeout`` for every client method on the launch path."""
        return {"retry": self._retry, "timeout": self.call_timeout}

    def launch(self, request: LaunchRequest) -> list[Instance]:
        """Insert the request's VMs and follow the operations for up to ``launch_wait_s``:
        the VMs that exist by then. The controller calls again each pass with the same key,
        which Google answers with the same operations, so a slow insert holds no pass and
        one that fails late (no capacity, no quota) still fails the launch, when it does."""
        from google.api_core.exceptions import Conflict
        from google.cloud import compute_v1

        offering = request.offering
        if offering.cloud != "gcp":
            raise ValueError(f"GcpCompute cannot launch a {offering.cloud!r} offering")
        image = request.image or self.default_image
        if not image:
            raise ValueError("a GCP launch needs a boot image: set the request's image")
        zone, names = offering.zone, instance_names(request)
        pending = []
        for i, name in enumerate(names):
            body = instance_body(
                request,
                name,
                image=image,
                spot_termination_action=self.spot_termination_action,
                network=self.network,
                boot_disk_gb=self.boot_disk_gb,
            )
            insert = compute_v1.InsertInstanceRequest(
                project=self.project,
                zone=zone,
                instance_resource=compute_v1.Instance.from_json(json.dumps(body)),
                request_id=request_id(request.idempotency_key, i),
            )
            try:
                client = self._client("InstancesClient")
                pending.append(client.insert_unary(request=insert, **self._bounded()))
            except Conflict:  # made by an earlier try whose requestId Google has forgotten
                continue
        deadline = time.monotonic() + self.launch_wait_s
        for op in pending:
            self._settled(zone, op, deadline)
        return self.describe(zone, names)

    def describe(self, zone: str, instance_ids: Sequence[str]) -> list[Instance]:
        from google.api_core.exceptions import NotFound

        found: list[dict[str, Any]] = []
        missing: list[str] = []
        for name in instance_ids:
            try:
                got = self._client("InstancesClient").get(
                    project=self.project, zone=zone, instance=name, **self._bounded()
                )
                found.append(_as_dict(got))
            except NotFound:
                missing.append(name)
        quiet = all(d.get("status") not in ("TERMINATED", "STOPPED", "STOPPING") for d in found)
        preempted = {} if quiet and not missing else self.preempted(zone)
        ids = {i for targets in preempted.values() for i in targets}
        out = [instance_from_gce(d, ids) for d in found]
        for name in missing:
            if name in preempted:
                out.append(
                    Instance(
                        cloud="gcp",
                        zone=zone,
                        instance_id=name,
                        instance_type="",
                        state=InstanceState.PREEMPTED,
                        spot=True,
                        name=name,
                        interrupted=True,
                        detail=f"deleted by Google: {PREEMPTED_OPERATION}",
                    )
                )
        return out

    def managed(self, region: str, tag_key: str) -> list[Instance]:
        """VMs in the region's zones carrying the label for ``tag_key`` that still bill
        (not TERMINATED or STOPPED); the label is reported back under ``tag_key`` itself, so
        callers need not know how labels are spelt."""
        label = sanitize_label_key(tag_key)
        zones = self._client("ZonesClient").list(project=self.project, **self._bounded())
        out = []
        for zone in (z.name for z in zones if z.name.startswith(f"{region}-")):
            listing = self._client("InstancesClient").list
            for vm in listing(project=self.project, zone=zone, **self._bounded()):
                data = _as_dict(vm)
                labels = data.get("labels") or {}
                if label not in labels or data.get("status") in ("TERMINATED", "STOPPED"):
                    continue
                found = instance_from_gce(data)
                out.append(
                    found.model_copy(update={"tags": {**found.tags, tag_key: labels[label]}})
                )
        return out

    def terminate(self, zone: str, instance_ids: Sequence[str]) -> None:
        """Delete; already-gone VMs are fine. Does not wait for the deletion to finish."""
        from google.api_core.exceptions import NotFound

        for name in instance_ids:
            try:
                self._client("InstancesClient").delete_unary(
                    project=self.project, zone=zone, instance=name, **self._bounded()
                )
            except NotFound:
                continue

    def abandon(self, request: LaunchRequest) -> list[str]:
        """Delete whatever a launch with this key made (one VM of several refused, or an
        answer lost); the names are the key's, so nothing else is touched."""
        zone = request.offering.zone
        gone = [i.instance_id for i in self.describe(zone, instance_names(request))]
        self.terminate(zone, gone)
        return gone

    def preempted(self, zone: str) -> dict[str, set[str]]:
        """VM name -> instance ids that Google's zone operations say it preempted."""
        ops = self._client("ZoneOperationsClient").list(
            request={
                "project": self.project,
                "zone": zone,
                "filter": f'operationType = "{PREEMPTED_OPERATION}"',
            },
            **self._bounded(),
        )
        out: dict[str, set[str]] = {}
        for op in ops:
            if op.operation_type == PREEMPTED_OPERATION:
                out.setdefault(op.target_link.rsplit("/", 1)[-1], set()).add(str(op.target_id))
        return out

    def metadata_preempted(self, metadata_base_url: str) -> bool:
        return metadata_preempted(metadata_base_url)

    def _settled(self, zone: str, op: Any, deadline: float) -> bool:
        """Whether the operation is DONE (read until ``deadline``); GcpOperationError if it
        ended in an error."""
        data = _as_dict(op)
        while data.get("status") != "DONE":
            data = _as_dict(
                self._client("ZoneOperationsClient").get(
                    project=self.project, zone=zone, operation=data["name"], **self._bounded()
                )
            )
            if data.get("status") == "DONE":
                break
            if time.monotonic() + self.poll_interval > deadline:
                return False
            time.sleep(self.poll_interval)
        errors = (data.get("error") or {}).get("errors") or []
        if errors:
            raise GcpOperationError(
                f"{data.get('operationType')} {data.get('targetLink', '').rsplit('/', 1)[-1]}",
                [str(e.get("code", "")) for e in errors],
                "; ".join(str(e.get("message", "")) for e in errors),
            )
        return True


def metadata_preempted(metadata_base_url: str, timeout: float = 2.0) -> bool:
    """Run on the VM: has Google preempted it? (The node agent's reading.)"""
    return gcp_preempted(metadata_base_url, timeout)
