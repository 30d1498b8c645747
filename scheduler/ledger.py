"""What an attempt actually cost once it ended: compute for the time it ran, and the data
it actually moved (the plan's data moves, scaled to what happened).

The plan prices expectations (so many checkpoint writes, so many restores); the ledger
settles facts. An attempt that started pulled its inputs; one that resumed read its
checkpoint back; checkpoint writes happened in proportion to the time it ran; outputs
left only if it succeeded. The expected reads after future preemptions are not charged
here: the next attempt's restore is, when it happens.
"""

from __future__ import annotations

from datetime import datetime

from jobs.lifecycle import AttemptState
from scheduler.data_gravity import DataMove
from scheduler.placement import Placement
from scheduler.records import AttemptRecord, LedgerRecord


def hours_run(
    attempt: AttemptRecord, ended_at: datetime, billed_from: datetime | None = None
) -> float:
    """Hours billed: from ``billed_from`` (when the machines were asked for, so a cloud
    cluster's boot is paid by the attempt that launched it) or else from the start on Ray."""
    start = billed_from or attempt.started_at
    if start is None:
        return 0.0
    return max(0.0, (ended_at - start).total_seconds() / 3600)


def move_cost(move: DataMove, *, hours: float, planned_hours: float, succeeded: bool) -> float:
    """The part of one planned move that this attempt actually made."""
    if move.what.startswith("output "):
        return move.usd if succeeded else 0.0
    if move.what.startswith("checkpoint writes "):
        if planned_hours <= 0:
            return 0.0
        return move.usd * min(1.0, hours / planned_hours)
    if move.what.startswith("checkpoint reads "):
        return 0.0
    return move.usd  # inputs and the restore of the last checkpoint: paid at the start


def egress_cost(placement: Placement, *, hours: float, succeeded: bool) -> float:
    return sum(
        move_cost(m, hours=hours, planned_hours=placement.expected_hours, succeeded=succeeded)
        for m in placement.data_moves
    )


def settle(
    attempt: AttemptRecord,
    ended_at: datetime,
    outcome: AttemptState,
    billed_from: datetime | None = None,
) -> LedgerRecord:
    """The ledger line for an attempt ending now with ``outcome``. An attempt that never
    reached its machine moved no data; it pays only for machines it had launched."""
    hours = hours_run(attempt, ended_at, billed_from)
    compute = attempt.price_per_hour * attempt.num_nodes * hours
    egress = 0.0
    if attempt.started_at is not None:
        placement = Placement.model_validate_json(attempt.placement_json)
        egress = egress_cost(placement, hours=hours, succeeded=outcome is AttemptState.SUCCEEDED)
    return LedgerRecord(
        attempt_id=attempt.id or 0,
        job_id=attempt.job_id,
        cloud=attempt.cloud,
        region=attempt.region,
        market=attempt.market,
        hours=hours,
        compute_usd=compute,
        egress_usd=egress,
        total_usd=compute + egress,
        outcome=outcome,
        settled_at=ended_at,
    )
