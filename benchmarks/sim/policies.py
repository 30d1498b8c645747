"""The policies compared, each a function (state, pools, job) -> placement for this tick.

Every policy but the on-demand one keeps the same deadline guard (``must_commit``): when
the ticks left no longer cover the work left plus a fresh on-demand start, go on-demand in
the data's region and stay. Without it a spot-only policy simply misses deadlines; with
it every policy meets them, and the comparison is about money.
"""

from __future__ import annotations

import atexit
import itertools
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from benchmarks.sim.engine import IDLE, NONE, OD, SPOT, Job, Placement, Pool, Route, State
from benchmarks.sim.engine import start_overhead as _start
from jobs.loading import parse_spec
from providers.offering import InterruptionSource, MarketKind, Offering, PriceSource
from scheduler.config import load_settings
from scheduler.controller import Controller
from scheduler.cost_model import CostParams
from scheduler.spot_timing import ON_DEMAND as OD_MODE
from scheduler.spot_timing import SPOT as SPOT_MODE
from scheduler.spot_timing import WAIT as WAIT_MODE
from scheduler.spot_timing import PoolModel, SpotTiming, markov_model
from scheduler.store import Store

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def od_in(pools: Sequence[Pool], region: str | None) -> Placement:
    """On-demand where the data is (no move), else the cheapest on-demand region."""
    same = [i for i, p in enumerate(pools) if p.region == region]
    if same:
        return Placement(OD, same[0])
    return Placement(OD, min(range(len(pools)), key=lambda i: pools[i].on_demand_price))


def committed(state: State, pools: Sequence[Pool]) -> Placement:
    """On-demand to the end: where it already runs, else where the data is."""
    return state.placement if state.placement.kind == OD else od_in(pools, state.data_region)


def must_commit(
    state: State,
    pools: Sequence[Pool],
    job: Job,
    route: Route,
    *,
    sticky: bool = True,
    timed: bool = False,
) -> bool:
    """The last safe moment: after this tick, a start somewhere (which runs its course,
    data copy included) followed by a loss and an on-demand start could no longer finish.
    ``sticky``: a job already on on-demand stays there (the simple policies' rule).
    ``timed``: the caller's own rule already keeps a changeover in hand (spot_timing does),
    so only data copies need reserving here."""
    left = job.start_tick + job.deadline_ticks - state.t
    work = job.work_ticks - state.progress
    if state.placement.kind == OD and sticky:
        return True
    target = od_in(pools, state.data_region)
    od_now, _ = _start(job, route, state.data_region, target.region(pools))
    worst = max(_start(job, route, state.data_region, p.region)[0] for p in pools)
    if timed:
        return left <= work + od_now + max(0, worst - job.changeover_ticks) + 1
    return left <= work + max(od_now, worst + job.changeover_ticks) + 1


# -- (a) on-demand ---------------------------------------------------------------------------


def on_demand(route: Route):  # type: ignore[no-untyped-def]
    """The cheapest on-demand machine, all the way (the data's region on a tie)."""

    def policy(state: State, pools: Sequence[Pool], job: Job) -> Placement:
        if state.placement.kind == OD:
            return state.placement
        cost = {}
        for i, p in enumerate(pools):
            _, usd = _start(job, route, state.data_region, p.region)
            cost[i] = p.on_demand_price * job.work_ticks * job.hours_per_tick + usd
        return Placement(
            OD, min(cost, key=lambda i: (cost[i], pools[i].region != state.data_region))
        )

    return policy


# -- (b) SkyPilot-style ----------------------------------------------------------------------


def skypilot(route: Route, cooldown_ticks: int):  # type: ignore[no-untyped-def]
    """SkyPilot's managed-job failover (EAGER_NEXT_REGION): the cheapest spot pool by its
    current price, assuming a one-hour run, ignoring egress inside a cloud; on preemption
    the next cheapest, skipping the preempted region for a while; keep the job where it
    runs. Source: sky/jobs/recovery_strategy.py (StrategyExecutor, EagerFailoverStrategy)
    and SkyNomad's multi_region_rc_cr_threshold_eager_failover."""

    def policy(state: State, pools: Sequence[Pool], job: Job) -> Placement:
        if must_commit(state, pools, job, route):
            return (
                state.placement if state.placement.kind == OD else od_in(pools, state.data_region)
            )
        if state.placement.kind == SPOT:
            return state.placement
        recent = {pools[z].region for t, z in state.preempted_at if state.t - t < cooldown_ticks}
        up = [i for i, p in enumerate(pools) if p.available[state.t]]
        fresh = [i for i in up if pools[i].region not in recent] or up
        if not fresh:
            return IDLE
        return Placement(SPOT, min(fresh, key=lambda i: pools[i].spot_price[state.t]))

    return policy


# -- (c) Uniform Progress --------------------------------------------------------------------


