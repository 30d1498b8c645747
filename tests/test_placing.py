"""What placing decides from a plan (scheduler/placing.py), before anything is written:
the move, the attempt, the warm cluster counted once, and when a job waits instead."""

from __future__ import annotations

from datetime import UTC, datetime

from jobs.lifecycle import JobState
from jobs.loading import parse_spec
from jobs.spec import JobSpec
from providers.network import load_network_prices
from providers.offering import MarketKind, Offering
from scheduler.placement import plan
from scheduler.placing import Decision, decide
from scheduler.records import ClusterRecord, ClusterState, JobRecord
from tests.offerings import offering

NOW = datetime(2026, 11, 29, 12, tzinfo=UTC)
NETWORK = load_network_prices()
CHEAP = offering(zone="us-east-1a", instance_type="m5.xlarge", price=1.0)
DEAR = offering(zone="us-east-1b", instance_type="m5.2xlarge", price=1.01)


def job_of(spec: JobSpec, job_id: int = 7) -> JobRecord:
    return JobRecord(
        id=job_id,
        uid=f"u{job_id}",
        name=spec.name or "j",
        state=JobState.PENDING,
        priority=spec.priority,
        spec_json=spec.model_dump_json(),
        submitted_at=NOW,
        updated_at=NOW,
    )


def spec_of(**fields: object) -> JobSpec:
    return parse_spec({"name": "j", "run": "python t.py", **fields}, now=NOW)


def warm(o: Offering) -> ClusterRecord:
    return ClusterRecord(
        name=f"warm-{o.zone}",
        cloud=o.cloud,
        region=o.region,
        zone=o.zone,
        instance_type=o.instance_type,
        market=str(o.market),
        num_nodes=1,
        price_per_hour=o.price_per_hour,
        state=ClusterState.UP,
        created_at=NOW,
        last_used_at=NOW,
    )


def placed(
    spec: JobSpec, offers: list[Offering], idle: list[ClusterRecord], job_id: int = 7
) -> Decision:
    decision = decide(
        job_of(spec, job_id),
        spec,
        plan(spec, offers, NETWORK),
        attempts_so_far=0,
        idle=idle,
        now=NOW,
        scavenger_on_demand=False,
    )
    assert isinstance(decision, Decision)
    return decision


def test_a_placed_move_carries_its_attempt_and_why() -> None:
    spec = spec_of(estimated_hours=2)
    d = placed(spec, [DEAR, CHEAP], [])
    assert d.move.target is JobState.PLACED and d.move.new_attempt is d.attempt
    assert d.attempt is not None
    assert (d.attempt.zone, d.attempt.number, d.attempt.submission_id) == (
        "us-east-1a",
        1,
        "sched-7-u7-1",
    )
    assert list(d.move.expect) == [JobState.PENDING, JobState.MIGRATING]
    assert d.frees is not None and d.frees.offering == CHEAP
    assert "us-east-1a" in d.move.reason


def test_a_warm_cluster_is_counted_for_one_job_of_the_batch_only() -> None:
    """The warm one wins on boot time saved; the next job of the same batch must not count
    the same cluster, which only the first can claim when it starts."""
    spec = spec_of(estimated_hours=2)
    idle = [warm(DEAR)]
    first = placed(spec, [CHEAP, DEAR], idle, 1)
    second = placed(spec, [CHEAP, DEAR], idle, 2)
    assert first.attempt is not None and first.attempt.zone == "us-east-1b"  # warm
    assert "warm" in first.move.reason
    assert idle == []
    assert second.attempt is not None and second.attempt.zone == "us-east-1a"


def test_nothing_fits_is_a_failed_move_with_the_reason_as_message() -> None:
    spec = spec_of(constraints={"max_price_per_hour": 0.5})
    d = placed(spec, [CHEAP], [])
    assert d.move.target is JobState.FAILED and d.attempt is None and d.frees is None
    assert d.move.reason.startswith("no feasible placement: nothing satisfies max_price")
    assert d.move.job_updates == {"message": d.move.reason}


def test_a_scavenger_that_would_spend_money_waits() -> None:
    spec = spec_of(priority="scavenger")
    on_demand = offering(price=1.0, market=MarketKind.ON_DEMAND)
    said = decide(
        job_of(spec),
        spec,
        plan(spec, [on_demand], NETWORK),
        attempts_so_far=0,
        idle=[],
        now=NOW,
        scavenger_on_demand=False,
    )
    assert isinstance(said, str) and said.startswith("waiting for idle commitment headroom")
