"""Cloud TPU behind the provider interfaces: slice prices per zone, and TPU VMs (nodes).

A TPU slice is sold per chip-hour, but not by one SKU shape. v5e, v5p and v6e are
Compute Engine SKUs priced per chip ("TpuV5p running in Iowa", spot as "TpuV5e attached
to Spot Preemptible VMs running in ..."); v2, v3 and v4 are Cloud TPU service SKUs
("Tpu-v3 ...", "Tpu-v4 Pod ...") priced per 8 TensorCores, i.e. one 4-chip board, with a
separate "Pod" rate for v2/v3 slices bigger than one board, and with spot marked in the
description while the usage type may still say OnDemand. The matcher below reads both
into one per-chip rate, so a slice costs rate x chips. The TPU API says which slice
types each zone offers; GCP publishes no preemption rate and no spot history.

Launch is idempotent through the node id, derived from the request's idempotency key:
``CreateNodeRequest`` has no ``requestId``, so a retry that finds ALREADY_EXISTS takes the
node the first try made. Create and delete are long-running operations, polled through
the API's own operations endpoint at a rate and for a time the caller sets.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from jobs.accelerators import TPUS, AcceleratorKind, parse_accelerator
from providers.feeds import SpotPricePoint
from providers.gcp_clients import GoogleEndpoint
from providers.gcp_compute import sanitize_labels
from providers.gcp_prices import DEFAULT_SPOT_INTERRUPTION_RATE
from providers.gcp_skus import COMPUTE_SERVICE_ID, TPU_SERVICE_ID, SkuPrice, fetch_skus
from providers.instances import Instance, InstanceState, LaunchRequest
from providers.offering import (
    InterruptionSource,
    MarketKind,
    OfferedAccelerator,
    Offering,
    PriceSource,
)

SOURCE = "cloudbilling.googleapis.com TPU SKUs"

# Chips one SKU unit prices: v2/v3/v4 SKUs price an 8-core (4-chip) board, newer ones a chip.
CHIPS_PER_SKU_UNIT: dict[str, int] = {"v2": 4, "v3": 4, "v4": 4}
# Which SKU kind prices a slice: v2/v3 single boards ("-8") have a device rate and bigger
# slices a Pod rate; v4 is sold only as Pod; newer generations have no Pod wording.
_LEGACY_DEVICE_CORES = 8

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


# ---- TPU VM hosts (pure) -------------------------------------------------------------------


@dataclass(frozen=True)
class TpuHost:
    """One TPU VM host: how many chips it drives and its own vCPUs and RAM."""

    chips: int
    vcpus: int
    memory_gb: float


# Multi-host slices are built from the first host shape of each generation; v5e and v6e also
# sell smaller single-host shapes. From Google's system-architecture pages (v4: 240 vCPUs and
# 407 GB per 4-chip host; v5p: 208 / 448; v5e ct5lp-hightpu-{1,4,8}t: 24/48, 112/192,
# 224/384; v6e ct6e-standard-{1,4,8}t: 44/176, 180/720, 180/1440) and, for v2/v3 whose
# pages give no host figures, what a running v2-8/v3-8 TPU VM reports (96 vCPUs, 334 GB).
TPU_HOSTS: dict[str, tuple[TpuHost, ...]] = {
    "v2": (TpuHost(4, 96, 334),),
    "v3": (TpuHost(4, 96, 334),),
    "v4": (TpuHost(4, 240, 407),),
    "v5p": (TpuHost(4, 208, 448),),
    "v5litepod": (TpuHost(4, 112, 192), TpuHost(1, 24, 48), TpuHost(8, 224, 384)),
    "v6e": (TpuHost(4, 180, 720), TpuHost(1, 44, 176), TpuHost(8, 180, 1440)),
}


def slice_host(generation: str, chips: int) -> tuple[float, float]:
    """(vCPUs, GB of RAM) of all the slice's hosts together: a slice is one node to us."""
    hosts = TPU_HOSTS[generation]
    single = next((h for h in hosts if h.chips == chips), None)
    if single is not None:
        return single.vcpus, single.memory_gb
    base = hosts[0]
    n = max(1, math.ceil(chips / base.chips))
    return base.vcpus * n, base.memory_gb * n


# ---- slice names (pure) --------------------------------------------------------------------


@dataclass(frozen=True)
class TpuSlice:
    """A slice type in TPU API terms (``v5p-8``) with what we call it and how many chips."""

    api_type: str
    name: str  # canonical: "tpu-v5p-8"
    generation: str
    chips: int
    memory_gb_per_chip: float


