"""The spot preemption model: Daly's interval, expected wall time, worked by hand."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scheduler.preemption import daly_interval, spot_estimate, young_interval


def test_daly_interval_for_24h_mtbf_and_5_minute_checkpoint() -> None:
    # Young: sqrt(2 * 5/60 * 24) = 2 h. Daly: x = (1/12)/48 = 1/576, so
    # 2 * (1 + (1/24)/3 + (1/576)/9) - 1/12 = 1.944830 h = 116.69 minutes.
    assert young_interval(5 / 60, 24) == pytest.approx(2.0)
    assert daly_interval(5 / 60, 24) * 60 == pytest.approx(116.69, abs=0.01)


def test_daly_interval_is_the_mtbf_when_checkpoints_are_slow() -> None:
    assert daly_interval(3.0, 1.0) == 1.0
    with pytest.raises(ValueError, match="positive checkpoint time"):
        daly_interval(0, 24)


def test_spot_estimate_worked_example() -> None:
    # 10 h of work, MTBF 24 h, 5-minute checkpoints, 6-minute restarts.
    e = spot_estimate(10, 1 / 24, 0.1, 5 / 60)
    tau = 1.944830247
    productive = 10 * (1 + (5 / 60) / tau)  # 10.42849
    wall = productive / (1 - (1 / 24) * (tau / 2 + 0.1))  # 10.91627
    assert e.checkpoint_interval_hours == pytest.approx(tau)
    assert e.wall_hours == pytest.approx(wall)
    assert e.wall_hours == pytest.approx(10.9163, abs=1e-4)
    assert e.interruptions == pytest.approx(wall / 24)
    assert e.checkpoint_hours == pytest.approx(10 * (5 / 60) / tau)
    assert e.lost_hours == pytest.approx(e.interruptions * tau / 2)
    assert e.restart_hours == pytest.approx(e.interruptions * 0.1)


def test_without_checkpoints_the_job_restarts_from_scratch() -> None:
    # (M + R) * (e^(W/M) - 1) = 24.1 * (e^(10/24) - 1) = 12.4572 h
    e = spot_estimate(10, 1 / 24, 0.1, None)
    assert e.wall_hours == pytest.approx(24.1 * math.expm1(10 / 24))
    assert e.interruptions == pytest.approx(math.expm1(10 / 24))
    assert e.checkpoint_interval_hours is None


def test_on_demand_and_zero_work_cost_exactly_the_work() -> None:
    assert spot_estimate(7, 0, 0.1, 5 / 60).wall_hours == 7
    assert spot_estimate(0, 0.5, 0.1, None).wall_hours == 0


def test_interruptions_faster_than_progress_never_finish() -> None:
    assert not spot_estimate(10, 2.0, 1.0, 0.5).feasible
    assert not spot_estimate(10_000, 1.0, 0.1, None).feasible
    assert spot_estimate(10, 1 / 24, 0.1, 5 / 60).feasible


def test_negative_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="must not be negative"):
        spot_estimate(-1, 0.1, 0.1, None)


rates = st.floats(0, 0.5)
works = st.floats(0, 200)
restarts = st.floats(0, 1)
checkpoints = st.one_of(st.none(), st.floats(0, 0.5))


@given(works, rates, restarts, checkpoints)
def test_wall_time_is_work_plus_its_parts(w: float, lam: float, r: float, d: float | None) -> None:
    e = spot_estimate(w, lam, r, d)
    if not e.feasible:
        return
    assert e.wall_hours >= w - 1e-9
    parts = w + e.checkpoint_hours + e.lost_hours + e.restart_hours
    assert parts == pytest.approx(e.wall_hours, rel=1e-6, abs=1e-9)


@given(works, rates, rates, restarts, checkpoints)
def test_more_interruptions_never_shorten_the_job(
    w: float, a: float, b: float, r: float, d: float | None
) -> None:
    low, high = sorted((a, b))
    slow = spot_estimate(w, high, r, d).wall_hours
    fast = spot_estimate(w, low, r, d).wall_hours
    assert slow >= fast - 1e-6 * max(fast, 1)


@given(works, works, rates, restarts, checkpoints)
def test_more_work_never_takes_less_time(
    a: float, b: float, lam: float, r: float, d: float | None
) -> None:
    low, high = sorted((a, b))
    assert spot_estimate(high, lam, r, d).wall_hours >= spot_estimate(low, lam, r, d).wall_hours


def test_a_vanishing_rate_costs_the_work_and_nothing_more() -> None:
    # A subnormal rate once made 1/rate overflow and priced a safe pool at infinity.
    for d in (None, 5 / 60):
        assert spot_estimate(1.0, 2.225073858507e-311, 0.0, d).wall_hours == 1.0
        assert spot_estimate(1.0, 1e-9, 0.1, d).wall_hours == pytest.approx(1.0, rel=1e-4)
