"""Live GCP prices: every NVIDIA GPU shape on Compute Engine, per zone, spot and on-demand.

Compute Engine has no price per machine type. The Cloud Billing Catalog prices its parts
(vCPU-hours and GiB-hours of RAM per machine family, hours per GPU model, GiB-months of
local SSD), spot and on-demand as separate SKUs, so a machine's price is composed:
cores x core rate + GiB x RAM rate + GPUs x GPU rate (+ bundled local SSD). The A2/A3/G2
families come with their GPUs (the instance bills the family's core/RAM SKUs plus the
GPU SKU); T4/V100/P100 are attached to an N1 host. The Compute API says which zones
have which machine types and accelerators. GCP publishes no preemption rate, and no
spot price history: spot offerings carry a configured rate, and the price book keeps its
own record of the spot prices it saw.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from jobs.accelerators import GPUS
from providers.feeds import SpotPricePoint
from providers.gcp_clients import ComputeClients, GoogleEndpoint
from providers.gcp_skus import COMPUTE_SERVICE_ID, SkuPrice, fetch_skus
from providers.offering import (
    InterruptionSource,
    MarketKind,
    OfferedAccelerator,
    Offering,
    PriceSource,
)

# Compute Engine accelerator type -> our canonical name (jobs/accelerators.py).
GPU_NAMES: dict[str, str] = {
    "nvidia-tesla-a100": "A100",
    "nvidia-a100-80gb": "A100-80GB",
    "nvidia-h100-80gb": "H100",
    "nvidia-h100-mega-80gb": "H100-MEGA",
    "nvidia-h200-141gb": "H200",
    "nvidia-b200": "B200",
    "nvidia-l4": "L4",
    "nvidia-tesla-t4": "T4",
    "nvidia-tesla-v100": "V100",
    "nvidia-tesla-p100": "P100",
    "nvidia-tesla-k80": "K80",
}
# GPUs sold on their own and attached to an N1 host; the others come inside A2/A3/A4/G2.
ATTACHABLE_GPUS = frozenset(
    {"nvidia-tesla-t4", "nvidia-tesla-v100", "nvidia-tesla-p100", "nvidia-tesla-k80"}
)
ATTACHED_COUNTS = (1, 2, 4, 8)
# Machine families with GPUs built in; only these (and the N1 hosts) are listed per zone.
GPU_MACHINE_FAMILIES = ("a2", "a3", "a4", "g2")
DEFAULT_SPOT_INTERRUPTION_RATE = 0.05  # per hour; as configs/prices/snapshot.yaml, see there
HOURS_PER_MONTH = 730  # Google's own month for GiB-month SKUs
LOCAL_SSD_PARTITION_GIB = 375
SOURCE = "cloudbilling.googleapis.com Compute Engine SKUs"
log = logging.getLogger(__name__)


def canonical_accelerator(gcp_type: str) -> str | None:
    """``nvidia-tesla-a100`` -> ``A100``; None for types we have no canonical name for."""
    return GPU_NAMES.get(gcp_type.rsplit("/", 1)[-1])


def gcp_accelerator_type(canonical: str) -> str | None:
    """The reverse: which Compute Engine accelerator type a canonical name is."""
    return next((k for k, v in GPU_NAMES.items() if v == canonical), None)


def n1_host(gpu_count: int) -> str:
    """The N1 host for ``gpu_count`` attached GPUs: 8 vCPUs (30 GB) per GPU.

    Eight vCPUs per GPU feeds a data loader without paying for idle cores, and stays
    inside every GPU's vCPU limit (V100 allows 12 per GPU, T4 48 for 1-2 GPUs).
    """
    return f"n1-standard-{8 * gpu_count}"


def billing_family(machine_type: str) -> str | None:
    """Which family's core/RAM SKUs bill a machine type (A3 Mega/Ultra have their own)."""
    family, _, rest = machine_type.partition("-")
    if family == "a3":
        return {"megagpu": "a3plus", "ultragpu": "a3ultra"}.get(rest.split("-")[0], "a3")
    if family in ("a2", "a4", "g2", "n1"):
        return family
    return None


# ---- SKU descriptions (pure) ---------------------------------------------------------------


class SkuComponent(StrEnum):
    CORE = "core"
    RAM = "ram"
    GPU = "gpu"
    LOCAL_SSD = "local_ssd"


@dataclass(frozen=True)
class SkuRole:
    """What one SKU prices: a family's cores or RAM, one GPU model, or local SSD."""

    component: SkuComponent
    key: str = ""  # billing family (core/ram), canonical GPU name (gpu)
    spot: bool = False


