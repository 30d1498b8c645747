"""When to run a deadline job on spot, on on-demand, or wait: the expected-cost-optimal
rule for a pool whose capacity comes and goes like a two-state Markov chain.

A pool's history gives two numbers: how likely capacity that is there now is still there
next tick (``stay_up``), and how likely capacity that is gone comes back (``come_back``).
With them, backward induction over (ticks left, work left, what runs, changeover left,
capacity now) gives, for every situation, the choice with the least expected cost that
still finishes by the deadline whatever happens (on-demand is always there). Uniform
Progress (Can't Be Late, NSDI'24) follows a fixed line; this follows the pool: where
outages are short it waits them out, where they are long it buys on-demand early, and it
goes back to spot when the slack allows another changeover.

Pure numpy, no I/O; solved once per job and pool, looked up per tick.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

WAIT, SPOT, ON_DEMAND = 0, 1, 2


@dataclass(frozen=True)
class PoolModel:
    stay_up: float  # P(capacity next tick | capacity now)
    come_back: float  # P(capacity next tick | none now)
    spot_price: float  # $ per tick
    on_demand_price: float  # $ per tick


def markov_model(
    history: list[bool] | tuple[bool, ...], prior_up: float = 0.95, prior_back: float = 0.2
) -> tuple[float, float]:
    """(stay_up, come_back) counted from a pool's history, with one prior observation."""
    up_up = up = back = down = 0
    for a, b in itertools.pairwise(history):
        if a:
            up += 1
            up_up += b
        else:
            down += 1
            back += b
    return (up_up + prior_up) / (up + 1), (back + prior_back) / (down + 1)


class SpotTiming:
    """The solved rule for one job on one pool: ``choice(ticks_done, kind, overhead_left,
    progress, up)``. Starting or switching costs ``changeover`` ticks without progress."""

    def __init__(self, model: PoolModel, work: int, deadline: int, changeover: int) -> None:
        self.work, self.deadline, self.changeover = work, deadline, changeover
        h_n = changeover + 1
        inf = np.inf
        # value[a, mode, h, k] for the next tick; k == work is done.
        nxt = np.full((2, 3, h_n, work + 1), inf)
        nxt[:, :, :, work] = 0.0
        self._choices = np.zeros((deadline, 2, 3, h_n, work + 1), dtype=np.int8)
        # Expected cost from idle (nothing running, no changeover paid), per tick, capacity
        # and work done: what starting here now, or waiting here, is worth.
        self._idle = np.zeros((deadline, 2, work + 1), dtype=np.float32)
        price = np.array([0.0, model.spot_price, model.on_demand_price])
        p_next = np.array(
            [[1 - model.come_back, model.come_back], [1 - model.stay_up, model.stay_up]]
        )
        for t in range(deadline - 1, -1, -1):
            # expected[a, mode, h, k]: value of holding ``mode`` into next tick from a now.
            expected = np.empty_like(nxt)
            for a in (0, 1):
                down, up = p_next[a]
                for m in (WAIT, SPOT, ON_DEMAND):
                    if m == SPOT:
                        # Capacity gone next tick: preempted, idle, nothing to pay yet.
                        expected[a, m] = _mix(down, nxt[0, WAIT, 0], up, nxt[1, SPOT])
                    else:
                        expected[a, m] = _mix(down, nxt[0, m], up, nxt[1, m])
            cur = np.full_like(nxt, inf)
            choice = np.zeros(nxt.shape, dtype=np.int8)
            for a in (0, 1):
                for m in (WAIT, SPOT, ON_DEMAND):
                    for h in range(h_n):
                        best = np.full(work + 1, inf)
                        pick = np.zeros(work + 1, dtype=np.int8)
                        for q in (WAIT, SPOT, ON_DEMAND):
                            if q == SPOT and not a:
                                continue
                            if q == WAIT:
                                cost = expected[a, WAIT, 0].copy()
                            else:
                                left = h if q == m else changeover
                                cost = price[q] + self._advance(expected[a, q], left, work)
                            better = cost < best - 1e-12
                            best = np.where(better, cost, best)
                            pick = np.where(better, q, pick)
                        cur[a, m, h] = best
                        choice[a, m, h] = pick
            cur[:, :, :, work] = 0.0
            self._choices[t] = choice
            self._idle[t] = cur[:, WAIT, 0]
            nxt = cur
        self.expected_cost = float(min(nxt[0, WAIT, 0, 0], nxt[1, WAIT, 0, 0]))

    @staticmethod
    def _advance(value: np.ndarray, overhead: int, work: int) -> np.ndarray:
        """value[h', k'] after one tick held with ``overhead`` changeover ticks to pay."""
        if overhead > 0:
            return value[overhead - 1]
        shifted = np.empty(work + 1)
        shifted[:-1] = value[0, 1:]
        shifted[-1] = 0.0
        return shifted

    def idle_value(self, t: int, progress: int, up: bool) -> float:
        """Expected cost to finish from idle at tick ``t`` (inf: no longer possible)."""
        if progress >= self.work:
            return 0.0
        if t >= self.deadline:
            return float("inf")
        return float(self._idle[t, int(up), progress])

    def choice(self, t: int, mode: int, overhead_left: int, progress: int, up: bool) -> int:
        if t >= self.deadline or progress >= self.work:
            return ON_DEMAND
        h = min(overhead_left, self.changeover)
        return int(self._choices[t, int(up), mode, h, progress])


def _mix(p_down: float, if_down: np.ndarray, p_up: float, if_up: np.ndarray) -> np.ndarray:
    """The expectation over next tick's capacity; an impossible branch adds nothing (not
    0 x inf = nan)."""
    down = np.zeros_like(if_up) if p_down == 0 else p_down * if_down
    up = np.zeros_like(if_down) if p_up == 0 else p_up * if_up
    return down + up
