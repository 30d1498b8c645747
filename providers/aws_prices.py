"""Live AWS prices: every NVIDIA GPU shape, per zone, spot and on-demand.

Four APIs answer one question. EC2 says which types exist (DescribeInstanceTypes, with
their GPUs), where (DescribeInstanceTypeOfferings, per zone) and what spot costs there
now (DescribeSpotPriceHistory); the Price List API (GetProducts) says what on-demand
costs per region. AWS publishes no interruption rate, only the Spot Advisor's monthly
buckets, which come from a dated table in configs/.

An answer item we cannot read (a field missing, or of another type) raises AwsFormatError
naming the API, the item and the field; the feed skips that item, counts it and logs one
warning per fetch, so one odd Price List product never costs a whole region its prices.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
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
log = logging.getLogger(__name__)


class SpotAdvisorError(ValueError):
    """The Spot Advisor table cannot be used; ``str()`` names the file and the entry, on one
    line (keys are quoted as written, line breaks and all)."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.splitlines()))


class AwsFormatError(ValueError):
    """An AWS answer item we cannot read; ``str()`` names the API, the item and the field."""


def _get(data: Any, *keys: str) -> Any:
    """``data[k1][k2]...``, or None where a level is missing or not a mapping."""
    for key in keys:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


def _short(value: Any) -> str:
    text = repr(value) if not isinstance(value, int) or value.bit_length() < 64 else "a huge int"
    return text if len(text) <= 40 else text[:37] + "..."


