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

from collections.abc import Iterable, Sequence
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


class BlockedPools(frozenset[str]):
    """Pools blocked one by one, plus every pool of a blocked cloud region.

    PlanContext.blocked_pools is asked ``pool in blocked`` for each offering, so a region
    block is answered here, from the pool's cloud and zone; ``regions`` holds
    ``cloud/region`` (``aws/us-east-1``). Truthy when either part blocks something.
    """

    regions: frozenset[str]

    def __new__(cls, pools: Iterable[str] = (), regions: Iterable[str] = ()) -> BlockedPools:
        self = super().__new__(cls, pools)
        self.regions = frozenset(regions)
        return self

    def __contains__(self, pool: object) -> bool:
        if frozenset.__contains__(self, pool):
            return True
        if not self.regions or not isinstance(pool, str):
            return False
        cloud, _, rest = pool.partition("/")
        zone = rest.split("/", 1)[0]
        return any(
            cloud == where.split("/", 1)[0] and zone_in_region(zone, where.split("/", 1)[1])
            for where in self.regions
        )

    def __bool__(self) -> bool:
        return frozenset.__len__(self) > 0 or bool(self.regions)


def zone_in_region(zone: str, region: str) -> bool:
    """``us-east-1a`` and ``us-east-1-bos-1a`` are in ``us-east-1`` (``us-east-10a`` is
    not); ``us-central1-a`` is in ``us-central1``; a region is in itself."""
    if not zone.startswith(region):
        return False
    rest = zone[len(region) :]
    return not rest or not rest[0].isdigit()


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
    pool_blocking = (AttemptState.PREEMPTED, AttemptState.NO_CAPACITY)
    blocked = BlockedPools(
        (attempt_pool(a) for a in recent if a.state in pool_blocking),
        (f"{a.cloud}/{a.region}" for a in recent if a.state == AttemptState.NO_QUOTA),
    )
    return PlanContext(
        hours_left=hours_left,
        blocked_pools=blocked,
        interruptions_so_far=len(preempted),
        launchable_clouds=launchable_clouds,
        restore_from=restore_location(spec, attempts),
    )
