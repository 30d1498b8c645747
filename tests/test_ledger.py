"""The ledger: what an ended attempt cost (compute for the time it ran, the data it moved),
and the store keeping exactly one line per attempt."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError

from jobs.lifecycle import AttemptState, JobState
from jobs.loading import parse_spec
from providers.network import Location, load_network_prices
from providers.offering import MarketKind
from scheduler.constraints import PlanContext
from scheduler.data_gravity import DataMove
from scheduler.ledger import egress_cost, hours_run, move_cost, settle
from scheduler.placement import CostBreakdown, Placement, plan
from scheduler.records import AttemptRecord
from scheduler.store import Store
from tests.offerings import offering

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)

INPUT = DataMove(what="input s3://b/in", src="aws/eu-west-1", gb=100, kind="k", usd=5.0)
OUTPUT = DataMove(what="output s3://b/out", src="aws/us-east-1", gb=50, kind="k", usd=3.0)
RESTORE = DataMove(
    what="checkpoint restore (last attempt)", src="aws/eu-west-1", gb=10, kind="k", usd=0.7
)
WRITES = DataMove(
    what="checkpoint writes s3://b/ck", src="aws/us-east-1", gb=200, kind="k", usd=4.0, times=20
)
READS = DataMove(
    what="checkpoint reads s3://b/ck", src="aws/eu-west-1", gb=5, kind="k", usd=1.5, times=0.5
)
ALL_MOVES = [INPUT, OUTPUT, RESTORE, WRITES, READS]


def placement(moves: list[DataMove], *, expected_hours: float = 5.0) -> Placement:
    return Placement(
        offering=offering(price=2.0),
        accelerator=None,
        num_nodes=2,
        expected_hours=expected_hours,
        cost=CostBreakdown(compute=20.0, egress=sum(m.usd for m in moves)),
        data_moves=moves,
    )


def attempt(
    p: Placement, *, started_at: datetime | None = T0, attempt_id: int | None = 41
) -> AttemptRecord:
    o = p.offering
    return AttemptRecord(
        id=attempt_id,
        job_id=9,
        number=1,
        state=AttemptState.RUNNING,
        cloud=o.cloud,
        region=o.region,
        zone=o.zone,
        instance_type=o.instance_type,
        market=o.market,
        price_per_hour=o.price_per_hour,
        num_nodes=p.num_nodes,
        placement_json=p.model_dump_json(),
        submission_id="sched-9-1",
        created_at=T0 - timedelta(minutes=10),
        started_at=started_at,
    )


# -- hours and single moves ---------------------------------------------------------------------


def test_hours_run_counts_from_the_start_and_never_below_zero() -> None:
    a = attempt(placement([]))
    assert hours_run(a, T0 + timedelta(hours=2, minutes=30)) == 2.5
    assert hours_run(a, T0) == 0.0
    assert hours_run(a, T0 - timedelta(hours=1)) == 0.0  # a clock that went backwards
    assert hours_run(attempt(placement([]), started_at=None), T0 + timedelta(hours=9)) == 0.0


def test_move_cost_by_kind_of_move() -> None:
    def cost(m: DataMove, hours: float, succeeded: bool, planned: float = 5.0) -> float:
        return move_cost(m, hours=hours, planned_hours=planned, succeeded=succeeded)

    # Inputs and the restore are paid in full once started, whatever happens after.
    assert cost(INPUT, 0.1, False) == 5.0
    assert cost(RESTORE, 0.1, False) == 0.7
    # Outputs leave only when the job succeeded.
    assert cost(OUTPUT, 5.0, False) == 0.0
    assert cost(OUTPUT, 5.0, True) == 3.0
    # Checkpoint writes in proportion to the planned time, never past the plan.
    assert cost(WRITES, 1.0, False) == pytest.approx(4.0 * 1.0 / 5.0)
    assert cost(WRITES, 5.0, True) == pytest.approx(4.0)
    assert cost(WRITES, 12.0, True) == pytest.approx(4.0)
    assert cost(WRITES, 1.0, False, planned=0.0) == 0.0
    # Expected reads after future preemptions are the next attempt's restore, not this one's.
    assert cost(READS, 5.0, True) == 0.0
    assert cost(READS, 5.0, False) == 0.0


def test_egress_cost_sums_the_moves_against_the_planned_hours() -> None:
    p = placement(ALL_MOVES, expected_hours=5.0)
    # 2.5 of 5 planned hours: 5.0 + 0.7 + 4.0 * 0.5 = 7.7; output 3.0 more if it succeeded.
    assert egress_cost(p, hours=2.5, succeeded=False) == pytest.approx(7.7)
    assert egress_cost(p, hours=2.5, succeeded=True) == pytest.approx(10.7)
    assert egress_cost(placement([]), hours=2.5, succeeded=True) == 0.0


# -- settle ----------------------------------------------------------------------------------


def test_settle_a_preempted_attempt() -> None:
    a = attempt(placement(ALL_MOVES, expected_hours=5.0))
    line = settle(a, T0 + timedelta(hours=2, minutes=30), AttemptState.PREEMPTED)
    # Compute: $2/h per node x 2 nodes x 2.5 h = $10; egress 5.0 + 0.7 + 4.0 * 2.5/5 = 7.7.
    assert line.hours == 2.5
    assert line.compute_usd == pytest.approx(10.0)
    assert line.egress_usd == pytest.approx(7.7)
    assert line.total_usd == pytest.approx(17.7)
    assert (line.attempt_id, line.job_id) == (41, 9)
    assert (line.cloud, line.region, line.market) == ("aws", "us-east-1", "on_demand")
    assert line.outcome == AttemptState.PREEMPTED
    assert line.settled_at == T0 + timedelta(hours=2, minutes=30)


def test_settle_a_succeeded_attempt_that_ran_longer_than_planned() -> None:
    a = attempt(placement(ALL_MOVES, expected_hours=5.0))
    line = settle(a, T0 + timedelta(hours=6), AttemptState.SUCCEEDED)
    # Compute 2 x 2 x 6 = 24; egress 5.0 + 0.7 + 4.0 (capped) + 3.0 output = 12.7.
    assert line.compute_usd == pytest.approx(24.0)
    assert line.egress_usd == pytest.approx(12.7)
    assert line.total_usd == pytest.approx(36.7)


@pytest.mark.parametrize("outcome", [AttemptState.FAILED, AttemptState.STOPPED])
def test_settle_a_failed_or_stopped_attempt_sends_no_output(outcome: AttemptState) -> None:
    a = attempt(placement(ALL_MOVES, expected_hours=5.0))
    line = settle(a, T0 + timedelta(hours=1), outcome)
    # Compute 2 x 2 x 1 = 4; egress 5.0 + 0.7 + 4.0 * 1/5 = 6.5.
    assert line.compute_usd == pytest.approx(4.0)
    assert line.egress_usd == pytest.approx(6.5)
    assert line.outcome == outcome


def test_an_attempt_never_started_costs_nothing_and_moves_nothing() -> None:
    a = attempt(placement(ALL_MOVES), started_at=None)
    line = settle(a, T0 + timedelta(hours=3), AttemptState.FAILED)
    assert (line.hours, line.compute_usd, line.egress_usd, line.total_usd) == (0, 0, 0, 0)
    # Even its placement JSON is not needed: nothing ran, nothing moved.
    a.placement_json = "{}"
    assert settle(a, T0 + timedelta(hours=3), AttemptState.SUCCEEDED).total_usd == 0.0


def test_settle_against_a_real_plan_with_data_gravity() -> None:
    """The move names data_gravity produces are the ones the ledger tells apart."""
    spec = parse_spec(
        {
            "run": "x",
            "estimated_hours": 10,
            "market": "spot",
            "data": {
                "inputs": [{"uri": "s3://b/in", "region": "eu-west-1", "size_gb": 100}],
                "outputs": [{"uri": "s3://b/out", "region": "eu-west-1", "size_gb": 50}],
            },
            "checkpoint": {"uri": "s3://b/ck", "region": "eu-west-1", "size_gb": 10},
        },
        now=T0,
    )
    o = offering(price=1.0, market=MarketKind.SPOT, rate=0.05)
    ctx = PlanContext(restore_from=Location(cloud="aws", region="eu-west-1"))
    [p] = plan(spec, [o], load_network_prices(), ctx=ctx).placements
    by_kind = {m.what.split(" s3://")[0]: m for m in p.data_moves}
    assert set(by_kind) == {
        "input",
        "output",
        "checkpoint restore (last attempt)",
        "checkpoint writes",
        "checkpoint reads",
    }
    assert by_kind["checkpoint reads"].usd > 0  # so leaving it out below is a real check
    a = attempt(p)
    half = p.expected_hours / 2
    ended = T0 + timedelta(hours=half)
    line = settle(a, ended, AttemptState.PREEMPTED)
    want_egress = (
        by_kind["input"].usd
        + by_kind["checkpoint restore (last attempt)"].usd
        + by_kind["checkpoint writes"].usd / 2
    )
    assert line.hours == pytest.approx(half)
    assert line.compute_usd == pytest.approx(1.0 * half)
    assert line.egress_usd == pytest.approx(want_egress)
    # 100 GB in + 10 GB restore at $0.02/GB = $2.20, plus half the planned writes.
    assert by_kind["input"].usd + by_kind["checkpoint restore (last attempt)"].usd == (
        pytest.approx(2.2)
    )
    done = settle(a, T0 + timedelta(hours=p.expected_hours), AttemptState.SUCCEEDED)
    assert done.egress_usd == pytest.approx(p.cost.egress - by_kind["checkpoint reads"].usd)


# -- the store: one line per attempt ------------------------------------------------------------


def test_store_keeps_exactly_one_ledger_line_per_attempt(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'sched.db'}")
    spec = parse_spec({"name": "ledgered", "run": "true"}, now=T0)
    job = store.add_job(spec, submitted_at=T0, deadline_at=None)
    assert job.id is not None
    p = placement(ALL_MOVES, expected_hours=5.0)
    new = attempt(p, started_at=None, attempt_id=None)
    new.state = AttemptState.STARTING
    placed = store.transition(job.id, JobState.PLACED, at=T0, reason="placed", new_attempt=new)
    attempt_id = placed.current_attempt_id
    assert attempt_id is not None
    store.transition(job.id, JobState.PROVISIONING, at=T0, reason="up")
    store.transition(
        job.id,
        JobState.RUNNING,
        at=T0,
        reason="running",
        attempt_updates={"state": AttemptState.RUNNING, "started_at": T0},
    )
    ended = T0 + timedelta(hours=2, minutes=30)
    running = store.attempt(attempt_id)
    assert running.started_at == T0
    store.transition(
        job.id,
        JobState.PREEMPTED,
        at=ended,
        reason="lost",
        expect=[JobState.RUNNING],
        attempt_updates={"state": AttemptState.PREEMPTED, "ended_at": ended},
        ledger=settle(running, ended, AttemptState.PREEMPTED),
    )
    [line] = store.ledger(job.id)
    assert (line.attempt_id, line.job_id) == (attempt_id, job.id)
    assert line.hours == 2.5
    assert line.compute_usd == pytest.approx(10.0)
    assert line.egress_usd == pytest.approx(7.7)
    assert line.total_usd == pytest.approx(17.7)
    assert line.outcome == AttemptState.PREEMPTED
    assert line.settled_at == ended
    events_before = len(store.events(job.id))

    # The same attempt settled again (a legal transition carrying a second line) is refused
    # by the unique attempt_id, and the whole transition is rolled back.
    later = ended + timedelta(minutes=5)
    with pytest.raises(IntegrityError):
        store.transition(
            job.id,
            JobState.FAILED,
            at=later,
            reason="settled twice",
            attempt_updates={"message": "should not be written"},
            ledger=settle(store.attempt(attempt_id), later, AttemptState.FAILED),
        )
    assert store.get_job(job.id).state == JobState.PREEMPTED
    assert store.get_job(job.id).updated_at == ended
    assert store.attempt(attempt_id).message is None
    assert len(store.events(job.id)) == events_before
    assert [x.id for x in store.ledger(job.id)] == [line.id]
    store.close()
