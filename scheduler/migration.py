"""What a job's history changes about where it may go next: pure, from its attempts.

After a preemption the pool that preempted it is blocked for a while (capacity that was
just reclaimed is likely to be reclaimed again), every preemption counts against
``max_interruptions``, and the last checkpoint has to be read from wherever it is: a
placement far from it pays to move it, which the plan weighs like any other data.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from jobs.lifecycle import AttemptState
from jobs.spec import JobSpec
from providers.network import Location
from scheduler.constraints import PlanContext
from scheduler.data_gravity import checkpoint_location
from scheduler.placement import Placement


class PastAttempt(Protocol):
    """The parts of an attempt record this module reads."""

    state: str
    cloud: str
    region: str
    zone: str
    instance_type: str
    market: str
    ended_at: datetime | None
    placement_json: str


def attempt_pool(a: PastAttempt) -> str:
    """The pool an attempt ran in, spelt as Offering.pool spells it."""
    try:
        return Placement.model_validate_json(a.placement_json).offering.pool
    except ValueError:
        return f"{a.cloud}/{a.zone}/{a.instance_type}/{a.market}"


def restore_location(spec: JobSpec, attempts: Sequence[PastAttempt]) -> Location | None:
    """Where the checkpoint to resume from is: its bucket when the spec names the region,
    else beside the last attempt that ran (on its cloud and region)."""
    ck = spec.checkpoint
    ran = [a for a in attempts if a.state != AttemptState.STARTING]
    if ck is None or ck.size_gb <= 0 or not ran:
        return None
    bucket = checkpoint_location(ck)
    if bucket is not None:
        return bucket
    last = ran[-1]
    if last.cloud == "local":
        return Location(cloud="local")
    return Location(cloud=last.cloud, region=last.region)  # type: ignore[arg-type]


def replan_context(
    spec: JobSpec,
    attempts: Sequence[PastAttempt],
    *,
    now: datetime,
    hours_left: float | None,
    cooldown_s: float,
    launchable_clouds: frozenset[str] | None = None,
) -> PlanContext:
    """The plan context for the job's next placement, given what happened to it so far."""
    preempted = [a for a in attempts if a.state == AttemptState.PREEMPTED]
    blocked = frozenset(
        attempt_pool(a)
        for a in preempted
        if a.ended_at is None or (now - a.ended_at).total_seconds() < cooldown_s
    )
    return PlanContext(
        hours_left=hours_left,
        blocked_pools=blocked,
        interruptions_so_far=len(preempted),
        launchable_clouds=launchable_clouds,
        restore_from=restore_location(spec, attempts),
    )
