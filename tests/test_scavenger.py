"""Scavenger backfill over a simulated month, with an injected clock, and its rules as
properties: admitted scavengers are always inside the commitments, and yielding gives
production the same coverage it would have had with no scavenger at all.

The simulation steps hourly ticks through scheduler/scavenger.py's admit / make_room /
overflow, the functions the controller calls, and measures utilization with
scheduler/commitments.py's allocation (the one `sched commitments` reports).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from jobs.spec import Priority
from providers.commitment import Commitment, CommitmentKind
from providers.offering import MarketKind
from scheduler.commitments import Usage, allocate
from scheduler.scavenger import Running, admit, fully_covered, make_room, overflow

T0 = datetime(2026, 11, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
PLAN = Commitment(
    id="sp-1",
    kind=CommitmentKind.AWS_COMPUTE_SP,
    hourly_commitment=60.0,  # at 40% off: covers $100/h of on-demand usage
    discount=0.4,
    start=T0 - timedelta(days=30),
    end=T0 + timedelta(days=365),
)


def usage(value: float, region: str = "us-east-1") -> Usage:
    return Usage(
        cloud="aws",
        region=region,
        instance_type="g5.12xlarge",
        market=MarketKind.ON_DEMAND,
        on_demand_per_hour=value,
    )


@dataclass
class Job:
    job_id: int
    priority: Priority
    value: float
    hours_left: int
    arrives: int = 0
    started: int | None = None


def production_trace(seed: int, hours: int) -> list[Job]:
    """Production jobs of $10/h, 3 to 12 hours long, arriving so that about 6 run at a
    time: the $100/h plan is about 40% idle without scavengers."""
    rng = random.Random(seed)
    jobs = []
    for hour in range(hours):
        for _ in range(rng.choice([0, 0, 1, 1, 1, 2])):
            jobs.append(Job(len(jobs) + 1, Priority.PRODUCTION, 10.0, rng.randint(3, 12), hour))
    return jobs


def simulate(hours: int, with_scavengers: bool, seed: int = 7) -> dict[str, float]:
    production = production_trace(seed, hours)
    scavengers = [
        Job(10_000 + i, Priority.SCAVENGER, 5.0, 6) for i in range(5_000 if with_scavengers else 0)
    ]
    queue = list(scavengers)
    running: list[Job] = []
    utilization: list[float] = []
    delays: list[int] = []
    yields = 0
    production_uncovered = 0.0
    for tick in range(hours):
        now = T0 + tick * HOUR
        for job in running:
            job.hours_left -= 1
        running = [j for j in running if j.hours_left > 0]

        def as_running(jobs: list[Job]) -> list[Running]:
            return [
                Running(j.job_id, j.priority, usage(j.value), T0 + (j.started or 0) * HOUR)
                for j in jobs
            ]

        for job in (j for j in production if j.arrives == tick):
            stop = make_room([PLAN], as_running(running), usage(job.value), now)
            for job_id in stop:  # SIGTERM, checkpoint, back to the queue
                yielded = next(j for j in running if j.job_id == job_id)
                running.remove(yielded)
                queue.insert(0, yielded)
                yields += 1
            job.started = tick
            delays.append(job.started - job.arrives)
            running.append(job)
        for job_id in overflow([PLAN], as_running(running), now):
            gone = next(j for j in running if j.job_id == job_id)
            running.remove(gone)
            queue.insert(0, gone)
        candidates = [(j.job_id, usage(j.value)) for j in queue[:200]]
        for job_id in admit([PLAN], as_running(running), candidates, now):
            job = next(j for j in queue if j.job_id == job_id)
            queue.remove(job)
            job.started = tick
            running.append(job)
        everything = allocate([PLAN], [usage(j.value) for j in running], now)
        utilization.append(everything.hours[0].utilization)
        prod_only = [usage(j.value) for j in running if j.priority is Priority.PRODUCTION]
        # Production's own on-demand spend: what no commitment covers, scavengers or not.
        production_uncovered += allocate([PLAN], prod_only, now).uncovered
        scav = [usage(j.value) for j in running if j.priority is Priority.SCAVENGER]
        assert fully_covered([PLAN], [*prod_only, *scav], now) or not scav
    return {
        "utilization": sum(utilization) / len(utilization),
        "max_delay": max(delays),
        "production_jobs": len(delays),
        "production_uncovered": production_uncovered,
        "yields": yields,
    }


def test_a_month_of_scavengers_fills_an_idle_commitment() -> None:
    month = 30 * 24
    alone = simulate(month, with_scavengers=False)
    filled = simulate(month, with_scavengers=True)
    # Without scavengers the plan sits about 40% idle; with them, 95% or more is used.
    assert 0.5 <= alone["utilization"] <= 0.7, alone
    assert filled["utilization"] >= 0.95, filled
    # Production never waits: each job starts in the tick it arrives (0 ticks late), and
    # pays exactly the on-demand spend it would have paid with no scavenger running.
    assert filled["max_delay"] == 0 and filled["production_jobs"] == alone["production_jobs"]
    assert filled["production_uncovered"] == alone["production_uncovered"]
    assert filled["yields"] > 0  # the room really was taken back, not just left free


values = st.floats(min_value=0.5, max_value=40, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(
    prod=st.lists(values, max_size=8),
    scav=st.lists(values, max_size=12),
    need=values,
)
def test_admitted_scavengers_are_covered_and_yielding_restores_production_coverage(
    prod: list[float], scav: list[float], need: float
) -> None:
    running = [Running(i, Priority.PRODUCTION, usage(v), T0) for i, v in enumerate(prod)]
    queue = [(100 + i, usage(v)) for i, v in enumerate(scav)]
    taken = admit([PLAN], running, queue, T0)
    by_id = dict(queue)
    base_uncovered = allocate([PLAN], [r.usage for r in running], T0).uncovered
    with_scav = [*(r.usage for r in running), *(by_id[i] for i in taken)]
    assert allocate([PLAN], with_scav, T0).uncovered <= base_uncovered + 1e-9
    running += [
        Running(i, Priority.SCAVENGER, by_id[i], T0 + timedelta(minutes=n))
        for n, i in enumerate(taken)
    ]
    stop = make_room([PLAN], running, usage(need), T0)
    assert set(stop) <= set(taken)
    left = [r.usage for r in running if r.job_id not in stop]
    without_any = [r.usage for r in running if r.priority is Priority.PRODUCTION]
    assert allocate([PLAN], [*left, usage(need)], T0).uncovered <= (
        allocate([PLAN], [*without_any, usage(need)], T0).uncovered + 1e-9
    )
    # The newest scavengers go first.
    newest_first = sorted(taken, key=lambda i: taken.index(i), reverse=True)
    assert stop == newest_first[: len(stop)]


def test_spot_and_other_clouds_never_use_the_plan() -> None:
    spot = usage(50).model_copy(update={"market": MarketKind.SPOT})
    gcp = usage(50).model_copy(update={"cloud": "gcp"})
    assert admit([PLAN], [], [(1, spot), (2, gcp)], T0) == []
    assert admit([PLAN], [], [(3, usage(50))], T0) == [3]
