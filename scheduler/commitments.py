"""Savings Plans and CUDs: what they cover, how much of them an hour of usage used, and
what headroom is left for the next job. Pure: commitments and usage in, figures out.

Every commitment is measured in on-demand dollars. A commitment of ``C`` $/h at discount
``d`` covers up to ``C / (1 - d)`` $/h of on-demand usage (its *capacity*); covered usage
draws ``(1 - d)`` of its on-demand value from the commitment, and whatever the commitment
does not cover is paid at on-demand rates. The fee is paid whether used or not, so:

    effective discount = 1 - (fees + spend beyond them) / on-demand value of all usage

which goes negative below break-even (utilization ``1 - d``): a 60%-off plan used at 30%
costs a third more than paying on-demand. Resource-based CUDs (vCPUs, memory, GPUs of a
type, in a region) are also measured in on-demand dollars of the machines they match;
that is exact when the committed resources are whole machines of the family used, and an
approximation otherwise.

Spot usage is never covered (AWS and GCP apply commitments to on-demand usage only).
Allocation follows AWS's order: the most specific commitment first (family and region,
then region, then any), and among equals the deepest discount first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from providers.commitment import Commitment, CommitmentKind
from providers.offering import MarketKind, Offering

__all__ = ["Commitment", "CommitmentKind", "Headroom", "Usage", "allocate", "covers"]


def covers(commitment: Commitment, usage: Usage) -> bool:
    if usage.cloud != commitment.cloud or usage.market != MarketKind.ON_DEMAND:
        return False
    if commitment.regions and usage.region not in commitment.regions:
        return False
    if commitment.family is None:
        return True
    family = commitment.family.lower()
    return family in (usage.family.lower(), (usage.accelerator or "").lower())


def instance_family(cloud: str, instance_type: str) -> str:
    """``p4d.24xlarge`` -> ``p4d``; ``a2-highgpu-1g`` -> ``a2``; a TPU slice keeps its name."""
    if cloud == "aws":
        return instance_type.split(".", 1)[0]
    if instance_type.startswith("tpu-"):
        return instance_type
    return instance_type.split("-", 1)[0]


class Usage(BaseModel):
    """One running placement, for one hour (or part of one)."""

    model_config = ConfigDict(frozen=True)

    cloud: str
    region: str
    instance_type: str
    market: MarketKind
    on_demand_per_hour: float = Field(ge=0, description="Its on-demand $/h, all nodes.")
    accelerator: str | None = None
    hours: float = Field(default=1.0, ge=0, le=1, description="Part of the hour it ran.")
    job_id: int | None = None

    @property
    def family(self) -> str:
        return instance_family(self.cloud, self.instance_type)

    @property
    def value(self) -> float:
        return self.on_demand_per_hour * self.hours

    @classmethod
    def of(
        cls, offering: Offering, num_nodes: int, on_demand_per_hour: float, **kw: object
    ) -> Usage:
        accel = offering.accelerators.name if offering.accelerators else None
        return cls(
            cloud=offering.cloud,
            region=offering.region,
            instance_type=offering.instance_type,
            market=offering.market,
            on_demand_per_hour=on_demand_per_hour * num_nodes,
            accelerator=accel,
            **kw,  # type: ignore[arg-type]
        )


@dataclass
class CommitmentHour:
    """One commitment over one hour."""

    commitment: Commitment
    covered: float = 0.0  # on-demand $ of usage it covered

    @property
    def fee_used(self) -> float:
        return self.covered * (1 - self.commitment.discount)

    @property
    def fee_unused(self) -> float:
        return self.commitment.hourly_commitment - self.fee_used

    @property
    def utilization(self) -> float:
        return self.fee_used / self.commitment.hourly_commitment

    @property
    def headroom(self) -> float:
        """On-demand $/h of usage it could still cover this hour."""
        return self.commitment.capacity - self.covered


@dataclass
class HourAllocation:
    """Commitments over one hour: what each covered, and the usage none covered."""

    hours: list[CommitmentHour] = field(default_factory=list)
    uncovered: float = 0.0  # on-demand $ of eligible-cloud usage paid at on-demand rates
    on_demand_value: float = 0.0  # on-demand $ of all on-demand usage

    @property
    def fees(self) -> float:
        return sum(h.commitment.hourly_commitment for h in self.hours)

    @property
    def effective_discount(self) -> float | None:
        """1 - what was paid / what on-demand would have cost; None with no usage."""
        if self.on_demand_value <= 0:
            return None
        return 1 - (self.fees + self.uncovered) / self.on_demand_value

    @property
    def utilization(self) -> float | None:
        if not self.hours:
            return None
        return sum(h.fee_used for h in self.hours) / self.fees


def allocate(
    commitments: Sequence[Commitment], usages: Sequence[Usage], at: datetime
) -> HourAllocation:
    """Cover the hour's usage with the commitments active at ``at``, most specific first."""
    active = sorted(
        (c for c in commitments if c.active(at)),
        key=lambda c: (-c.specificity, -c.discount, c.id),
    )
    result = HourAllocation(hours=[CommitmentHour(c) for c in active])
    for usage in usages:
        if usage.market != MarketKind.ON_DEMAND:
            continue
        left = usage.value
        result.on_demand_value += left
        for hour in result.hours:
            if left <= 0:
                break
            if covers(hour.commitment, usage):
                take = min(left, hour.headroom)
                hour.covered += take
                left -= take
        result.uncovered += left
    return result


