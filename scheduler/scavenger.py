"""Scavenger backfill: fill commitments already paid for, and give the room back at once.

A commitment's unused headroom is money spent for nothing; a scavenger job placed in it
costs nothing more. But the headroom belongs to production and standard work: when one of
those needs it, scavengers in the way yield (SIGTERM, checkpoint, requeue) in the same
scheduling tick, so paid-for capacity never makes real work wait or pay on-demand.

Pure: the controller and the simulation in tests/test_scavenger.py call the same two
functions with what is running and what wants to run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from jobs.spec import JobSpec, Priority
from providers.offering import MarketKind
from scheduler.commitments import Commitment, Usage, allocate
from scheduler.placement import Placement

COVERED_EPS = 1e-9


@dataclass(frozen=True, slots=True)
class Running:
    job_id: int
    priority: Priority
    usage: Usage
    started_at: datetime


def fully_covered(commitments: Sequence[Commitment], usages: Sequence[Usage], at: datetime) -> bool:
    """Whether every on-demand dollar of these usages is inside some commitment."""
    return allocate(commitments, usages, at).uncovered <= COVERED_EPS


def admit(
    commitments: Sequence[Commitment],
    running: Sequence[Running],
    queue: Sequence[tuple[int, Usage]],
    at: datetime,
) -> list[int]:
    """The queued scavengers (job id, usage), in queue order, that fit in today's headroom
    next to what runs: each one admitted must leave every usage covered. Spot usage is
    never in a commitment, so it is not admitted here (a scavenger may still run on spot
    under its own max price: that is the plan's decision, not the headroom's)."""
    usages = [r.usage for r in running]
    baseline = allocate(commitments, usages, at).uncovered
    admitted = []
    for job_id, usage in queue:
        if usage.market != MarketKind.ON_DEMAND:
            continue
        trial = allocate(commitments, [*usages, usage], at).uncovered
        if trial <= baseline + COVERED_EPS:
            usages.append(usage)
            admitted.append(job_id)
    return admitted


def make_room(
    commitments: Sequence[Commitment],
    running: Sequence[Running],
    need: Usage,
    at: datetime,
) -> list[int]:
    """Scavengers to stop so that ``need`` (a production or standard placement) is covered
    as well as it would be if no scavenger ran; the newest first (they lose the least
    work), and no more than that. Empty when nothing needs to yield."""
    scavengers = sorted(
        (r for r in running if r.priority is Priority.SCAVENGER),
        key=lambda r: r.started_at,
        reverse=True,
    )
    others = [r.usage for r in running if r.priority is not Priority.SCAVENGER]
    target = allocate(commitments, [*others, need], at).uncovered
    keep = [r.usage for r in scavengers]
    stop: list[int] = []
    for r in scavengers:
        if allocate(commitments, [*others, *keep, need], at).uncovered <= target + COVERED_EPS:
            break
        keep.remove(r.usage)
        stop.append(r.job_id)
    return stop


def overflow(
    commitments: Sequence[Commitment], running: Sequence[Running], at: datetime
) -> list[int]:
    """Scavengers to stop because the headroom they ran in is gone (production grew, or a
    commitment ended): past this, they would be paying on-demand, which they may not.
    Newest first, until no scavenger's usage is outside the commitments."""
    others = [r.usage for r in running if r.priority is not Priority.SCAVENGER]
    scavengers = sorted(
        (r for r in running if r.priority is Priority.SCAVENGER), key=lambda r: r.started_at
    )
    target = allocate(commitments, others, at).uncovered
    stop: list[int] = []
    while scavengers:
        usages = [*others, *(r.usage for r in scavengers)]
        if allocate(commitments, usages, at).uncovered <= target + COVERED_EPS:
            break
        stop.append(scavengers.pop().job_id)
    return stop


def may_use(p: Placement, spec: JobSpec, on_demand_allowed: bool) -> bool:
    """Scavengers run where they cost (next to) nothing: inside commitment headroom or on
    capacity already paid for (a $0/h local machine), or on spot under their own max price;
    on-demand money only when the setting allows it."""
    if p.cost.total <= 1e-6 or on_demand_allowed:
        return True
    limit = spec.constraints.max_price_per_hour
    return p.offering.market is MarketKind.SPOT and limit is not None