def uniform_progress(home: int, route: Route):  # type: ignore[no-untyped-def]
    """Uniform Progress (Wu et al., "Can't Be Late", NSDI'24), in one pool and its region:
    1. when behind the uniform line (done < elapsed x work/deadline), run on-demand to
       catch up; 2. take spot whenever it is available; 3. once on on-demand, stay until
       2 changeovers ahead of the line; 4. safety net: when the time left no longer covers
       the work left plus 2 changeovers, on-demand to the end. Rules as implemented in
       SkyNomad's sky_spot/strategies/multi_region_rc_cr_threshold.py."""

    def policy(state: State, pools: Sequence[Pool], job: Job) -> Placement:
        t = state.t - job.start_tick
        d = job.changeover_ticks
        c0, r0 = job.work_ticks, job.deadline_ticks
        done = state.progress
        spot_up = pools[home].available[state.t]
        cur = state.placement.kind
        behind = done - t * c0 / r0 < 0
        not_ahead = (t + 2 * d) * c0 / r0 - done >= 0
        want = SPOT if spot_up else NONE
        if behind:
            want = SPOT if spot_up else OD
        if cur == OD and (not spot_up or not_ahead):
            want = OD
        left = r0 - t
        work = c0 - done
        ticks, _ = _start(job, route, state.data_region, pools[home].region)
        move = ticks - d  # copying the data into this pool's region, if it is elsewhere
        if work + 2 * d + move > left and cur in (NONE, OD):
            want = OD
        if work + d + move >= left:
            want = SPOT if (cur == SPOT and state.overhead_left == 0) else OD
        if cur == SPOT and want == SPOT:
            return state.placement
        if want == SPOT:
            return Placement(SPOT, home)
        if want == OD:
            return Placement(OD, home)
        return IDLE

    return policy


# -- (d) ours ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ended:
    """A past attempt as scheduler.migration reads one (the PastAttempt protocol)."""

    state: str
    cloud: str
    region: str
    zone: str
    instance_type: str
    market: str
    ended_at: datetime | None
    placement_json: str


def observed_rate(pool: Pool, t: int, gap_s: float, prior_rate: float, prior_h: float) -> float:
    """Preemptions per hour of availability seen in the trace before ``t``, shrunk toward
    a prior (sched's own record of each pool, as the controller keeps it)."""
    seen = pool.available[:t]
    drops = sum(1 for a, b in itertools.pairwise(seen) if a and not b)
    up_h = sum(seen) * gap_s / 3600
    return (drops + prior_rate * prior_h) / (up_h + prior_h)


def ours(route: Route, cooldown_ticks: int):  # type: ignore[no-untyped-def]
    """sched's own decisions. Where to run: Controller.plan, the method `sched submit`
    places jobs with, given the pools that have capacity now, the job's remaining work,
    its data where it is, spot rates from what each pool's history showed, and its
    preemptions as past attempts (so the pools that preempted it are blocked for the
    cooldown); its cheapest spot placement is the candidate. When: scheduler.
    spot_timing, the expected-cost-optimal rule for that pool's capacity as a Markov chain
    fitted to the same history, decides spot now, on-demand now, or wait. The deadline
    guard stays as a last resort."""
    timings: dict[tuple[int, int], SpotTiming] = {}

    def timing(z: int, pools: Sequence[Pool], job: Job) -> SpotTiming:
        key = (z, job.start_tick)
        if key not in timings:
            pool = pools[z]
            stay_up, come_back = markov_model(pool.available[: job.start_tick])
            model = PoolModel(
                stay_up=stay_up,
                come_back=come_back,
                spot_price=pool.spot_price[job.start_tick] * job.hours_per_tick,
                on_demand_price=pool.on_demand_price * job.hours_per_tick,
            )
            timings[key] = SpotTiming(
                model, job.work_ticks, job.deadline_ticks, job.changeover_ticks
            )
        return timings[key]

    clock = SimClock()
    controllers: dict[tuple[float, int], Controller] = {}

    def controller(job: Job) -> Controller:
        key = (job.gap_s, job.changeover_ticks)
        if key not in controllers:
            home = tempfile.mkdtemp(prefix="sched-sim-")
            atexit.register(shutil.rmtree, home, True)
            settings = load_settings(
                {"SCHED_HOME": home, "SCHED_POOL_COOLDOWN": str(cooldown_ticks * job.gap_s)}
            )
            boot = job.changeover_ticks * job.hours_per_tick
            controllers[key] = Controller(
                Store(settings.db_url),
                {},
                settings,
                clock,
                cost_params=CostParams(boot_hours={"aws": boot, "gcp": boot}),
            )
        return controllers[key]

    def where(state: State, pools: Sequence[Pool], job: Job, up: list[int]) -> int | None:
        offers = [
            _offering(
                pools[i],
                MarketKind.SPOT,
                pools[i].spot_price[state.t],
                observed_rate(pools[i], state.t, job.gap_s, 0.1, 10.0),
            )
            for i in up
        ]
        work_h = (job.work_ticks - state.progress) * job.hours_per_tick
        spec = _spec(job, state, pools, work_h)
        clock.now = EPOCH + timedelta(seconds=state.t * job.gap_s)
        past = [
            Ended(
                "PREEMPTED",
                pools[z].cloud,
                pools[z].region,
                pools[z].name,
                "sim",
                MarketKind.SPOT.value,
                EPOCH + timedelta(seconds=t * job.gap_s),
                "{}",
            )
            for t, z in state.preempted_at
        ]
        # The very method `sched submit` places with (Controller.plan): the same index,
        # network prices, cooldown of preempted pools and cost model.
        result = controller(job).plan(spec, None, cloud=offers, attempts=past)
        if not result.placements:
            return None
        zone = result.placements[0].offering.zone
        return next(i for i in up if pools[i].name == zone)

    def policy(state: State, pools: Sequence[Pool], job: Job) -> Placement:
        guard = must_commit(state, pools, job, route, sticky=False, timed=True)
        if state.placement.kind != SPOT and guard:
            return committed(state, pools)
        t = state.t - job.start_tick
        cur = state.placement
        if cur.kind == SPOT:
            rule = timing(cur.pool, pools, job)
            pick = rule.choice(t, SPOT_MODE, state.overhead_left, state.progress, True)
            return cur if pick == SPOT_MODE else committed(state, pools)
        mode = OD_MODE if cur.kind == OD else WAIT_MODE
        up = [i for i, p in enumerate(pools) if p.available[state.t]]
        home = cur.pool if cur.pool >= 0 else _home(pools, state)
        z = where(state, pools, job, up) if up else None
        if z is not None and pools[z].region != state.data_region and mode == WAIT_MODE:
            # Moving the data is worth it only if starting there beats waiting here.
            move = _value_elsewhere(timing(z, pools, job), state, pools[z], job, route, t)
            stay = timing(home, pools, job).idle_value(t, state.progress, home in up)
            if stay <= move:
                z = home if home in up else None
        if z is None:
            rule = timing(home, pools, job)
            pick = rule.choice(t, mode, state.overhead_left, state.progress, False)
        else:
            rule = timing(z, pools, job)
            pick = rule.choice(t, mode, state.overhead_left, state.progress, True)
        if pick == SPOT_MODE and z is not None:
            return Placement(SPOT, z)
        if pick == OD_MODE:
            return committed(state, pools)
        return IDLE

    return policy