def topology_chips(topology: str) -> int | None:
    """``2x2x1`` -> 4; None for anything that is not NxN[xN]."""
    parts = topology.lower().split("x")
    if not topology or not all(p.isdigit() and int(p) > 0 for p in parts):
        return None
    return math.prod(int(p) for p in parts)


def tpu_slice(api_type: str, topology: str = "") -> TpuSlice | None:
    """Read an accelerator type the TPU API lists; None for generations we have no name
    for (a slice we cannot name cannot be asked for). The topology's chip count wins over
    the name's arithmetic when both are there: it is the API's own answer."""
    try:
        req = parse_accelerator(f"tpu-{api_type}")
    except ValueError:
        return None
    if req.kind is not AcceleratorKind.TPU or req.tpu_chips is None:
        return None
    generation = req.name.split("-")[1]
    if generation not in TPU_HOSTS:
        return None
    chips = topology_chips(topology) or req.tpu_chips
    return TpuSlice(
        api_type=req.name.removeprefix("tpu-"),
        name=req.name,
        generation=generation,
        chips=chips,
        memory_gb_per_chip=req.memory_gb,
    )


# ---- SKU descriptions (pure) ---------------------------------------------------------------


@dataclass(frozen=True)
class TpuSkuRole:
    """What one TPU SKU prices: a generation's chips (or 4-chip boards), device or Pod."""

    generation: str
    pod: bool = False
    spot: bool = False


_GEN_RE = re.compile(
    r"\btpu[-\s]?(?P<a>v?\d+[a-z]*)\b|\b(?P<b>v\d+[a-z]*)\s+(?:lite\s+)?tpu\b", re.IGNORECASE
)
_EXCLUDE_RE = re.compile(
    r"\b(reserved|reservation|calendar|commitment|committed|dws|flex[- ]?start|"
    r"defined duration|sole[- ]tenan\w*)\b",
    re.IGNORECASE,
)
_SPOT_RE = re.compile(r"\b(preemptible|spot)\b", re.IGNORECASE)
_POD_RE = re.compile(r"\bpod\b", re.IGNORECASE)
_GEN_ALIASES = {"v5e": "v5litepod", "v5lite": "v5litepod", "v5litepod": "v5litepod"}


def tpu_sku_role(description: str) -> TpuSkuRole | None:
    """Read a TPU SKU description; None for reservations, commitments, DWS and for
    generations we have no slice names for (``TPU7x``)."""
    text = " ".join(description.split())
    if _EXCLUDE_RE.search(text):
        return None
    m = _GEN_RE.search(text)
    if not m:
        return None
    gen = (m["a"] or m["b"]).lower()
    gen = gen if gen.startswith("v") else f"v{gen}"
    gen = _GEN_ALIASES.get(gen, gen)
    if gen not in TPUS:
        return None
    return TpuSkuRole(gen, pod=bool(_POD_RE.search(text)), spot=bool(_SPOT_RE.search(text)))


@dataclass(frozen=True)
class ChipRate:
    usd_per_chip_hour: float
    sku_id: str


RateKey = tuple[str, str, MarketKind, bool]  # region, generation, market, pod


def tpu_rate_book(skus: Iterable[SkuPrice]) -> dict[RateKey, ChipRate]:
    """Per-chip-hour rates by (region, generation, market, pod); the newest SKU wins a tie.

    Only ``resourceGroup`` TPU SKUs in hours count (TPU host disks and the like have their
    own groups), and only plain usage: commitments never price a slice.
    """
    book: dict[RateKey, ChipRate] = {}
    oldest = datetime.min.replace(tzinfo=UTC)
    for sku in sorted(skus, key=lambda s: (s.effective_time or oldest, s.sku_id)):
        if sku.resource_group.upper() != "TPU" or sku.usage_unit != "h":
            continue
        if sku.usage_type not in ("OnDemand", "Preemptible"):
            continue
        role = tpu_sku_role(sku.description)
        if role is None:
            continue
        spot = role.spot or sku.usage_type == "Preemptible"
        market = MarketKind.SPOT if spot else MarketKind.ON_DEMAND
        rate = ChipRate(sku.hourly_usd / CHIPS_PER_SKU_UNIT.get(role.generation, 1), sku.sku_id)
        for region in sku.regions:
            book[(region, role.generation, market, role.pod)] = rate
    return book


def _pod_preference(tpu: TpuSlice) -> tuple[bool, ...]:
    if tpu.generation in ("v2", "v3"):
        return (tpu.chips * TPUS[tpu.generation].cores_per_chip > _LEGACY_DEVICE_CORES,)
    if tpu.generation == "v4":
        return (True, False)
    return (False, True)


