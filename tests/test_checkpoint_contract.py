"""SCHED_CHECKPOINT_INTERVAL_S: the interval the plan's preemption cost assumed, told to the job."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from jobs.loading import parse_spec
from jobs.spec import JobSpec
from providers.network import load_network_prices
from providers.offering import MarketKind, Offering
from scheduler.job_env import checkpoint_interval_s
from scheduler.placement import plan
from tests.offerings import offering

NET = load_network_prices()


def spec(**fields: Any) -> JobSpec:
    return parse_spec({"run": "x", **fields}, source="t", now=datetime.now(UTC))


def a100(market: MarketKind, rate: float = 0.0) -> Offering:
    return offering(
        instance_type="p4d.24xlarge",
        gpu=("A100", 8, 40),
        vcpus=96,
        memory_gb=1152,
        market=market,
        price=10.0,
        rate=rate,
    )


def test_spot_placements_checkpoint_at_dalys_interval_for_their_rate() -> None:
    # MTBF 24 h, 5-minute checkpoints: Daly's interval is 116.69 minutes.
    job = spec(
        resources={"accelerators": "A100:8"},
        checkpoint={"write_seconds": 300},
        estimated_hours=10,
    )
    best = plan(job, [a100(MarketKind.SPOT, 1 / 24)], NET).placements[0]
    assert checkpoint_interval_s(best, job) == pytest.approx(116.69 * 60, abs=1)


def test_on_demand_placements_checkpoint_rarely() -> None:
    # No preemptions, but an assumed 720 h between failures: with 1-minute checkpoints,
    # sqrt(2 x (1/60) x 720) = 4.89898 h, x (1 + sqrt(x)/3 + x/9) with x = (1/60)/1440,
    # minus 1/60 h: 4.887872 h = 17,596 s.
    job = spec(resources={"accelerators": "A100:8"}, checkpoint={"write_seconds": 60})
    best = plan(job, [a100(MarketKind.ON_DEMAND)], NET).placements[0]
    assert checkpoint_interval_s(best, job) == pytest.approx(17_596, abs=1)


def test_no_interval_without_checkpoints_or_for_free_ones() -> None:
    for fields in ({}, {"checkpoint": {"write_seconds": 0}}):
        job = spec(resources={"accelerators": "A100:8"}, **fields)
        best = plan(job, [a100(MarketKind.SPOT, 0.05)], NET).placements[0]
        assert checkpoint_interval_s(best, job) is None