_SPOT = r"(?P<spot>Spot Preemptible )?"
_WHERE = r" running in (?P<where>.+)"
_FAMILY_RE = re.compile(
    rf"^{_SPOT}(?P<family>A2|A3|A3 ?Plus|A3 ?Ultra|A4|G2|N1 Predefined) Instance "
    rf"(?P<kind>Core|Ram){_WHERE}$",
    re.IGNORECASE,
)
_GPU_RE = re.compile(
    rf"^{_SPOT}(?:A4 )?(?:Nvidia )?(?:Tesla )?"
    r"(?P<gpu>A100 80GB|A100|H100 80GB Mega|H100 80GB|H200 141GB|B200|L4|T4|V100|P100|K80)"
    r"(?: \(1 gpu slice\))?(?: GPU)?(?P<attached> attached to Spot Preemptible VMs)?"
    rf"{_WHERE}$",
    re.IGNORECASE,
)
_SSD_RE = re.compile(
    r"^SSD backed Local Storage(?P<attached> attached to Spot Preemptible VMs)?"
    r"(?: running in .+| in .+)?$",
    re.IGNORECASE,
)
_SKU_GPU = {
    "a100 80gb": "A100-80GB",
    "a100": "A100",
    "h100 80gb mega": "H100-MEGA",
    "h100 80gb": "H100",
    "h200 141gb": "H200",
    "b200": "B200",
    "l4": "L4",
    "t4": "T4",
    "v100": "V100",
    "p100": "P100",
    "k80": "K80",
}
_EXPECTED_UNITS = {
    SkuComponent.CORE: "h",
    SkuComponent.RAM: "GiBy.h",
    SkuComponent.GPU: "h",
    SkuComponent.LOCAL_SSD: "GiBy.mo",
}


def sku_role(description: str) -> SkuRole | None:
    """Read a Compute Engine SKU description; None for anything that is not a VM part.

    Anchored on purpose: commitments, reservations, DWS, sole-tenancy, custom shapes and
    virtual-workstation GPUs have their own wording and must never price a plain VM.
    """
    text = " ".join(description.split())
    if m := _FAMILY_RE.match(text):
        family = m["family"].lower().replace(" ", "").removesuffix("predefined")
        kind = SkuComponent.CORE if m["kind"].lower() == "core" else SkuComponent.RAM
        return SkuRole(kind, family, spot=bool(m["spot"]))
    if m := _GPU_RE.match(text):
        gpu = _SKU_GPU[m["gpu"].lower()]
        return SkuRole(SkuComponent.GPU, gpu, spot=bool(m["spot"] or m["attached"]))
    if m := _SSD_RE.match(text):
        return SkuRole(SkuComponent.LOCAL_SSD, "", spot=bool(m["attached"]))
    return None


def sku_market(sku: SkuPrice, role: SkuRole) -> MarketKind | None:
    """Spot if either the usage type or the description says so; commitments give None."""
    if role.spot or sku.market is MarketKind.SPOT:
        return MarketKind.SPOT if sku.usage_type in ("Preemptible", "OnDemand") else None
    return sku.market


RateKey = tuple[str, MarketKind, SkuComponent, str]  # region, market, component, key


def rate_book(skus: Iterable[SkuPrice]) -> dict[RateKey, SkuPrice]:
    """Every VM-part SKU by (region, market, component, key); the newest wins a tie."""
    book: dict[RateKey, SkuPrice] = {}
    oldest = datetime.min.replace(tzinfo=UTC)
    for sku in sorted(skus, key=lambda s: (s.effective_time or oldest, s.sku_id)):
        role = sku_role(sku.description)
        if role is None or sku.usage_unit != _EXPECTED_UNITS[role.component]:
            continue
        market = sku_market(sku, role)
        if market is None:
            continue
        for region in sku.regions:
            book[(region, market, role.component, role.key)] = sku
    return book


# ---- machine shapes and composition (pure) -------------------------------------------------


@dataclass(frozen=True)
class MachineShape:
    """A Compute Engine machine type, from the REST ``MachineType`` resource."""

    name: str
    vcpus: int
    memory_gib: float
    gpu: str | None = None  # canonical name of built-in GPUs
    gpu_count: int = 0
    local_ssd_gib: float = 0


class GcpFormatError(ValueError):
    """A Compute API answer item we cannot read; ``str()`` names the item and the field."""