def slice_rate(
    book: Mapping[RateKey, ChipRate], region: str, tpu: TpuSlice, market: MarketKind
) -> ChipRate | None:
    """The per-chip rate that prices this slice here, or None (never a guess: a v2-32 at
    the single-board rate would look cheaper than it is)."""
    for pod in _pod_preference(tpu):
        rate = book.get((region, tpu.generation, market, pod))
        if rate is not None:
            return rate
    return None


@dataclass(frozen=True)
class ZoneSlices:
    """What the TPU API says one zone offers."""

    zone: str
    region: str
    slices: tuple[TpuSlice, ...]


def zone_region(zone: str) -> str:
    """``us-central1-a`` -> ``us-central1``."""
    return zone.rsplit("-", 1)[0]


def build_tpu_offerings(
    zones: Sequence[ZoneSlices],
    book: Mapping[RateKey, ChipRate],
    now: datetime,
    spot_interruption_rate: float = DEFAULT_SPOT_INTERRUPTION_RATE,
) -> list[Offering]:
    """One offering per (zone, slice, market) that has a rate: price = chip rate x chips."""
    out: list[Offering] = []
    for zs in zones:
        for tpu in sorted(zs.slices, key=lambda s: (s.generation, s.chips)):
            vcpus, memory = slice_host(tpu.generation, tpu.chips)
            accel = OfferedAccelerator(name=tpu.name, count=1, memory_gb=tpu.memory_gb_per_chip)
            for market in (MarketKind.ON_DEMAND, MarketKind.SPOT):
                rate = slice_rate(book, zs.region, tpu, market)
                if rate is None:
                    continue
                spot = market is MarketKind.SPOT
                detail = (
                    f"{SOURCE} {rate.sku_id}: {tpu.chips} chips x "
                    f"${rate.usd_per_chip_hour:.6g}/chip-h"
                )
                if spot:
                    detail += f"; interruption: configured {spot_interruption_rate}/h"
                out.append(
                    Offering(
                        cloud="gcp",
                        region=zs.region,
                        zone=zs.zone,
                        instance_type=tpu.name,
                        accelerators=accel,
                        vcpus=vcpus,
                        memory_gb=memory,
                        market=market,
                        price_per_hour=round(rate.usd_per_chip_hour * tpu.chips, 6),
                        interruption_rate=spot_interruption_rate if spot else 0.0,
                        interruption_source=(
                            InterruptionSource.CONFIGURED if spot else InterruptionSource.NONE
                        ),
                        as_of=now,
                        price_source=PriceSource.LIVE,
                        source_detail=detail,
                    )
                )
    return out


# ---- the feed (I/O) ------------------------------------------------------------------------


def _as_dict(message: Any) -> dict[str, Any]:
    return type(message).to_dict(
        message, preserving_proto_field_name=False, use_integers_for_enums=False
    )