def _value_elsewhere(
    rule: SpotTiming, state: State, pool: Pool, job: Job, route: Route, t: int
) -> float:
    """Starting in another region: the egress, the copy ticks (billed, no progress), then
    that pool's expected cost from there."""
    ticks, usd = _start(job, route, state.data_region, pool.region)
    extra = max(0, ticks - job.changeover_ticks)
    billed = extra * pool.spot_price[state.t] * job.hours_per_tick
    return usd + billed + rule.idle_value(t + extra, state.progress, True)


class SimClock:
    """The controller's clock, set to simulated time before each decision."""

    def __init__(self) -> None:
        self.now = EPOCH

    def __call__(self) -> datetime:
        return self.now


def _home(pools: Sequence[Pool], state: State) -> int:
    """The pool to judge waiting by when none has capacity: the data's region, else the
    cheapest spot."""
    same = [i for i, p in enumerate(pools) if p.region == state.data_region]
    if same:
        return same[0]
    return min(range(len(pools)), key=lambda i: pools[i].spot_price[state.t])


def _offering(pool: Pool, market: MarketKind, price: float, rate: float) -> Offering:
    return Offering(
        cloud=pool.cloud,
        region=pool.region,
        zone=pool.name if market is MarketKind.SPOT else f"{pool.region}-od",
        instance_type="sim",
        vcpus=8,
        memory_gb=64,
        market=market,
        price_per_hour=price,
        interruption_rate=rate,
        interruption_source=InterruptionSource.OBSERVED_HISTORY
        if rate
        else InterruptionSource.NONE,
        as_of=EPOCH,
        price_source=PriceSource.CONFIGURED,
    )


def _spec(job: Job, state: State, pools: Sequence[Pool], work_h: float):  # type: ignore[no-untyped-def]
    data: dict[str, object] = {}
    if state.data_region and job.data_gb > 0:
        cloud = next((p.cloud for p in pools if p.region == state.data_region), pools[0].cloud)
        scheme = "s3" if cloud == "aws" else "gs"
        data = {
            "inputs": [
                {"uri": f"{scheme}://sim/data", "size_gb": job.data_gb, "region": state.data_region}
            ]
        }
    return parse_spec(
        {
            "name": "sim",
            "run": "true",
            "resources": {"cpus": 1},
            "estimated_hours": max(work_h, 1e-3),
            "checkpoint": {"write_seconds": 1, "size_gb": 0},
            "data": data,
        },
        source="sim",
        now=EPOCH,
    )
