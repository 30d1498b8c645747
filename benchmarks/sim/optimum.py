"""The omniscient optimum: the cheapest way to finish by the deadline knowing every pool's
future, by dynamic programming over the same ticks and rules as engine.py.

State at tick t: the placement held (idle with the data in region r, on-demand in region
r, or spot in pool z), the changeover ticks still to pay, and the work done k. Backward
from the deadline, V_t(state) = min over the next placement of this tick's price plus
V_{t+1}. Vectorised over k with numpy; a new start depends on the state it leaves only
through the data's region, so it is computed once per region and tick. This is the
lower bound SkyNomad's artifact computes the same way (multi_region_oracle_dp); with
periodic checkpoints it is still a lower bound (the optimum never needs to lose work).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from benchmarks.sim.engine import Job, Pool, Route, free_routes, start_overhead

INF = float("inf")


def optimum(job: Job, pools: Sequence[Pool], route: Route = free_routes) -> float:
    """Minimum cost to finish ``job``; inf when no schedule meets the deadline."""
    # The data's region is a place to be idle in even when no pool is there.
    extra = {job.data_region} if job.data_region else set()
    regions = sorted({p.region for p in pools} | extra)
    r_index = {r: i for i, r in enumerate(regions)}
    n_r, n_z = len(regions), len(pools)
    od_pool = {r: next((i for i, p in enumerate(pools) if p.region == r), -1) for r in regions}
    # Modes: idle(r) for each region, od(r) for each region, spot(z) for each pool.
    idle = list(range(n_r))
    od = [n_r + i for i in range(n_r)]
    spot = [2 * n_r + z for z in range(n_z)]
    n_modes = 2 * n_r + n_z
    mode_region = [*range(n_r), *range(n_r), *(r_index[p.region] for p in pools)]
    start = job.data_region if job.data_region in r_index else None
    move = np.zeros((n_r, n_r), dtype=int)
    egress = np.zeros((n_r, n_r))
    for a, src in enumerate(regions):
        for b, dst in enumerate(regions):
            ticks, usd = start_overhead(job, route, src, dst)
            move[a, b], egress[a, b] = ticks, usd
    h_max = int(move.max()) + 1
    first = job.start_tick
    horizon = min(first + job.deadline_ticks, min(len(p.available) for p in pools))
    k_max = job.work_ticks
    per_tick = job.hours_per_tick
    # V[mode, h, k] at t+1; k == k_max is done (cost 0 from then on).
    nxt = np.full((n_modes, h_max, k_max + 1), INF)
    nxt[:, :, k_max] = 0.0
    for t in range(horizon - 1, first - 1, -1):
        price = np.zeros(n_modes)
        allowed = np.ones(n_modes, dtype=bool)
        for r, name in enumerate(regions):
            if od_pool[name] < 0:
                allowed[od[r]] = False
            else:
                price[od[r]] = pools[od_pool[name]].on_demand_price * per_tick
        for z, p in enumerate(pools):
            price[spot[z]] = p.spot_price[t] * per_tick
            allowed[spot[z]] = bool(p.available[t])

        def run(mode: int, h: int, price: np.ndarray = price, nxt: np.ndarray = nxt) -> np.ndarray:
            """Cost from holding ``mode`` this tick with ``h`` changeover ticks to pay."""
            if h > 0:
                return price[mode] + nxt[mode, h - 1]
            after = np.empty(k_max + 1)
            after[:-1] = nxt[mode, 0, 1:]
            after[-1] = 0.0
            return price[mode] + after

        # A new start of mode q from data in region a: pays the move, then holds q.
        fresh = np.full((n_r, k_max + 1), INF)
        for a in range(n_r):
            best = nxt[idle[a], 0].copy()  # stay idle, data stays in a
            for q in [*od, *spot]:
                if not allowed[q]:
                    continue
                b = mode_region[q]
                ticks = int(move[a, b])
                cost = egress[a, b] + run(q, ticks)
                np.minimum(best, cost, out=best)
            fresh[a] = best
        cur = np.full_like(nxt, INF)
        for m in range(n_modes):
            a = mode_region[m]
            for h in range(h_max):
                if m in idle:
                    cur[m, h] = fresh[a]  # from idle every placement is a new start
                    continue
                if h > 0 and allowed[m]:
                    cur[m, h] = run(m, h)  # a start under way runs its course
                    continue
                options = fresh[a]
                if allowed[m]:
                    options = np.minimum(options, run(m, h))
                cur[m, h] = options
        cur[:, :, k_max] = 0.0
        nxt = cur
    if start is None:
        # No data anywhere yet: the first start pays no move, from any region.
        return float(min(nxt[idle[a], 0, 0] for a in range(n_r)) if n_r else INF)
    return float(nxt[idle[r_index[start]], 0, 0])