class Headroom:
    """The cost model's commitment credit: unused capacity of the hour, per placement.

    A placement that fits in headroom costs nothing more than what is already paid, so
    the credit is its on-demand price, up to the headroom of the commitments covering it.
    """

    def __init__(self, allocation: HourAllocation) -> None:
        self.allocation = allocation

    def covered_per_hour(self, offering: Offering, num_nodes: int) -> float:
        if offering.market != MarketKind.ON_DEMAND:
            return 0.0
        usage = Usage.of(offering, num_nodes, offering.price_per_hour)
        free = sum(h.headroom for h in self.allocation.hours if covers(h.commitment, usage))
        return min(free, usage.on_demand_per_hour)


class Ran(Protocol):
    """What utilization needs of an attempt (AttemptRecord has these)."""

    cloud: str
    region: str
    instance_type: str
    market: str
    price_per_hour: float
    num_nodes: int
    started_at: datetime | None
    ended_at: datetime | None
    job_id: int


def usage_in_hour(attempt: Ran, hour: datetime, now: datetime) -> Usage | None:
    """The attempt's usage within ``[hour, hour + 1h)``; running attempts count up to now."""
    if attempt.started_at is None:
        return None
    end = attempt.ended_at or now
    overlap = (min(end, hour + HOUR) - max(attempt.started_at, hour)).total_seconds() / 3600
    if overlap <= 0:
        return None
    return attempt_usage(attempt, hours=min(1.0, overlap))


def attempt_usage(attempt: Ran, hours: float = 1.0) -> Usage:
    """An attempt as usage: it ran at its market's rate, the rate commitments measure."""
    return Usage(
        cloud=attempt.cloud,
        region=attempt.region,
        instance_type=attempt.instance_type,
        market=MarketKind(attempt.market),
        on_demand_per_hour=attempt.price_per_hour * attempt.num_nodes,
        hours=hours,
        job_id=attempt.job_id,
    )


def hourly(
    commitments: Sequence[Commitment],
    attempts: Sequence[Ran],
    start: datetime,
    end: datetime,
    now: datetime,
) -> list[tuple[datetime, HourAllocation]]:
    """Each whole hour from ``start`` (floored) to ``end``: how the commitments were used.

    On-demand attempts are priced at the rate they ran at, which is the on-demand rate
    commitments are measured in; spot attempts are not covered and only add to usage."""
    hour = start.replace(minute=0, second=0, microsecond=0)
    out = []
    while hour < end:
        usages = [u for a in attempts if (u := usage_in_hour(a, hour, now)) is not None]
        out.append((hour, allocate(commitments, usages, hour)))
        hour += HOUR
    return out


HOUR = timedelta(hours=1)
