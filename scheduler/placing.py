"""What placing a queued job decides, once its plan is made: pure, no I/O.

The controller plans each queued job, then writes the moves of a batch of them in one
transaction (Store.transition_many). This module turns a plan into the move: PLACED with
a new attempt on the chosen placement (a warm cluster counted in, and taken from the
pool so the next job in the batch does not count it too), FAILED with why nothing fits,
or a note that the job waits (a scavenger with no headroom to use).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from jobs.lifecycle import AttemptState, JobState
from jobs.spec import JobSpec, Priority
from scheduler.cluster_policy import choose, warm_for
from scheduler.explain import money, placement_reason
from scheduler.placement import Placement, Plan
from scheduler.records import AttemptRecord, ClusterRecord, JobRecord
from scheduler.scavenger import may_use
from scheduler.store import Move

PLACE_BATCH = 64
"""Queued jobs decided before their moves are written together."""

QUEUED = (JobState.PENDING, JobState.MIGRATING)


def queued(job: JobRecord) -> bool:
    return job.state in QUEUED and not job.cancel_requested


def submission_id(job: JobRecord, attempt: int) -> str:
    """Deterministic, so a retried submit finds the job it already made; the uid keeps
    two databases that share a Ray cluster from colliding."""
    return f"sched-{job.id}-{job.uid}-{attempt}"


@dataclass(frozen=True, slots=True)
class Decision:
    """A queued job's move, decided but not yet written. ``attempt``: the new attempt of
    a PLACED move; ``frees``: the placement whose commitment headroom scavengers give back
    once the move is written (None: nothing to free)."""

    job: JobRecord
    move: Move
    attempt: AttemptRecord | None = None
    frees: Placement | None = None


def decide(
    job: JobRecord,
    spec: JobSpec,
    result: Plan,
    *,
    attempts_so_far: int,
    idle: list[ClusterRecord],
    now: datetime,
    scavenger_on_demand: bool,
) -> Decision | str:
    """The move for ``job`` given its plan, or why it waits (a scavenger whose placements
    would all spend money). ``idle`` loses the warm cluster the choice counts on."""
    assert job.id is not None
    priority = Priority(job.priority)
    waiting: Sequence[JobState] = QUEUED
    if priority is Priority.SCAVENGER:
        fits = [p for p in result.placements if may_use(p, spec, scavenger_on_demand)]
        if result.placements and not fits:
            return (
                "waiting for idle commitment headroom (or spot under max_price_per_hour):"
                f" the cheapest now costs {money(result.placements[0].cost.total)}"
            )
        result = result.model_copy(update={"placements": fits})
    if not result.placements:
        why = f"no feasible placement: {result.why_none()}"
        failed = Move(job.id, JobState.FAILED, why, waiting, job_updates={"message": why})
        return Decision(job, failed)
    choice = choose(result.placements, idle)
    if choice.warm:
        idle.remove(warm_for(choice.placement, idle))
    best = choice.placement
    number = attempts_so_far + 1
    attempt = AttemptRecord(
        job_id=job.id,
        number=number,
        state=AttemptState.STARTING,
        cloud=best.offering.cloud,
        region=best.offering.region,
        zone=best.offering.zone,
        instance_type=best.offering.instance_type,
        market=best.offering.market,
        price_per_hour=best.offering.price_per_hour,
        num_nodes=best.num_nodes,
        placement_json=best.model_dump_json(),
        submission_id=submission_id(job, number),
        created_at=now,
    )
    reason = placement_reason(choice, result)
    move = Move(job.id, JobState.PLACED, reason, waiting, new_attempt=attempt)
    frees = best if priority is not Priority.SCAVENGER else None
    return Decision(job, move, attempt, frees)