def _number(value: Any, what: str) -> float:
    """A finite, non-negative number from a number or a numeric string (AWS sends both)."""
    if value is None:
        raise AwsFormatError(f"{what} is missing")
    number = math.nan
    if isinstance(value, int | float | str) and not isinstance(value, bool):
        with contextlib.suppress(ValueError, OverflowError):  # "abc"; an int past float
            number = float(value)
    if not math.isfinite(number) or number < 0:
        raise AwsFormatError(f"{what}: {_short(value)} is not a non-negative number")
    return number


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise AwsFormatError(f"{what} is missing" if value is None else f"{what}: {_short(value)}")
    return value


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
    where = f"DescribeInstanceTypes: {_short(_get(type_info, 'InstanceType'))}: GpuInfo.Gpus"
    gpus = _get(type_info, "GpuInfo", "Gpus") or []
    if not isinstance(gpus, list):
        raise AwsFormatError(f"{where}: {_short(gpus)} is not a list")
    for gpu in gpus:
        if not isinstance(gpu, Mapping):
            raise AwsFormatError(f"{where}: {_short(gpu)} is not an object")
        if _number(gpu.get("GpuPartitionSize", 1.0), f"{where}.GpuPartitionSize") < 1.0:
            continue  # a slice of one GPU (g6f)
        memory = _number(_get(gpu, "MemoryInfo", "SizeInMiB") or 0, f"{where}.MemoryInfo")
        name = canonical_gpu(str(gpu.get("Name", "")), memory)
        count = gpu.get("Count", 0)
        if not isinstance(count, int) or isinstance(count, bool):
            raise AwsFormatError(f"{where}.Count: {_short(count)} is not a whole number")
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
    prices (capacity-reservation and similar rows) are not offers, so they give None, as
    does a product that is not an instance (no instanceType or regionCode). A product in
    a shape we cannot read raises AwsFormatError.
    """
    try:
        data = json.loads(item) if isinstance(item, str) else item
    except ValueError:  # not JSON, or a number too long to read
        raise AwsFormatError("GetProducts: a PriceList entry is not JSON") from None
    if not isinstance(data, Mapping):
        raise AwsFormatError(f"GetProducts: a PriceList entry is {type(data).__name__}")
    attrs = _get(data, "product", "attributes") or {}
    itype, region = _get(attrs, "instanceType"), _get(attrs, "regionCode")
    if not itype or not region:
        return None
    where = f"GetProducts: {_short(_text(itype, 'GetProducts: instanceType'))}"
    _text(region, f"{where}: regionCode")
    prices = []
    for term in _values(_get(data, "terms", "OnDemand"), f"{where}: terms.OnDemand"):
        dims = _values(_get(term, "priceDimensions"), f"{where}: priceDimensions")
        for dim in dims:
            usd = _get(dim, "pricePerUnit", "USD")
            if str(_get(dim, "unit") or "").lower() in ("hrs", "hours") and usd is not None:
                prices.append(_number(usd, f"{where}: pricePerUnit.USD"))
    prices = [p for p in prices if p > 0]
    return OnDemandPrice(itype, region, min(prices)) if prices else None


def _values(data: Any, what: str) -> list[Any]:
    """The values of an object whose keys are codes (terms, dimensions); each an object."""
    if data is None:
        return []
    if not isinstance(data, Mapping) or not all(isinstance(v, Mapping) for v in data.values()):
        raise AwsFormatError(f"{what} is not an object of objects")
    return list(data.values())


def spot_point(region: str, item: Mapping[str, Any]) -> SpotPricePoint:
    """One DescribeSpotPriceHistory entry; AwsFormatError for one we cannot read."""
    what = "DescribeSpotPriceHistory"
    zone = _text(_get(item, "AvailabilityZone"), f"{what}: AvailabilityZone")
    itype = _text(_get(item, "InstanceType"), f"{what}: InstanceType")
    what = f"{what}: {_short(itype)} in {_short(zone)}"
    at = _get(item, "Timestamp")
    if not isinstance(at, datetime):
        raise AwsFormatError(f"{what}: Timestamp {_short(at)} is not a time")
    price = _number(_get(item, "SpotPrice"), f"{what}: SpotPrice")
    return SpotPricePoint(
        cloud="aws", region=region, zone=zone, instance_type=itype, price_per_hour=price, at=_at(at)
    )


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
    """The table at ``path``; SpotAdvisorError (a ValueError) names the file and the entry."""
    return load_model(path, SpotAdvisorTable, SpotAdvisorError)


# ---- assembling offerings (pure) ----------------------------------------------------------


@dataclass(frozen=True)
class InstanceTypeInfo:
    name: str
    vcpus: float
    memory_gb: float
    accelerator: OfferedAccelerator


def instance_type_info(type_info: Mapping[str, Any]) -> InstanceTypeInfo | None:
    """A DescribeInstanceTypes entry with a GPU we know, else None; AwsFormatError for an
    entry we cannot read (no vCPU count, say)."""
    if not isinstance(type_info, Mapping):
        raise AwsFormatError(f"DescribeInstanceTypes: an entry is {type(type_info).__name__}")
    accel = accelerator_of(type_info)
    if accel is None:
        return None
    name = _text(type_info.get("InstanceType"), "DescribeInstanceTypes: InstanceType")
    where = f"DescribeInstanceTypes: {_short(name)}"
    vcpus = _number(_get(type_info, "VCpuInfo", "DefaultVCpus"), f"{where}: VCpuInfo")
    mib = _number(_get(type_info, "MemoryInfo", "SizeInMiB"), f"{where}: MemoryInfo")
    if not vcpus or not mib:
        raise AwsFormatError(f"{where}: no vCPUs or no memory")
    return InstanceTypeInfo(name=name, vcpus=vcpus, memory_gb=mib / 1024, accelerator=accel)


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
        self.skipped: list[str] = []  # answer items not read, since the last warning

    def fetch(self, regions: Sequence[str], now: datetime) -> list[Offering]:
        advisor = load_spot_advisor(self.advisor_path)
        # Two pools: region tasks wait on price look-ups, so they must not share workers.
        with (
            ThreadPoolExecutor(max_workers=max(1, min(len(regions), 4))) as region_pool,
            ThreadPoolExecutor(max_workers=self.max_workers) as pricing_pool,
        ):
            found = list(region_pool.map(lambda r: self._region(r, now, pricing_pool), regions))
        self._warn_skipped()
        return [o for prices in found for o in build_offerings(prices, advisor, now)]

    def spot_history(
        self, instance_types: Sequence[str], regions: Sequence[str], start: datetime, end: datetime
    ) -> list[SpotPricePoint]:
        if not instance_types:
            return []
        points = [p for r in regions for p in self._spot_points(r, instance_types, start, end)]
        self._warn_skipped()
        return points

    def _skip(self, error: AwsFormatError) -> None:
        self.skipped.append(str(error))  # list.append: safe from the pools' threads

    def _warn_skipped(self) -> None:
        """One warning per fetch, however many items were skipped."""
        skipped, self.skipped = self.skipped, []
        if skipped:
            log.warning("aws: %d API answer item(s) skipped, first: %s", len(skipped), skipped[0])

    def instance_types(self, region: str, names: Sequence[str]) -> dict[str, InstanceTypeInfo]:
        """The GPU types among ``names`` as EC2 describes them in ``region``."""
        ec2 = self.clients.client("ec2", region)
        found: dict[str, InstanceTypeInfo] = {}
        for i in range(0, len(names), _TYPES_PER_CALL):
            chunk = list(names[i : i + _TYPES_PER_CALL])
            for page in ec2.get_paginator("describe_instance_types").paginate(InstanceTypes=chunk):
                for entry in page.get("InstanceTypes") or []:
                    try:
                        info = instance_type_info(entry)
                    except AwsFormatError as exc:
                        self._skip(exc)
                        continue
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
            for o in page.get("InstanceTypeOfferings") or []:
                itype, zone = _get(o, "InstanceType"), _get(o, "Location")
                if not isinstance(itype, str) or not isinstance(zone, str) or not zone:
                    self._skip(AwsFormatError(f"DescribeInstanceTypeOfferings: {_short(o)}"))
                elif itype.startswith(GPU_FAMILY_PREFIXES):
                    zones.setdefault(itype, []).append(zone)
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
        prices = []
        for page in pages:
            for item in page.get("PriceList") or []:
                try:
                    p = parse_price_list_item(item)
                except AwsFormatError as exc:
                    self._skip(exc)
                    continue
                if p is not None and (p.instance_type, p.region) == (instance_type, region):
                    prices.append(p.usd_per_hour)
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
        points = []
        for page in pages:
            for item in page.get("SpotPriceHistory") or []:
                try:
                    points.append(spot_point(region, item))
                except AwsFormatError as exc:
                    self._skip(exc)
        return points
