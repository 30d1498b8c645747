"""The trace-driven simulator (benchmarks/sim): its accounting on traces small enough to
price by hand, the omniscient optimum against a brute force over every placement sequence,
the deadline guard of the policies, the spot-timing rule on models with obvious answers,
and one run on the real traces when they are present.

Every hand-made job uses ``gap_s=3600`` so that a $/h price is the dollars of one tick.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

import numpy as np
import pytest

from benchmarks.sim import limit, run, traces
from benchmarks.sim import policies as P
from benchmarks.sim.engine import (
    IDLE,
    OD,
    SPOT,
    Job,
    Outcome,
    Placement,
    Policy,
    Pool,
    Route,
    State,
    free_routes,
    simulate,
)
from benchmarks.sim.optimum import optimum
from benchmarks.sim.run import best_history_pool
from scheduler.spot_timing import ON_DEMAND, WAIT, PoolModel, SpotTiming, markov_model
from scheduler.spot_timing import SPOT as SPOT_MODE

HOUR = 3600.0
EAST, WEST = "us-east-1", "us-west-2"
EPS = 1e-9


def pool(
    available: Sequence[bool | int],
    spot: float | Sequence[float] = 1.0,
    od: float = 3.0,
    region: str = EAST,
    name: str | None = None,
) -> Pool:
    """A pool from a 0/1 availability list; a scalar spot price holds for every tick."""
    n = len(available)
    prices = tuple(float(spot) for _ in range(n)) if isinstance(spot, int | float) else spot
    return Pool(name or f"{region}a", region, "aws", tuple(bool(a) for a in available), prices, od)


def always(placement: Placement) -> Policy:
    """The same placement every tick (a dead pool's launch fails and leaves the job idle)."""

    def policy(state: State, pools: Sequence[Pool], job: Job) -> Placement:
        return placement

    return policy


def replay(seq: Sequence[Placement]) -> Policy:
    """The placements of ``seq`` in order, one per tick from the job's start."""

    def policy(state: State, pools: Sequence[Pool], job: Job) -> Placement:
        return seq[state.t - job.start_tick]

    return policy


def hop(rate: float, ticks: int) -> Route:
    """A route charging ``rate`` $/GB and ``ticks`` copy ticks between any two regions."""

    def route(src: str | None, dst: str | None) -> tuple[float, int]:
        return (rate, ticks) if src != dst else (0.0, 0)

    return route


# -- 1. accounting on hand-made traces ------------------------------------------------------


def test_spot_always_up_pays_changeover_then_work() -> None:
    job = Job(work_ticks=3, deadline_ticks=10, changeover_ticks=1, gap_s=HOUR)
    out = simulate(job, (pool([1] * 10, spot=1.0),), always(Placement(SPOT, 0)))
    # t0 changeover, t1..t3 one tick of work each: 4 ticks x $1 = $4, done at the end of t3.
    assert out.cost == pytest.approx(4.0)
    assert out.finished_tick == 4
    assert not out.missed
    assert (out.spot_ticks, out.od_ticks, out.preemptions, out.egress) == (4, 0, 0, 0.0)


def test_preemption_costs_a_second_changeover() -> None:
    job = Job(work_ticks=2, deadline_ticks=6, changeover_ticks=1, gap_s=HOUR)
    out = simulate(job, (pool([1, 1, 0, 1, 1, 1], spot=1.5),), always(Placement(SPOT, 0)))
    # t0 changeover, t1 work (1), t2 pool gone: preempted, relaunch fails (idle, free),
    # t3 changeover again, t4 work (2). Held t0, t1, t3, t4: 4 x $1.5 = $6, done at 5.
    assert out.cost == pytest.approx(4 * 1.5)
    assert out.finished_tick == 5
    assert out.preemptions == 1
    assert out.spot_ticks == 4


def test_on_demand_only_pays_work_plus_changeover_at_the_od_price() -> None:
    job = Job(work_ticks=3, deadline_ticks=10, changeover_ticks=1, gap_s=HOUR)
    out = simulate(job, (pool([0] * 10, od=2.5),), always(Placement(OD, 0)))
    # (3 work + 1 changeover) x $2.5 = $10; the dead spot pool does not matter to on-demand.
    assert out.cost == pytest.approx((3 + 1) * 2.5)
    assert out.finished_tick == 4
    assert (out.spot_ticks, out.od_ticks) == (0, 4)


def test_a_tick_is_billed_by_its_length_in_hours() -> None:
    job = Job(work_ticks=3, deadline_ticks=10, changeover_ticks=1, gap_s=1800)
    out = simulate(job, (pool([1] * 10, od=2.5),), always(Placement(OD, 0)))
    # Half-hour ticks: 4 ticks x $2.5/h x 0.5 h = $5.
    assert out.cost == pytest.approx(4 * 2.5 * 0.5)


def test_deadline_miss_bills_what_ran_and_finishes_nothing() -> None:
    job = Job(work_ticks=5, deadline_ticks=4, changeover_ticks=1, gap_s=HOUR)
    pools = (pool([1] * 10, spot=1.0),)
    out = simulate(job, pools, always(Placement(SPOT, 0)))
    # 4 ticks held (1 changeover + 3 work < 5): $4 spent, no finish.
    assert out.missed
    assert out.finished_tick is None
    assert out.cost == pytest.approx(4.0)
    assert out.decisions == 4
    assert optimum(job, pools) == math.inf


def test_region_move_charges_egress_once_and_copy_ticks_without_progress() -> None:
    calls: list[tuple[str | None, str | None]] = []

    def route(src: str | None, dst: str | None) -> tuple[float, int]:
        calls.append((src, dst))
        return 0.02, 2

    pools = (pool([1] * 10, spot=1.0, region=EAST), pool([1] * 10, spot=2.0, region=WEST))
    job = Job(2, 10, 1, HOUR, data_region=EAST, data_gb=50.0)
    out = simulate(job, pools, always(Placement(SPOT, 1)), route)
    # Start in us-west-2 with the data in us-east-1: 1 changeover + 2 copy ticks, then 2 of
    # work: 5 ticks x $2 = $10, plus egress 0.02 $/GB x 50 GB = $1, once. Done at 5.
    assert out.egress == pytest.approx(0.02 * 50)
    assert out.cost == pytest.approx(5 * 2.0 + 0.02 * 50)
    assert out.finished_tick == 5
    assert calls == [(EAST, WEST)]
    # The same job run where its data is: no route, no egress, 3 ticks x $1.
    home = simulate(job, pools, always(Placement(SPOT, 0)), route)
    assert (home.egress, home.cost, home.finished_tick) == (0.0, pytest.approx(3.0), 3)
    assert calls == [(EAST, WEST)]


def test_periodic_checkpoint_rolls_a_preemption_back() -> None:
    avail = [1, 1, 1, 1, 0, 1, 1, 1, 1, 1]
    pools = (pool(avail, spot=1.0),)
    job = Job(4, 10, 1, HOUR, checkpoint_ticks=2)
    out = simulate(job, pools, always(Placement(SPOT, 0)))
    # t0 changeover, t1 k=1, t2 k=2 (checkpoint), t3 k=3, t4 preempted: back to k=2, idle;
    # t5 changeover, t6 k=3, t7 k=4. Held 0-3 and 5-7: 7 ticks x $1, done at 8.
    assert out.finished_tick == 8
    assert out.cost == pytest.approx(7.0)
    assert out.preemptions == 1
    # Continuous checkpoints keep k=3: t5 changeover, t6 k=4; 6 ticks, done at 7.
    cont = simulate(Job(4, 10, 1, HOUR), pools, always(Placement(SPOT, 0)))
    assert (cont.finished_tick, cont.cost) == (7, pytest.approx(6.0))


def test_start_tick_runs_from_it_and_counts_the_deadline_from_it() -> None:
    prices = (9.0, 9.0, 9.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0)
    pools = (pool([1] * 10, spot=prices),)
    seen: list[int] = []

    def policy(state: State, pools: Sequence[Pool], job: Job) -> Placement:
        seen.append(state.t)
        return Placement(SPOT, 0)

    out = simulate(Job(2, 4, 1, HOUR, start_tick=3), pools, policy)
    # t3 changeover $1, t4 work $2, t5 work $3: $6, done at 6; ticks 0-2 are history only.
    assert seen == [3, 4, 5]
    assert out.cost == pytest.approx(1.0 + 2.0 + 3.0)
    assert out.finished_tick == 6
    # A deadline of 2 ticks from tick 3 ends after t4, though the trace goes on.
    short = simulate(Job(2, 2, 1, HOUR, start_tick=3), pools, always(Placement(SPOT, 0)))
    assert short.missed
    assert short.decisions == 2
    assert short.cost == pytest.approx(1.0 + 2.0)


def test_spot_launch_without_capacity_is_idle() -> None:
    pools = (pool([0, 0, 1, 1, 1], spot=[5.0, 5.0, 1.0, 1.0, 1.0]),)
    out = simulate(Job(1, 5, 1, HOUR), pools, always(Placement(SPOT, 0)))
    # t0, t1 launches fail: no cost, no progress, no preemption. t2 changeover, t3 work: $2.
    assert out.cost == pytest.approx(2.0)
    assert out.finished_tick == 4
    assert (out.spot_ticks, out.preemptions) == (2, 0)


def test_switching_during_a_copy_does_not_skip_the_copy() -> None:
    """BUG (engine.py:145): ``state.data_region = dst`` is set when a move starts, so a
    switch in the destination region while the copy is still running pays only the
    changeover: the job makes progress before its data has arrived."""
    pools = (pool([1] * 6, spot=1.0, od=3.0, region=WEST),)
    job = Job(1, 6, 1, HOUR, data_region=EAST, data_gb=10.0)
    seq = [Placement(OD, 0)] + [Placement(SPOT, 0)] * 5
    out = simulate(job, pools, replay(seq), hop(0.02, 2))
    # t0 starts on-demand in us-west-2: 1 changeover + 2 copy ticks (t0..t2). Whatever runs
    # at t1, the copy cannot be over before the end of t2: the earliest finish is 4.
    # Actual: t1 switches to spot (1 changeover, data already "there"), t2 works: done at 3.
    assert out.finished_tick is None or out.finished_tick >= 4


# -- 2. the optimum against a brute force ---------------------------------------------------


def brute_force(job: Job, pools: Sequence[Pool], route: Route) -> float:
    """The cheapest finished outcome of ``simulate`` over every placement sequence (idle,
    spot in a pool with capacity that tick, on-demand at any pool). An odometer over the
    sequences: once a sequence finishes at tick f, the ticks after f cannot matter, so
    the odometer skips to the next prefix of length f."""
    n = job.deadline_ticks
    options = [
        [IDLE]
        + [Placement(SPOT, z) for z, p in enumerate(pools) if p.available[job.start_tick + i]]
        + [Placement(OD, z) for z in range(len(pools))]
        for i in range(n)
    ]
    digits = [0] * n
    best = math.inf
    while True:
        seq = [options[i][d] for i, d in enumerate(digits)]
        out = simulate(job, pools, replay(seq), route)
        pos = n - 1
        if out.finished_tick is not None:
            best = min(best, out.cost)
            pos = out.finished_tick - job.start_tick - 1
            digits[pos + 1 :] = [0] * (n - pos - 1)
        while pos >= 0:
            digits[pos] += 1
            if digits[pos] < len(options[pos]):
                break
            digits[pos] = 0
            pos -= 1
        if pos < 0:
            return best


def tiny_case(seed: int) -> tuple[Job, tuple[Pool, ...], Route]:
    """T <= 6 ticks, 1-3 pools in 1-2 regions (one on-demand price per region), random
    spot prices and capacity, changeover 0/1, data 0 or 10 GB in a pool's region."""
    rng = random.Random(seed)
    regions = (EAST, WEST)[: rng.randint(1, 2)]
    od = {r: rng.choice([2.0, 3.0, 4.0]) for r in regions}
    start = rng.choice([0, 0, 1])
    span = rng.randint(2, 6)
    pools = []
    for i in range(rng.randint(1, 3)):
        region = regions[i] if i < len(regions) else rng.choice(regions)
        pools.append(
            Pool(
                f"{region}{'abc'[i]}",
                region,
                "aws",
                tuple(rng.random() < 0.7 for _ in range(start + span)),
                tuple(round(rng.uniform(0.5, 3.5), 2) for _ in range(start + span)),
                od[region],
            )
        )
    data_gb = rng.choice([0.0, 10.0])
    data_region = rng.choice(sorted({p.region for p in pools})) if data_gb else None
    route = hop(0.02, rng.choice([1, 2]))
    job = Job(
        rng.randint(1, span),
        span,
        rng.choice([0, 1]),
        HOUR,
        data_region=data_region,
        data_gb=data_gb,
        start_tick=start,
    )
    return job, tuple(pools), route


def all_policies(job: Job, pools: Sequence[Pool], route: Route) -> dict[str, Outcome]:
    home = best_history_pool(pools, job.start_tick)
    return {
        "on-demand": simulate(job, pools, P.on_demand(route), route),
        "skypilot": simulate(job, pools, P.skypilot(route, 1), route),
        "uniform-progress": simulate(job, pools, P.uniform_progress(home, route), route),
        "ours": simulate(job, pools, P.ours(route, 1), route),
    }


@pytest.mark.parametrize("seed", range(40))
def test_optimum_equals_brute_force_and_bounds_every_policy(seed: int) -> None:
    job, pools, route = tiny_case(seed)
    best = optimum(job, pools, route)
    assert best == pytest.approx(brute_force(job, pools, route))
    for name, out in all_policies(job, pools, route).items():
        if out.finished_tick is not None:  # a finished policy is a schedule: never cheaper
            assert best <= out.cost + EPS, name


def test_optimum_waits_in_the_data_region_without_pools() -> None:
    pools = (pool([1] * 5, spot=[3.0, 3.0, 1.0, 1.0, 1.0], od=4.0, region=EAST),)
    job = Job(2, 5, 1, HOUR, data_region=WEST, data_gb=10.0)
    route = hop(0.02, 1)
    # A start in us-east-1 takes 1 changeover + 1 copy tick, then 2 of work: 4 of 5 ticks.
    # From t0: $3 + $3 + $1 + $1 = $8; from t1: $3 + $1 + $1 + $1 = $6; from t2 it misses.
    # Best: idle at t0 with the data in us-west-2, then move: $6 + 0.02 x 10 GB = $6.20.
    assert optimum(job, pools, route) == pytest.approx(6.0 + 0.2)
    assert brute_force(job, pools, route) == pytest.approx(6.0 + 0.2)


@pytest.mark.parametrize(("work", "deadline"), [(3, 2), (5, 4), (2, 1)])
def test_optimum_is_inf_when_the_work_exceeds_the_deadline(work: int, deadline: int) -> None:
    pools = (pool([1] * 6, spot=1.0), pool([1] * 6, spot=1.0, region=WEST))
    assert optimum(Job(work, deadline, 0, HOUR), pools) == math.inf


def test_optimum_is_inf_when_the_copy_makes_the_deadline_impossible() -> None:
    """BUG (optimum.py:93 with 78-85): a placement's state (m, h) can "restart" m itself
    through ``fresh[a]`` with ``a`` its own region, paying only the changeover, so the copy
    ticks still to pay are dropped. The engine cannot restart a placement it holds."""
    pools = (pool([0, 0, 0], od=1.0, region=WEST),)  # on-demand only, in us-west-2
    job = Job(1, 3, 1, HOUR, data_region=EAST, data_gb=10.0)
    route = hop(0.02, 2)
    # Any schedule: 1 changeover + 2 copy ticks + 1 tick of work = 4 > 3 ticks. The brute
    # force over the engine agrees (inf); the DP prices t0 start, t1 "restart", t2 work.
    assert brute_force(job, pools, route) == math.inf
    assert optimum(job, pools, route) == math.inf


# -- 3. the deadline guard --------------------------------------------------------------------


def markov_trace(rng: random.Random, n: int) -> tuple[bool, ...]:
    stay, back = rng.uniform(0.6, 0.95), rng.uniform(0.1, 0.6)
    up = rng.random() < 0.5
    out = []
    for _ in range(n):
        out.append(up)
        up = rng.random() < (stay if up else back)
    return tuple(out)


def guard_case(seed: int, moves: bool) -> tuple[Job, tuple[Pool, ...], Route]:
    """30-60 ticks, 1-3 pools with Markov capacity, changeover 1-2, work 70-90% of the
    deadline, 0-20 ticks of history; with ``moves`` the data sits in one of two regions and
    moving it costs $0.02/GB and one tick."""
    rng = random.Random(seed)
    regions = (EAST, WEST)[: 2 if moves else rng.randint(1, 2)]
    od = {r: rng.choice([2.0, 3.0, 4.0]) for r in regions}
    history = rng.choice([0, 10, 20])
    span = rng.randint(30, 60)
    pools = []
    for i in range(rng.randint(2, 3) if moves else rng.randint(1, 3)):
        region = regions[i] if i < len(regions) else rng.choice(regions)
        n = history + span
        prices = tuple(round(rng.uniform(0.5, 1.5), 2) for _ in range(n))
        pools.append(
            Pool(f"{region}{'abc'[i]}", region, "aws", markov_trace(rng, n), prices, od[region])
        )
    work = round(span * rng.uniform(0.7, 0.9))
    changeover = rng.randint(1, 2)
    if not moves:
        return Job(work, span, changeover, HOUR, start_tick=history), tuple(pools), free_routes
    data_region = rng.choice(regions)
    job = Job(work, span, changeover, HOUR, data_region, 10.0, start_tick=history)
    return job, tuple(pools), hop(0.02, 1)


@pytest.mark.parametrize("moves", [False, True], ids=["free", "route"])
@pytest.mark.parametrize("seed", range(15))
def test_guarded_policies_meet_every_deadline(seed: int, moves: bool) -> None:
    job, pools, route = guard_case(seed, moves)
    best = optimum(job, pools, route)
    assert best < math.inf
    home = best_history_pool(pools, job.start_tick)
    outcomes = {
        "skypilot": simulate(job, pools, P.skypilot(route, 1), route),
        # As run.run_case runs it: alone in its pool.
        "uniform-progress": simulate(job, (pools[home],), P.uniform_progress(0, route), route),
        "ours": simulate(job, pools, P.ours(route, 1), route),
    }
    for name, out in outcomes.items():
        assert not out.missed, name
        assert best <= out.cost + EPS, name


def test_uniform_progress_safety_net_counts_the_copy() -> None:
    """BUG (policies.py:134-136): Uniform Progress's safety net reserves 2 changeovers but
    not the copy ticks of moving the data into its pool's region, so it starts too late."""
    work, deadline = 24, 30
    pools = (pool([0] * deadline, od=3.0, region=EAST),)  # spot never has capacity
    job = Job(work, deadline, 2, HOUR, data_region=WEST, data_gb=10.0)
    route = hop(0.02, 4)
    # On-demand from t0: 2 changeover + 4 copy + 24 work = 30 ticks: just in time.
    witness = simulate(job, pools, P.on_demand(route), route)
    assert witness.finished_tick == deadline
    # Uniform Progress idles at t0 (not behind yet), starts at t1 and would end at 31.
    out = simulate(job, pools, P.uniform_progress(0, route), route)
    assert not out.missed


def test_ours_runs_with_data_in_a_region_without_pools() -> None:
    """BUG (policies.py:317): ``_spec`` looks the data region's cloud up among the pools
    (``next(...)``) and raises StopIteration when no pool is in that region."""
    pools = (pool([1] * 12, spot=1.0, od=3.0, region=EAST),)
    job = Job(2, 12, 1, HOUR, data_region=WEST, data_gb=10.0)
    route = hop(0.02, 2)
    assert optimum(job, pools, route) < math.inf
    out = simulate(job, pools, P.ours(route, 1), route)
    assert not out.missed


# -- 4. the spot-timing rule --------------------------------------------------------------------


def test_spot_when_capacity_is_near_certain_and_spot_is_cheaper() -> None:
    rule = SpotTiming(PoolModel(0.99, 0.5, spot_price=1.0, on_demand_price=3.0), 3, 10, 1)
    assert rule.choice(0, WAIT, 0, 0, True) == SPOT_MODE
    # Running on spot with capacity, it keeps running.
    assert rule.choice(1, SPOT_MODE, 0, 0, True) == SPOT_MODE
    # Close to the 4 spot ticks it costs if never preempted, far below 4 on-demand ticks.
    assert 4.0 <= rule.idle_value(0, 0, True) < 4.2


def test_spot_when_capacity_is_certain_and_spot_is_cheaper() -> None:
    """BUG (spot_timing.py:76 and :78): with stay_up=1 (or come_back=0) a zero probability
    times an infinite value is nan, and ``cost < best`` is False for nan, so spot (or
    waiting) is dropped as if impossible when the other branch is infeasible."""
    model = PoolModel(stay_up=1.0, come_back=1.0, spot_price=1.0, on_demand_price=3.0)
    with np.errstate(invalid="ignore"):
        rule = SpotTiming(model, work=3, deadline=10, changeover=1)
    # Spot never goes away: 1 changeover + 3 work on spot is $4 from any tick up to t=6
    # (ticks 6..9). Waiting is free too, so the rule may wait, but never buy on-demand.
    for t in range(7):
        assert rule.idle_value(t, 0, True) == pytest.approx(4.0), t
        assert rule.choice(t, WAIT, 0, 0, True) != ON_DEMAND, t
    # t=6 is the last moment: it must start spot then (actual: on-demand, $12).
    assert rule.choice(6, WAIT, 0, 0, True) == SPOT_MODE


def test_on_demand_when_spot_is_dearer() -> None:
    rule = SpotTiming(PoolModel(0.99, 0.5, spot_price=5.0, on_demand_price=3.0), 3, 10, 1)
    choices = [rule.choice(t, WAIT, 0, 0, True) for t in range(10)]
    assert SPOT_MODE not in choices
    # It may wait while waiting is free, but what it starts is on-demand: (3 + 1) x $3.
    assert ON_DEMAND in choices
    assert rule.idle_value(0, 0, True) == pytest.approx(12.0)
    assert rule.choice(2, ON_DEMAND, 0, 1, True) == ON_DEMAND  # once there, it stays


def test_on_demand_when_there_is_no_slack_and_no_capacity() -> None:
    rule = SpotTiming(PoolModel(0.9, 0.5, spot_price=1.0, on_demand_price=3.0), 4, 5, 1)
    # work 4 == deadline 5 - changeover 1: waiting one tick misses.
    assert rule.choice(0, WAIT, 0, 0, False) == ON_DEMAND
    assert rule.idle_value(0, 0, False) == pytest.approx((4 + 1) * 3.0)


def test_waits_out_short_outages_when_slack_is_ample() -> None:
    rule = SpotTiming(PoolModel(0.99, 0.9, spot_price=1.0, on_demand_price=3.0), 3, 20, 1)
    assert rule.choice(0, WAIT, 0, 0, False) == WAIT
    # Waiting keeps the expected cost near the 4 spot ticks, far from on-demand's $12.
    assert rule.idle_value(0, 0, False) < 4.1


def test_markov_model_counts_transitions_with_its_priors() -> None:
    history = [True, True, False, True, True, True, False, False]
    # Pairs: TT TF FT TT TT TF FF. From up: 5, staying up 3 -> (3 + 0.95) / (5 + 1).
    # From down: 2, coming back 1 -> (1 + 0.2) / (2 + 1).
    stay_up, come_back = markov_model(history)
    assert stay_up == pytest.approx((3 + 0.95) / 6)
    assert come_back == pytest.approx((1 + 0.2) / 3)
    assert markov_model([]) == (0.95, 0.2)
    assert markov_model([True, True], prior_up=0.5, prior_back=0.5) == (0.75, 0.5)


def test_idle_value_is_inf_past_the_deadline_and_zero_when_done() -> None:
    rule = SpotTiming(PoolModel(0.9, 0.5, spot_price=1.0, on_demand_price=3.0), 3, 8, 1)
    assert rule.idle_value(8, 0, True) == math.inf
    assert rule.idle_value(12, 2, False) == math.inf
    assert rule.idle_value(7, 0, True) == math.inf  # 1 tick left for 1 + 3: impossible
    assert rule.idle_value(3, 3, False) == 0.0
    assert rule.idle_value(9, 3, True) == 0.0


# -- 5. the real traces ---------------------------------------------------------------------------


@pytest.mark.skipif(not traces.available(), reason="../shared/data (spot traces) is absent")
def test_real_s1_case_meets_its_deadline_above_the_optimum() -> None:
    case = run.s1()[0]
    result = run.run_case(case)
    assert not any(missed for _, missed in result.values())
    best = result["optimum"][0]
    assert 0 < best <= result["on-demand"][0] + EPS
    for name, (cost, _) in result.items():
        assert best <= cost + EPS, name
    # In this window spot comes in bursts shorter than a changeover is worth: the optimum
    # is all on-demand, and ours, which cannot know that, pays a few spot gambles (+2.3%).
    assert result["ours"][0] <= 1.05 * result["on-demand"][0]


# -- 5. the limit study (benchmarks/sim/limit.py) ----------------------------------------------


def test_fitted_rule_rides_spot_in_a_pool_that_never_fails() -> None:
    job = Job(work_ticks=4, deadline_ticks=8, changeover_ticks=1, gap_s=HOUR)
    p = pool([1] * 8, spot=1.0, od=3.0)
    out = simulate(job, (p,), limit.fitted_rule(p, job, [True] * 50))
    # One changeover then four ticks of work, all on spot at $1.
    assert (out.cost, out.spot_ticks, out.od_ticks, out.missed) == (5.0, 5, 0, False)


def test_fitted_rule_buys_on_demand_when_the_pool_never_comes_back() -> None:
    job = Job(work_ticks=4, deadline_ticks=6, changeover_ticks=1, gap_s=HOUR)
    p = pool([0] * 6, spot=1.0, od=3.0)
    # A history of long outages: waiting cannot pay, so it starts on-demand in time.
    out = simulate(job, (p,), limit.fitted_rule(p, job, [False] * 200 + [True] * 3))
    assert not out.missed
    assert out.od_ticks == 5 and out.cost == pytest.approx(15.0)