def _count(value: Any, what: str) -> int:
    """A count the API types as int32 (cores, MB, cards, disks): an int, or its string."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    try:
        number = int(value) if not isinstance(value, bool) else -1
    except (TypeError, ValueError):
        number = -1
    if not 0 <= number < 2**31:
        raise GcpFormatError(f"{what}: {str(value)[:40]!r} is not a count")
    return number


def machine_shape(data: Mapping[str, Any]) -> MachineShape:
    """A REST ``MachineType``; GcpFormatError for one without a name, cores or memory."""
    name = data.get("name") if isinstance(data, Mapping) else None
    if not isinstance(name, str) or not name:
        raise GcpFormatError("MachineType: an entry without a name")
    where = f"MachineType {name[:40]!r}"
    accels = data.get("accelerators") or []
    if not isinstance(accels, list) or not all(isinstance(a, Mapping) for a in accels):
        raise GcpFormatError(f"{where}: accelerators is not a list of objects")
    gpu, count = None, 0
    if accels:
        gpu = canonical_accelerator(str(accels[0].get("guestAcceleratorType", "")))
        count = _count(accels[0].get("guestAcceleratorCount") or 0, f"{where}: accelerators")
    ssds = data.get("bundledLocalSsds") or {}
    if not isinstance(ssds, Mapping):
        raise GcpFormatError(f"{where}: bundledLocalSsds is not an object")
    partitions = _count(ssds.get("partitionCount") or 0, f"{where}: bundledLocalSsds")
    vcpus = _count(data.get("guestCpus") or 0, f"{where}: guestCpus")
    memory_mb = _count(data.get("memoryMb") or 0, f"{where}: memoryMb")
    if not vcpus or not memory_mb:
        raise GcpFormatError(f"{where}: no guestCpus or no memoryMb")
    return MachineShape(
        name=name,
        vcpus=vcpus,
        memory_gib=memory_mb / 1024,
        gpu=gpu,
        gpu_count=count,
        local_ssd_gib=partitions * LOCAL_SSD_PARTITION_GIB,
    )


@dataclass(frozen=True)
class VmPrice:
    usd_per_hour: float
    sku_ids: tuple[str, ...]


def price_vm(
    book: Mapping[RateKey, SkuPrice],
    region: str,
    market: MarketKind,
    host: MachineShape,
    gpu: str | None,
    gpu_count: int,
) -> VmPrice | None:
    """Cores + RAM of the host's family, plus GPUs, plus bundled local SSD; None when a
    part has no SKU here (a price without its GPUs would look like a bargain)."""
    family = billing_family(host.name)
    if family is None or gpu is None or gpu_count < 1:
        return None
    parts = [
        (SkuComponent.CORE, family, host.vcpus),
        (SkuComponent.RAM, family, host.memory_gib),
        (SkuComponent.GPU, gpu, gpu_count),
    ]
    if host.local_ssd_gib:
        parts.append((SkuComponent.LOCAL_SSD, "", host.local_ssd_gib / HOURS_PER_MONTH))
    total, ids = 0.0, []
    for component, key, quantity in parts:
        sku = book.get((region, market, component, key))
        if sku is None:
            return None
        total += sku.hourly_usd * quantity
        ids.append(sku.sku_id)
    return VmPrice(round(total, 6), tuple(ids))


@dataclass(frozen=True)
class ZoneCatalog:
    """What the Compute API says one zone offers."""

    zone: str
    region: str
    machine_types: Mapping[str, MachineShape]
    accelerator_types: Mapping[str, int] = field(default_factory=dict)  # type -> max cards


def _candidates(zc: ZoneCatalog) -> Iterable[tuple[str, MachineShape, str, int]]:
    """(instance type, host shape, canonical GPU, count) for every GPU shape in a zone."""
    for shape in zc.machine_types.values():
        if shape.name.startswith(GPU_MACHINE_FAMILIES) and shape.gpu and shape.gpu_count:
            yield shape.name, shape, shape.gpu, shape.gpu_count
    for gcp_type, max_cards in zc.accelerator_types.items():
        gpu = canonical_accelerator(gcp_type)
        if gcp_type not in ATTACHABLE_GPUS or gpu is None:
            continue
        for count in ATTACHED_COUNTS:
            host = zc.machine_types.get(n1_host(count))
            if count <= max_cards and host is not None:
                yield host.name, host, gpu, count


def build_offerings(
    zones: Sequence[ZoneCatalog],
    book: Mapping[RateKey, SkuPrice],
    now: datetime,
    spot_interruption_rate: float = DEFAULT_SPOT_INTERRUPTION_RATE,
) -> list[Offering]:
    """One offering per (zone, shape, market) that every part has a SKU price for."""
    out: list[Offering] = []
    for zc in zones:
        for itype, host, gpu, count in sorted(_candidates(zc), key=lambda c: (c[0], c[2])):
            accel = OfferedAccelerator(name=gpu, count=count, memory_gb=GPUS[gpu.lower()].memory_gb)
            for market in (MarketKind.ON_DEMAND, MarketKind.SPOT):
                price = price_vm(book, zc.region, market, host, gpu, count)
                if price is None:
                    continue
                detail = f"{SOURCE} {'+'.join(price.sku_ids)}"
                spot = market is MarketKind.SPOT
                if spot:
                    detail += f"; interruption: configured {spot_interruption_rate}/h"
                out.append(
                    Offering(
                        cloud="gcp",
                        region=zc.region,
                        zone=zc.zone,
                        instance_type=itype,
                        accelerators=accel,
                        vcpus=host.vcpus,
                        memory_gb=host.memory_gib,
                        market=market,
                        price_per_hour=price.usd_per_hour,
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


def machine_type_filter() -> str:
    """Compute list ``filter``: GPU families and the N1 hosts, so a zone is one small page."""
    hosts = "|".join(str(8 * c) for c in ATTACHED_COUNTS)
    families = "|".join(GPU_MACHINE_FAMILIES)
    return f'name eq "({families})-.*|n1-standard-({hosts})"'


# ---- the feed (I/O) ------------------------------------------------------------------------


def _as_dict(message: Any) -> dict[str, Any]:
    return type(message).to_dict(
        message, preserving_proto_field_name=False, use_integers_for_enums=False
    )


class GcpPriceFeed:
    """The PriceFeed protocol on Compute Engine. Any API failure raises (the price book
    keeps the last good prices)."""

    cloud = "gcp"

    def __init__(
        self,
        project: str,
        endpoint: GoogleEndpoint | None = None,
        *,
        spot_interruption_rate: float = DEFAULT_SPOT_INTERRUPTION_RATE,
        max_workers: int = 8,
    ) -> None:
        self.project = project
        self.endpoint = endpoint or GoogleEndpoint()
        self.spot_interruption_rate = spot_interruption_rate
        self.max_workers = max_workers
        self._clients = ComputeClients(self.endpoint)
        self.skipped: list[str] = []  # machine types not read, since the last warning

    def _client(self, kind: str) -> Any:
        return self._clients.get(kind)

    def fetch(self, regions: Sequence[str], now: datetime) -> list[Offering]:
        with ThreadPoolExecutor(max_workers=self.max_workers) as pool:
            skus = pool.submit(fetch_skus, self.endpoint, COMPUTE_SERVICE_ID)
            zones = self.zones(regions)
            catalogs = list(pool.map(lambda z: self.zone_catalog(*z), zones))
            prices, problems = skus.result()
        if problems:  # SKUs of other products in odd shapes; logged, never silently priced
            log.debug("%d Compute Engine SKUs not parsed, first: %s", len(problems), problems[0])
        skipped, self.skipped = self.skipped, []
        if skipped:  # machine types are what we price: a skipped one is worth a warning
            log.warning("gcp: %d machine type(s) skipped, first: %s", len(skipped), skipped[0])
        return build_offerings(catalogs, rate_book(prices), now, self.spot_interruption_rate)

    def spot_history(
        self, instance_types: Sequence[str], regions: Sequence[str], start: datetime, end: datetime
    ) -> list[SpotPricePoint]:
        return []  # GCP keeps no spot price history; the price book records its own

    def zones(self, regions: Sequence[str]) -> list[tuple[str, str]]:
        """(zone, region) for every zone that is UP in ``regions``."""
        wanted = set(regions)
        found = []
        for zone in self._client("ZonesClient").list(project=self.project):
            region = zone.region.rsplit("/", 1)[-1]
            if region in wanted and zone.status == "UP":
                found.append((zone.name, region))
        return sorted(found)

    def zone_catalog(self, zone: str, region: str) -> ZoneCatalog:
        types = self._client("MachineTypesClient").list(
            request={"project": self.project, "zone": zone, "filter": machine_type_filter()}
        )
        shapes = {}
        for t in types:
            try:
                shape = machine_shape(_as_dict(t))
            except GcpFormatError as exc:
                self.skipped.append(f"{zone}: {exc}")  # list.append: safe across threads
                continue
            shapes[shape.name] = shape
        accels = self._client("AcceleratorTypesClient").list(project=self.project, zone=zone)
        return ZoneCatalog(
            zone=zone,
            region=region,
            machine_types=shapes,
            accelerator_types={a.name: int(a.maximum_cards_per_instance) for a in accels},
        )
