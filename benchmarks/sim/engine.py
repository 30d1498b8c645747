"""The simulator's accounting: one job, ticks of G seconds, pools that are up or not.

The model is the Can't Be Late simulator's (Wu et al., NSDI'24; sky_spot), in whole ticks
so that the omniscient optimum (optimum.py) prices exactly the same world:

- At each tick the policy holds one placement: nothing, on-demand in a region, or spot in a
  pool. Spot can be held at tick ``t`` only while the pool is available at ``t``; a
  running spot placement whose pool goes away is preempted, and the job is idle until the
  policy starts something else.
- Starting anything (a first start, a switch, a relaunch after preemption) costs the
  changeover ``H`` ticks, billed but without progress; moving to another region also
  copies the job's data (``data_gb``) from where it last ran: egress dollars at the route's
  rate, and the copy time in extra ticks. A start runs its course: the placement cannot
  change until those ticks are paid, unless the cloud takes it back. Continuing makes one
  tick of progress.
- Holding a placement bills its price for the tick (the spot price of that tick).
- Checkpoints are continuous by default (the CBL model: a preemption loses only the
  changeover); with ``checkpoint_ticks`` > 0 a preemption also loses the work since the
  last checkpoint.
- The job ends when its work is done; if the deadline passes first it is a miss.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Pool:
    """One spot pool (a zone, one machine shape) and the on-demand price of its region."""

    name: str
    region: str
    cloud: str
    available: Sequence[bool]  # per tick
    spot_price: Sequence[float]  # $/h per tick
    on_demand_price: float  # $/h


@dataclass(frozen=True)
class Job:
    work_ticks: int
    deadline_ticks: int
    changeover_ticks: int
    gap_s: float
    data_region: str | None = None  # where its data is at the start (None: anywhere, free)
    data_gb: float = 0.0
    checkpoint_ticks: int = 0  # 0: continuous checkpoints
    start_tick: int = 0  # ticks of history before the job arrives (policies may read it)

    @property
    def hours_per_tick(self) -> float:
        return self.gap_s / 3600


NONE = "none"
SPOT = "spot"
OD = "od"


@dataclass(frozen=True)
class Placement:
    kind: str  # NONE, SPOT or OD
    pool: int = -1  # index of the pool (for OD: a pool of that region)

    def region(self, pools: Sequence[Pool]) -> str | None:
        return pools[self.pool].region if self.pool >= 0 else None


IDLE = Placement(NONE)


@dataclass
class State:
    """What the policy sees of the job at tick ``t`` (never the future)."""

    t: int
    placement: Placement
    overhead_left: int
    progress: int
    data_region: str | None
    preempted_at: list[tuple[int, int]] = field(default_factory=list)  # (tick, pool)
    cost: float = 0.0


Route = Callable[[str | None, str | None], tuple[float, int]]
"""(from region, to region) -> (egress $ per GB, extra ticks to copy the data)."""


def free_routes(src: str | None, dst: str | None) -> tuple[float, int]:
    return 0.0, 0


Policy = Callable[[State, Sequence[Pool], Job], Placement]


@dataclass
class Outcome:
    cost: float
    finished_tick: int | None
    missed: bool
    preemptions: int
    egress: float
    spot_ticks: int
    od_ticks: int
    decisions: int


def start_overhead(job: Job, route: Route, src: str | None, dst: str | None) -> tuple[int, float]:
    """Ticks and egress dollars of starting in region ``dst`` with the data in ``src``."""
    if src is None or dst is None or src == dst or job.data_gb <= 0:
        return job.changeover_ticks, 0.0
    rate, ticks = route(src, dst)
    return job.changeover_ticks + ticks, rate * job.data_gb


def simulate(
    job: Job, pools: Sequence[Pool], policy: Policy, route: Route = free_routes
) -> Outcome:
    state = State(job.start_tick, IDLE, 0, 0, job.data_region)
    out = Outcome(0.0, None, False, 0, 0.0, 0, 0, 0)
    horizon = min(len(p.available) for p in pools)
    last_checkpoint = 0
    for t in range(job.start_tick, min(job.start_tick + job.deadline_ticks, horizon)):
        state.t = t
        p = state.placement
        if p.kind == SPOT and not pools[p.pool].available[t]:
            out.preemptions += 1
            state.preempted_at.append((t, p.pool))
            state.placement = IDLE
            state.overhead_left = 0
            if job.checkpoint_ticks:
                state.progress = last_checkpoint
        choice = policy(state, pools, job)
        out.decisions += 1
        if state.placement.kind != NONE and state.overhead_left > 0:
            choice = state.placement  # a launch (and its data copy) under way runs its course
        if choice.kind == SPOT and not pools[choice.pool].available[t]:
            choice = IDLE  # a launch into a pool with no capacity fails
        if choice != state.placement:
            state.placement = choice
            if choice.kind != NONE:
                dst = choice.region(pools)
                ticks, egress = start_overhead(job, route, state.data_region, dst)
                state.overhead_left = ticks
                state.cost += egress
                out.egress += egress
                state.data_region = dst
            else:
                state.overhead_left = 0
        if choice.kind == NONE:
            continue
        pool = pools[choice.pool]
        price = pool.spot_price[t] if choice.kind == SPOT else pool.on_demand_price
        state.cost += price * job.hours_per_tick
        if choice.kind == SPOT:
            out.spot_ticks += 1
        else:
            out.od_ticks += 1
        if state.overhead_left > 0:
            state.overhead_left -= 1
        else:
            state.progress += 1
            if job.checkpoint_ticks and state.progress % job.checkpoint_ticks == 0:
                last_checkpoint = state.progress
        if state.progress >= job.work_ticks:
            out.finished_tick = t + 1
            break
    out.cost = state.cost
    out.missed = out.finished_tick is None
    return out
