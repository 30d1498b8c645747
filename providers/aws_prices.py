"""Live AWS prices: every NVIDIA GPU shape, per zone, spot and on-demand.

Four APIs answer one question. EC2 says which types exist (DescribeInstanceTypes, with
their GPUs), where (DescribeInstanceTypeOfferings, per zone) and what spot costs there
now (DescribeSpotPriceHistory); the Price List API (GetProducts) says what on-demand
costs per region. AWS publishes no interruption rate, only the Spot Advisor's monthly
buckets, which come from a dated table in configs/.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

from jobs.accelerators import GPUS
from providers.aws_compute import AwsClients
from providers.config_files import load_model
from providers.feeds import SpotPricePoint
from providers.offering import (
    InterruptionSource,
    MarketKind,
    OfferedAccelerator,
    Offering,
    PriceSource,
)
from providers.spot_buckets import BUCKET_MIDPOINTS, bucket_rate

DEFAULT_SPOT_ADVISOR = Path(__file__).resolve().parent.parent / "configs" / "aws_spot_advisor.yaml"
# NVIDIA GPUs live in the P and G families (p3..p6, g4dn..g6e, gr6); Inferentia, Trainium,
# Gaudi and FPGAs have no canonical accelerator name here, so their families are skipped
# before asking EC2 about each type.
GPU_FAMILY_PREFIXES = ("p", "g")
LINUX = "Linux/UNIX"
# The Price List API is served from us-east-1 (and two other regions) for every region.
PRICING_REGION = "us-east-1"
_TYPES_PER_CALL = 100  # DescribeInstanceTypes accepts at most 100 names


# ---- pure parsing -------------------------------------------------------------------------


def canonical_gpu(name: str, memory_mib: float) -> str | None:
    """Our name for an EC2 ``GpuInfo.Gpus[].Name``; memory tells A100/V100 variants apart."""
    key = name.strip().upper().removeprefix("NVIDIA ").removeprefix("TESLA ").strip()
    if key == "A100":
        return "A100-80GB" if memory_mib > 60 * 1024 else "A100"
    if key == "V100":
        return "V100-32GB" if memory_mib > 24 * 1024 else "V100"
    info = GPUS.get(key.lower())
    return info.name if info else None


def accelerator_of(type_info: Mapping[str, Any]) -> OfferedAccelerator | None:
    """The GPUs of one DescribeInstanceTypes entry, or None (no GPU, unknown or fractional).

    Memory is our table's per-device figure, not EC2's MiB, so a live offering and the
    snapshot's agree on "24 GB" for an A10G that EC2 reports as 22,888 MiB.
    """
    for gpu in (type_info.get("GpuInfo") or {}).get("Gpus") or []:
        if float(gpu.get("GpuPartitionSize", 1.0)) < 1.0:  # a slice of one GPU (g6f)
            continue
        memory = float((gpu.get("MemoryInfo") or {}).get("SizeInMiB", 0))
        name = canonical_gpu(str(gpu.get("Name", "")), memory)
        count = int(gpu.get("Count", 0))
        if name and count >= 1:
            return OfferedAccelerator(
                name=name, count=count, memory_gb=GPUS[name.lower()].memory_gb
            )
    return None


@dataclass(frozen=True)
class OnDemandPrice:
    instance_type: str
    region: str
    usd_per_hour: float


def parse_price_list_item(item: str | Mapping[str, Any]) -> OnDemandPrice | None:
    """One GetProducts ``PriceList`` entry -> its hourly on-demand USD price, if it has one.

    Reads ``terms.OnDemand.*.priceDimensions.*`` with unit ``Hrs`` and a USD price. Zero
    prices (capacity-reservation and similar rows) are not offers, so they give None.
    """
    data = json.loads(item) if isinstance(item, str) else item
    attrs = (data.get("product") or {}).get("attributes") or {}
    itype, region = attrs.get("instanceType"), attrs.get("regionCode")
    if not itype or not region:
        return None
    prices = [
        float(dim["pricePerUnit"]["USD"])
        for term in ((data.get("terms") or {}).get("OnDemand") or {}).values()
        for dim in (term.get("priceDimensions") or {}).values()
        if str(dim.get("unit", "")).lower() in ("hrs", "hours")
        and "USD" in (dim.get("pricePerUnit") or {})
    ]
    prices = [p for p in prices if p > 0]
    return OnDemandPrice(itype, region, min(prices)) if prices else None


def latest_spot(points: Iterable[SpotPricePoint]) -> dict[tuple[str, str], SpotPricePoint]:
    """The newest point per (zone, instance type): the spot price in force now."""
    latest: dict[tuple[str, str], SpotPricePoint] = {}
    for p in points:
        key = (p.zone, p.instance_type)
        if key not in latest or p.at > latest[key].at:
            latest[key] = p
    return latest


# ---- the Spot Advisor table ---------------------------------------------------------------


class SpotAdvisorTable(BaseModel):
    """configs/aws_spot_advisor.yaml: dated buckets per region and type, and a default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    as_of: date
    source: str
    default_bucket: str
    buckets: dict[str, dict[str, str]]

    @field_validator("default_bucket")
    @classmethod
    def _known_default(cls, v: str) -> str:
        bucket_rate(v)
        return v

    @field_validator("buckets")
    @classmethod
    def _known_buckets(cls, v: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        for region, types in v.items():
            for itype, bucket in types.items():
                if bucket.strip().replace(" ", "") not in BUCKET_MIDPOINTS:
                    known = ", ".join(BUCKET_MIDPOINTS)
                    raise ValueError(f"{region}.{itype}: unknown bucket {bucket!r} ({known})")
        return v

    def rate(self, region: str, instance_type: str) -> tuple[float, InterruptionSource, str]:
        """(interruptions per hour, where the figure came from, the bucket label)."""
        bucket = self.buckets.get(region, {}).get(instance_type)
        if bucket is not None:
            return bucket_rate(bucket), InterruptionSource.PUBLISHED_BUCKET, bucket
        return bucket_rate(self.default_bucket), InterruptionSource.CONFIGURED, self.default_bucket


def load_spot_advisor(path: Path = DEFAULT_SPOT_ADVISOR) -> SpotAdvisorTable:
    """The table at ``path``; ValueError names the file and the bad entry."""
    return load_model(path, SpotAdvisorTable)


# ---- assembling offerings (pure) ----------------------------------------------------------


@dataclass(frozen=True)
class InstanceTypeInfo:
    name: str
    vcpus: float
    memory_gb: float
    accelerator: OfferedAccelerator


def instance_type_info(type_info: Mapping[str, Any]) -> InstanceTypeInfo | None:
    """A DescribeInstanceTypes entry with a GPU we know, else None."""
    accel = accelerator_of(type_info)
    if accel is None:
        return None
    return InstanceTypeInfo(
        name=type_info["InstanceType"],
        vcpus=float(type_info["VCpuInfo"]["DefaultVCpus"]),
        memory_gb=float(type_info["MemoryInfo"]["SizeInMiB"]) / 1024,
        accelerator=accel,
    )


@dataclass(frozen=True)
class RegionPrices:
    """What the APIs said about one region, before it becomes offerings."""

    region: str
    types: Mapping[str, InstanceTypeInfo]
    zones: Mapping[str, Sequence[str]]  # instance type -> zones offering it
    spot: Sequence[SpotPricePoint]
    on_demand: Mapping[str, float]  # instance type -> $/h


def build_offerings(
    prices: RegionPrices, advisor: SpotAdvisorTable, now: datetime
) -> list[Offering]:
    """One offering per (zone, type, market) the region offers and prices."""
    spot = latest_spot(prices.spot)
    out: list[Offering] = []
    for name, info in sorted(prices.types.items()):
        rate, why, bucket = advisor.rate(prices.region, name)
        advisor_note = f"interruption: Spot Advisor {bucket} ({advisor.as_of})"
        if why is InterruptionSource.CONFIGURED:
            advisor_note = f"interruption: default bucket {bucket} (not in Spot Advisor table)"
        for zone in sorted(prices.zones.get(name, ())):
            common = {
                "cloud": "aws",
                "region": prices.region,
                "zone": zone,
                "instance_type": name,
                "accelerators": info.accelerator,
                "vcpus": info.vcpus,
                "memory_gb": info.memory_gb,
                "price_source": PriceSource.LIVE,
            }
            if name in prices.on_demand:
                out.append(
                    Offering(
                        **common,
                        market=MarketKind.ON_DEMAND,
                        price_per_hour=prices.on_demand[name],
                        as_of=now,
                        source_detail="AWS Price List API GetProducts (Linux, shared tenancy)",
                    )
                )
            point = spot.get((zone, name))
            if point is not None:
                out.append(
                    Offering(
                        **common,
                        market=MarketKind.SPOT,
                        price_per_hour=point.price_per_hour,
                        interruption_rate=rate,
                        interruption_source=why,
                        as_of=point.at,
                        source_detail=f"EC2 DescribeSpotPriceHistory ({LINUX}); {advisor_note}",
                    )
                )
    return out


# ---- the feed (I/O) -----------------------------------------------------------------------


def _at(value: Any) -> datetime:
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


class AwsPriceFeed:
    """The PriceFeed protocol on AWS. Any API failure raises; the price book keeps old prices."""

    cloud = "aws"

    def __init__(
        self,
        advisor_path: Path = DEFAULT_SPOT_ADVISOR,
        *,
        spot_window: timedelta = timedelta(hours=6),
        clients: AwsClients | None = None,
        max_workers: int = 8,
    ) -> None:
        self.advisor_path = advisor_path
        self.spot_window = spot_window
        self.clients = clients or AwsClients()
        self.max_workers = max_workers

    def fetch(self, regions: Sequence[str], now: datetime) -> list[Offering]:
        advisor = load_spot_advisor(self.advisor_path)
        # Two pools: region tasks wait on price look-ups, so they must not share workers.
        with (
            ThreadPoolExecutor(max_workers=max(1, min(len(regions), 4))) as region_pool,
            ThreadPoolExecutor(max_workers=self.max_workers) as pricing_pool,
        ):
            found = list(region_pool.map(lambda r: self._region(r, now, pricing_pool), regions))
        return [o for prices in found for o in build_offerings(prices, advisor, now)]

    def spot_history(
        self, instance_types: Sequence[str], regions: Sequence[str], start: datetime, end: datetime
    ) -> list[SpotPricePoint]:
        if not instance_types:
            return []
        return [p for r in regions for p in self._spot_points(r, instance_types, start, end)]

    def instance_types(self, region: str, names: Sequence[str]) -> dict[str, InstanceTypeInfo]:
        """The GPU types among ``names`` as EC2 describes them in ``region``."""
        ec2 = self.clients.client("ec2", region)
        found: dict[str, InstanceTypeInfo] = {}
        for i in range(0, len(names), _TYPES_PER_CALL):
            chunk = list(names[i : i + _TYPES_PER_CALL])
            for page in ec2.get_paginator("describe_instance_types").paginate(InstanceTypes=chunk):
                for entry in page["InstanceTypes"]:
                    info = instance_type_info(entry)
                    if info is not None:
                        found[info.name] = info
        return found

    def zones(self, region: str) -> dict[str, list[str]]:
        """GPU-family instance type -> the zones of ``region`` that offer it."""
        ec2 = self.clients.client("ec2", region)
        pages = ec2.get_paginator("describe_instance_type_offerings").paginate(
            LocationType="availability-zone"
        )
        zones: dict[str, list[str]] = {}
        for page in pages:
            for o in page["InstanceTypeOfferings"]:
                if o["InstanceType"].startswith(GPU_FAMILY_PREFIXES):
                    zones.setdefault(o["InstanceType"], []).append(o["Location"])
        return zones

    def on_demand_price(self, region: str, instance_type: str) -> float | None:
        """Linux, shared tenancy, no pre-installed software: the plain hourly rate."""
        pricing = self.clients.client("pricing", PRICING_REGION)
        terms = {
            "instanceType": instance_type,
            "regionCode": region,
            "operatingSystem": "Linux",
            "tenancy": "Shared",
            "preInstalledSw": "NA",
            "capacitystatus": "Used",
        }
        filters = [{"Type": "TERM_MATCH", "Field": k, "Value": v} for k, v in terms.items()]
        pages = pricing.get_paginator("get_products").paginate(
            ServiceCode="AmazonEC2", Filters=filters, FormatVersion="aws_v1"
        )
        prices = [
            p.usd_per_hour
            for page in pages
            for item in page.get("PriceList", [])
            if (p := parse_price_list_item(item)) is not None
            and (p.instance_type, p.region) == (instance_type, region)
        ]
        return min(prices) if prices else None

    def _region(self, region: str, now: datetime, pool: ThreadPoolExecutor) -> RegionPrices:
        zones = self.zones(region)
        types = self.instance_types(region, sorted(zones))
        names = sorted(types)
        od_futures = {n: pool.submit(self.on_demand_price, region, n) for n in names}
        spot = self._spot_points(region, names, now - self.spot_window, now) if names else []
        on_demand = {n: p for n, f in od_futures.items() if (p := f.result()) is not None}
        return RegionPrices(region, types, {n: zones[n] for n in names}, spot, on_demand)

    def _spot_points(
        self, region: str, instance_types: Sequence[str], start: datetime, end: datetime
    ) -> list[SpotPricePoint]:
        ec2 = self.clients.client("ec2", region)
        pages = ec2.get_paginator("describe_spot_price_history").paginate(
            InstanceTypes=list(instance_types),
            ProductDescriptions=[LINUX],
            StartTime=start,
            EndTime=end,
        )
        return [
            SpotPricePoint(
                cloud="aws",
                region=region,
                zone=p["AvailabilityZone"],
                instance_type=p["InstanceType"],
                price_per_hour=float(p["SpotPrice"]),
                at=_at(p["Timestamp"]),
            )
            for page in pages
            for p in page["SpotPriceHistory"]
        ]
