"""Re-planning after a preemption: blocked pools, interruptions used, the checkpoint as data."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from jobs.loading import parse_spec
from jobs.spec import JobSpec
from providers.network import Location, load_network_prices
from providers.offering import MarketKind, Offering
from scheduler.constraints import Stage
from scheduler.migration import attempt_pool, replan_context, restore_location
from scheduler.placement import plan
from tests.offerings import offering

NET = load_network_prices()
NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def spec(**fields: Any) -> JobSpec:
    return parse_spec({"run": "x", **fields}, source="t", now=NOW)


def a100(region: str, price: float, market: MarketKind = MarketKind.SPOT) -> Offering:
    spot = market is MarketKind.SPOT
    return offering(
        region=region,
        instance_type="p4d.24xlarge",
        gpu=("A100", 8, 40),
        vcpus=96,
        memory_gb=1152,
        market=market,
        price=price,
        rate=0.01 if spot else 0.0,
    )


@dataclass
class Attempt:
    state: str
    cloud: str = "aws"
    region: str = "us-east-1"
    zone: str = "us-east-1a"
    instance_type: str = "p4d.24xlarge"
    market: str = "spot"
    ended_at: datetime | None = None
    placement_json: str = "{}"


def preempted(minutes_ago: float, **fields: Any) -> Attempt:
    return Attempt(state="PREEMPTED", ended_at=NOW - timedelta(minutes=minutes_ago), **fields)


def ctx_for(job: JobSpec, attempts: list[Attempt], cooldown_s: float = 1800) -> Any:
    return replan_context(job, attempts, now=NOW, hours_left=None, cooldown_s=cooldown_s)


def test_the_pool_that_preempted_is_blocked_for_the_cooldown_only() -> None:
    job = spec(resources={"accelerators": "A100:8"})
    recent, old = preempted(10), preempted(45, zone="us-east-1b")
    ctx = ctx_for(job, [old, recent])
    assert ctx.blocked_pools == {"aws/us-east-1a/p4d.24xlarge/spot"}
    assert ctx.interruptions_so_far == 2
    assert attempt_pool(recent) == a100("us-east-1", 10).pool
    assert ctx_for(job, [recent], cooldown_s=300).blocked_pools == frozenset()


def test_a_blocked_pool_sends_the_job_to_the_next_best() -> None:
    job = spec(resources={"accelerators": "A100:8"}, estimated_hours=5)
    offers = [a100("us-east-1", 10), a100("us-west-2", 11)]
    first = plan(job, offers, NET).placements[0]
    assert first.offering.region == "us-east-1"
    again = plan(job, offers, NET, ctx=ctx_for(job, [preempted(1)])).placements[0]
    assert again.offering.region == "us-west-2"


def test_preemptions_past_max_interruptions_go_on_demand() -> None:
    job = spec(resources={"accelerators": "A100:8"}, constraints={"max_interruptions": 2})
    offers = [a100("us-east-1", 10), a100("us-east-1", 30, MarketKind.ON_DEMAND)]
    history = [preempted(120, zone="us-east-1b"), preempted(60, zone="us-east-1c")]
    result = plan(job, offers, NET, ctx=ctx_for(job, history))
    assert [p.offering.market for p in result.placements] == [MarketKind.ON_DEMAND]
    assert any(s.stage is Stage.MARKET for s in result.funnel)


def test_the_checkpoint_is_read_from_its_bucket_or_from_where_the_job_last_ran() -> None:
    ran = [preempted(1, region="eu-west-1", zone="eu-west-1a")]
    beside = spec(checkpoint={"size_gb": 100})
    assert restore_location(beside, ran) == Location(cloud="aws", region="eu-west-1")
    bucket = spec(checkpoint={"uri": "gs://ck/run", "region": "us-central1", "size_gb": 100})
    assert restore_location(bucket, ran) == Location(cloud="gcp", region="us-central1")
    assert restore_location(beside, []) is None  # first attempt: nothing to restore
    assert restore_location(spec(), ran) is None  # no checkpoints: restarts from zero
    assert restore_location(beside, [preempted(1, cloud="local")]) == Location(cloud="local")


def test_a_large_checkpoint_keeps_the_job_near_it_unless_the_gap_is_worth_it() -> None:
    # After a preemption in us-east-1a: us-east-1b is $0.20/h dearer than eu-west-1a, but
    # reading a 2,000 GB checkpoint across regions costs 2,000 x $0.02 = $40 > $0.20 x 10 h.
    job = spec(
        resources={"accelerators": "A100:8"},
        checkpoint={"size_gb": 2000, "write_seconds": 60},
        estimated_hours=10,
    )
    east_b = a100("us-east-1", 10.2).model_copy(update={"zone": "us-east-1b"})
    offers = [a100("us-east-1", 9.0), east_b, a100("eu-west-1", 10.0)]
    ctx = ctx_for(job, [preempted(1)])
    result = plan(job, offers, NET, ctx=ctx)
    best, runner = result.placements[:2]
    assert best.offering.zone == "us-east-1b"
    assert runner.offering.region == "eu-west-1"
    restore = [m for m in runner.data_moves if m.what == "checkpoint restore (last attempt)"]
    assert len(restore) == 1 and restore[0].usd == pytest.approx(40.0)
    assert best.cost.egress == 0
    small = spec(
        resources={"accelerators": "A100:8"}, checkpoint={"size_gb": 5}, estimated_hours=10
    )
    moved = plan(small, offers, NET, ctx=ctx_for(small, [preempted(1)])).placements[0]
    assert moved.offering.region == "eu-west-1"  # 5 GB x $0.02 = $0.10 < $2 saved
