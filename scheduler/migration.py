"""What a job's history changes about where it may go next: pure, from its attempts.

After a preemption the pool that preempted it is blocked for a while (capacity that was
just reclaimed is likely to be reclaimed again), every preemption counts against
``max_interruptions``, and the last checkpoint has to be read from wherever it is: a
placement far from it pays to move it, which the plan weighs like any other data.

A launch the cloud refused blocks for the same while what refused it, without counting
as an interruption: no capacity blocks the pool (another zone may have some), no quota
blocks the cloud's whole region (quotas are regional, every zone would say the same).
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


# Attempts that never had a machine to run on: no checkpoint can be beside them.
_NEVER_RAN = frozenset({AttemptState.STARTING, AttemptState.NO_CAPACITY, AttemptState.NO_QUOTA})


_BLOCKED_BY = {
    AttemptState.PREEMPTED: "preempted",
    AttemptState.NO_CAPACITY: "the cloud had no capacity",
    AttemptState.NO_QUOTA: "the cloud refused for quota",
}
"""Why a pool or region is blocked, as a plan says it."""


def restore_location(spec: JobSpec, attempts: Sequence[PastAttempt]) -> Location | None:
    """Where the checkpoint to resume from is: its bucket when the spec names the region,
    else beside the last attempt that ran (on its cloud and region)."""
    ck = spec.checkpoint
    ran = [a for a in attempts if a.state not in _NEVER_RAN]
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
    recent = [
        a for a in attempts if a.ended_at is None or (now - a.ended_at).total_seconds() < cooldown_s
    ]
    pools: dict[str, str] = {}
    regions: dict[str, str] = {}
    for a in recent:
        why = _BLOCKED_BY.get(AttemptState(a.state))
        if why is None:
            continue
        minutes = max(1, round(cooldown_s / 60))
        why = f"{why} {_ago(now, a.ended_at)}, for {minutes} min"
        if a.state == AttemptState.NO_QUOTA:
            regions[f"{a.cloud}/{a.region}"] = why
        else:
            pools[attempt_pool(a)] = why
    return PlanContext(
        hours_left=hours_left,
        blocked_pools=frozenset(pools),
        blocked_regions=frozenset(regions),
        blocked_why={**pools, **regions},
        interruptions_so_far=len(preempted),
        launchable_clouds=launchable_clouds,
        restore_from=restore_location(spec, attempts),
    )


def _ago(now: datetime, ended_at: datetime | None) -> str:
    if ended_at is None:
        return "just now"
    return f"{max(0, round((now - ended_at).total_seconds() / 60))} min ago"
