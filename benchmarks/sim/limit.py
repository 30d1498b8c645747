"""How close can any rule that only knows a pool's statistics get on S1?

S1 (one zone, 48 h of work in 52 h) is where ours sits furthest from the optimum. This
asks whether better estimates would close that gap: it runs the Markov timing rule
(scheduler/spot_timing.py) with the chain fitted two ways,

- history: on the trace before the job starts (what a scheduler can know);
- window: on the job's own window, the future included (statistics no scheduler has),

and compares both with the omniscient optimum. If the window-fitted rule still sits far
above the optimum, the rest of the gap is the value of knowing *when* capacity goes and
comes back, which no estimate of *how often* supplies.
`python -m benchmarks.sim.limit` writes benchmarks/results/sim_limit.json.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence

from benchmarks.sim import run, traces
from benchmarks.sim.engine import IDLE, OD, SPOT, Job, Placement, Policy, Pool, State, simulate
from benchmarks.sim.optimum import optimum
from scheduler.spot_timing import ON_DEMAND, WAIT, PoolModel, SpotTiming, markov_model
from scheduler.spot_timing import SPOT as SPOT_MODE


def fitted_rule(pool: Pool, job: Job, history: Sequence[bool]) -> Policy:
    """The timing rule alone, in the job's one pool, its chain fitted on ``history``."""
    stay_up, come_back = markov_model(list(history))
    model = PoolModel(
        stay_up=stay_up,
        come_back=come_back,
        spot_price=pool.spot_price[job.start_tick] * job.hours_per_tick,
        on_demand_price=pool.on_demand_price * job.hours_per_tick,
    )
    rule = SpotTiming(model, job.work_ticks, job.deadline_ticks, job.changeover_ticks)
    modes = {SPOT: SPOT_MODE, OD: ON_DEMAND}

    def policy(state: State, pools: Sequence[Pool], job: Job) -> Placement:
        mode = modes.get(state.placement.kind, WAIT)
        up = bool(pools[0].available[state.t])
        pick = rule.choice(state.t - job.start_tick, mode, state.overhead_left, state.progress, up)
        if pick == SPOT_MODE:
            return Placement(SPOT, 0)
        return Placement(OD, 0) if pick == ON_DEMAND else IDLE

    return policy


def main() -> int:
    if not traces.available():
        print("skipped: ../shared/data (spot traces) is not present; nothing written")
        return 0
    totals = {"optimum": 0.0, "history": 0.0, "window": 0.0}
    misses = {"history": 0, "window": 0}
    for case in run.s1():
        job, pool = case.job, case.pools[0]
        end = job.start_tick + job.deadline_ticks
        totals["optimum"] += optimum(job, case.pools)
        for fit, seen in (
            ("history", pool.available[: job.start_tick]),
            ("window", pool.available[job.start_tick : end]),
        ):
            out = simulate(job, case.pools, fitted_rule(pool, job, seen))
            totals[fit] += out.cost
            misses[fit] += int(out.missed)
    opt = totals["optimum"]
    gaps = {fit: totals[fit] / opt - 1 for fit in ("history", "window")}
    print("S1, the Markov timing rule alone, total cost relative to the optimum:")
    print(f"  fitted on the history before each job: {gaps['history']:+.1%}")
    print(f"  fitted on each job's own window:      {gaps['window']:+.1%}")
    print(f"  deadline misses: {misses}")
    run.RESULTS.mkdir(exist_ok=True)
    path = run.RESULTS / "sim_limit.json"
    path.write_text(json.dumps({"total_cost": totals, "gap": gaps, "misses": misses}, indent=2))
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