class GcpTpuPriceFeed:
    """The PriceFeed protocol for Cloud TPU slices. ``zones``: ask only these (else the TPU
    API's locations in the requested regions). Any API failure raises (the price book
    keeps the last good prices)."""

    cloud = "gcp"

    def __init__(
        self,
        project: str,
        endpoint: GoogleEndpoint | None = None,
        *,
        zones: Sequence[str] | None = None,
        spot_interruption_rate: float = DEFAULT_SPOT_INTERRUPTION_RATE,
        max_workers: int = 8,
    ) -> None:
        self.project = project
        self.endpoint = endpoint or GoogleEndpoint()
        self.fixed_zones = tuple(zones) if zones is not None else None
        self.spot_interruption_rate = spot_interruption_rate
        self.max_workers = max_workers

    def _client(self) -> Any:
        from google.cloud import tpu_v2

        return tpu_v2.TpuClient(**self.endpoint.client_kwargs())

    def fetch(self, regions: Sequence[str], now: datetime) -> list[Offering]:
        with ThreadPoolExecutor(max_workers=self.max_workers) as pool:
            sku_jobs = [
                pool.submit(fetch_skus, self.endpoint, service)
                for service in (COMPUTE_SERVICE_ID, TPU_SERVICE_ID)
            ]
            client = self._client()
            zones = self.zones(regions, client)
            catalogs = list(pool.map(lambda z: self.zone_slices(z, client), zones))
            skus = [sku for job in sku_jobs for sku in job.result()[0]]
        return build_tpu_offerings(catalogs, tpu_rate_book(skus), now, self.spot_interruption_rate)

    def spot_history(
        self, instance_types: Sequence[str], regions: Sequence[str], start: datetime, end: datetime
    ) -> list[SpotPricePoint]:
        return []  # GCP keeps no spot price history; the price book records its own

    def zones(self, regions: Sequence[str], client: Any = None) -> list[str]:
        """TPU locations (zones) in ``regions``, from the API unless given at construction."""
        wanted = set(regions)
        if self.fixed_zones is not None:
            return sorted(z for z in self.fixed_zones if zone_region(z) in wanted)
        from google.cloud.location import locations_pb2

        client = client or self._client()
        found: set[str] = set()
        token = ""
        while True:
            req = locations_pb2.ListLocationsRequest(
                name=f"projects/{self.project}", page_token=token
            )
            resp = client.list_locations(req)
            for loc in resp.locations:
                zone = loc.location_id or loc.name.rsplit("/", 1)[-1]
                if zone_region(zone) in wanted:
                    found.add(zone)
            token = resp.next_page_token
            if not token:
                return sorted(found)

    def zone_slices(self, zone: str, client: Any = None) -> ZoneSlices:
        client = client or self._client()
        types = client.list_accelerator_types(parent=f"projects/{self.project}/locations/{zone}")
        slices: dict[str, TpuSlice] = {}
        for t in types:
            topo = t.accelerator_configs[0].topology if t.accelerator_configs else ""
            found = tpu_slice(t.type_ or t.name.rsplit("/", 1)[-1], topo)
            if found is not None:
                slices[found.name] = found
        return ZoneSlices(zone=zone, region=zone_region(zone), slices=tuple(slices.values()))


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
        operation_timeout: float = 1800.0,
    ) -> None:
        """``runtime_version``: used when a request names no image (else the generation's
        default). ``poll_interval``/``operation_timeout`` bound how long launch waits for
        Google's operations; a big slice can take many minutes to come up."""
        self.project = project
        self.endpoint = endpoint or GoogleEndpoint()
        self.runtime_version = runtime_version
        self.external_ips = external_ips
        self.network = network
        self.poll_interval = poll_interval
        self.operation_timeout = operation_timeout
        self._client_obj: Any = None
        self._lock = threading.Lock()

    def _client(self) -> Any:
        with self._lock:
            if self._client_obj is None:
                from google.cloud import tpu_v2

                self._client_obj = tpu_v2.TpuClient(**self.endpoint.client_kwargs())
            return self._client_obj

    def _parent(self, zone: str) -> str:
        return f"projects/{self.project}/locations/{zone}"

    def launch(self, request: LaunchRequest) -> list[Instance]:
        """Create the request's slices and wait until they are up; a retry with the same
        key finds the slices the first call made instead of making more."""
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
        deadline = time.monotonic() + self.operation_timeout
        pending: list[tuple[str, Any]] = []
        existing: list[str] = []
        for node_id in ids:
            try:
                op = self._client().create_node(
                    parent=self._parent(zone), node_id=node_id, node=node
                )
                pending.append((node_id, op.operation))
            except Conflict:  # made by an earlier try with the same key
                existing.append(node_id)
        errors: list[TpuOperationError] = []
        for node_id, op in pending:
            done = self._wait(op, deadline)
            if not done.HasField("error"):
                continue
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
                node = self._client().get_node(name=f"{self._parent(zone)}/nodes/{node_id}")
            except NotFound:
                continue
            out.append(instance_from_node(_as_dict(node)))
        return out

    def terminate(self, zone: str, instance_ids: Sequence[str]) -> None:
        """Delete; already-gone nodes are fine. Does not wait for the deletion to finish
        (``describe`` shows STOPPING until the node is gone)."""
        from google.api_core.exceptions import NotFound

        for node_id in instance_ids:
            try:
                self._client().delete_node(name=f"{self._parent(zone)}/nodes/{node_id}")
            except NotFound:
                continue

    def wait_deleted(self, zone: str, instance_ids: Sequence[str]) -> None:
        """Block until the nodes are gone (bounded by ``operation_timeout``)."""
        deadline = time.monotonic() + self.operation_timeout
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
            if time.monotonic() > deadline:
                raise TimeoutError(f"operation {op.name} not done")
            time.sleep(self.poll_interval)
            op = self._client().get_operation(operations_pb2.GetOperationRequest(name=op.name))
        return op

    def _wait_settled(self, zone: str, node_id: str, deadline: float) -> None:
        """For a node an earlier try created: wait while it is still coming up."""
        from google.api_core.exceptions import NotFound

        name = f"{self._parent(zone)}/nodes/{node_id}"
        while True:
            try:
                node = _as_dict(self._client().get_node(name=name))
            except NotFound:
                return
            if str(node.get("state") or "") not in _SETTLING:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"TPU node {zone}/{node_id} still {node.get('state')}")
            time.sleep(self.poll_interval)
