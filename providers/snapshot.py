"""The shipped price snapshot (configs/prices/snapshot.yaml) as offerings.

The snapshot is what ``sched`` knows with no network and no credentials: list prices
per region for the common GPU/TPU shapes of both clouds, each dated by its source so
that every offering built from it can say "snapshot from <date>".
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from jobs.accelerators import AcceleratorKind, parse_accelerator
from providers.config_files import load_model
from providers.offering import (
    InterruptionSource,
    MarketKind,
    OfferedAccelerator,
    Offering,
    PriceSource,
)
from providers.spot_buckets import bucket_rate

DEFAULT_SNAPSHOT = Path(__file__).resolve().parent.parent / "configs" / "prices" / "snapshot.yaml"


class SnapshotError(ValueError):
    """The snapshot file cannot be used; ``str()`` names the file and the entry."""


class SnapshotSource(BaseModel):
    model_config = ConfigDict(extra="forbid")

    as_of: date
    detail: str


class SnapshotRow(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cloud: str
    type: str
    accelerator: str
    vcpus: float = Field(gt=0)
    memory_gb: float = Field(gt=0)
    region: str
    zones: list[str] = Field(min_length=1)
    on_demand: float | None = Field(default=None, ge=0)
    spot: float | None = Field(default=None, ge=0)
    interruption: str | None = None
    source: str


class SnapshotFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    assembled: date
    gcp_spot_interruption_rate: float = Field(ge=0)
    sources: dict[str, SnapshotSource]
    offerings: list[SnapshotRow]


def _accelerator(text: str) -> OfferedAccelerator:
    req = parse_accelerator(text)
    if req.kind is AcceleratorKind.TPU:
        return OfferedAccelerator(name=req.name, count=1, memory_gb=req.memory_gb)
    return OfferedAccelerator(name=req.name, count=req.count, memory_gb=req.memory_gb)


def _offerings(row: SnapshotRow, source: SnapshotSource, gcp_rate: float) -> list[Offering]:
    as_of = datetime.combine(source.as_of, time(), tzinfo=UTC)
    accel = _accelerator(row.accelerator)
    if row.interruption:
        rate, why = bucket_rate(row.interruption), InterruptionSource.PUBLISHED_BUCKET
    elif row.cloud == "gcp":
        rate, why = gcp_rate, InterruptionSource.CONFIGURED
    else:
        rate, why = 0.0, InterruptionSource.NONE
    markets = [(MarketKind.ON_DEMAND, row.on_demand, 0.0, InterruptionSource.NONE)]
    markets.append((MarketKind.SPOT, row.spot, rate, why))
    return [
        Offering(
            cloud=row.cloud,
            region=row.region,
            zone=zone,
            instance_type=row.type,
            accelerators=accel,
            vcpus=row.vcpus,
            memory_gb=row.memory_gb,
            market=market,
            price_per_hour=price,
            interruption_rate=market_rate,
            interruption_source=market_why,
            as_of=as_of,
            price_source=PriceSource.SNAPSHOT,
            source_detail=f"snapshot from {source.as_of}: {source.detail}",
        )
        for market, price, market_rate, market_why in markets
        if price is not None
        for zone in row.zones
    ]


def load_snapshot(path: Path = DEFAULT_SNAPSHOT) -> list[Offering]:
    """Every offering in the snapshot; SnapshotError names the file and the bad entry."""
    snap = load_model(path, SnapshotFile, SnapshotError)
    offerings: list[Offering] = []
    for i, row in enumerate(snap.offerings):
        source = snap.sources.get(row.source)
        if source is None:
            raise SnapshotError(f"{path}: offerings.{i}.source: unknown source {row.source!r}")
        try:
            offerings.extend(_offerings(row, source, snap.gcp_spot_interruption_rate))
        except ValueError as exc:
            raise SnapshotError(f"{path}: offerings.{i}: {exc}") from None
    return offerings
