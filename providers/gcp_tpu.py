"""Cloud TPU slice prices per zone: hosts, slice names, SKU rates and the price feed.

TPU VMs themselves (launch, describe, delete) are in providers/gcp_tpu_compute.py.

A TPU slice is sold per chip-hour, but not by one SKU shape. v5e, v5p and v6e are
Compute Engine SKUs priced per chip ("TpuV5p running in Iowa", spot as "TpuV5e attached
to Spot Preemptible VMs running in ..."); v2, v3 and v4 are Cloud TPU service SKUs
("Tpu-v3 ...", "Tpu-v4 Pod ...") priced per 8 TensorCores, i.e. one 4-chip board, with a
separate "Pod" rate for v2/v3 slices bigger than one board, and with spot marked in the
description while the usage type may still say OnDemand. The matcher below reads both
into one per-chip rate, so a slice costs rate x chips. The TPU API says which slice
types each zone offers; GCP publishes no preemption rate and no spot history.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from jobs.accelerators import TPUS, AcceleratorKind, parse_accelerator
from providers.feeds import SpotPricePoint
from providers.gcp_clients import GoogleEndpoint
from providers.gcp_prices import DEFAULT_SPOT_INTERRUPTION_RATE
from providers.gcp_skus import COMPUTE_SERVICE_ID, TPU_SERVICE_ID, SkuPrice, fetch_skus
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


def as_dict(message: Any) -> dict[str, Any]:
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
