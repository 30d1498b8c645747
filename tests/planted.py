"""Jobs planted in a real store by the store's own transitions, for tests that need a
ledger or running attempts without running anything."""

from __future__ import annotations

from datetime import datetime

from jobs.lifecycle import AttemptState, JobState
from jobs.loading import parse_spec
from jobs.spec import Priority
from providers.offering import MarketKind
from scheduler.ledger import settle
from scheduler.placement import CostBreakdown, Placement
from scheduler.records import AttemptRecord
from scheduler.store import Store
from tests.offerings import offering

NO_MOVES = Placement(
    offering=offering(),
    accelerator=None,
    num_nodes=1,
    expected_hours=1.0,
    cost=CostBreakdown(compute=0.0, egress=0.0),
    data_moves=[],
).model_dump_json()

WHERE = {
    "local": ("local", "local", "local-4cpu"),
    "aws": ("us-east-1", "us-east-1a", "m5.xlarge"),
    "gcp": ("us-central1", "us-central1-a", "n2-standard-4"),
}


def start(
    store: Store,
    tags: dict[str, str],
    *,
    price: float,
    created: datetime,
    started: datetime | None,
    cloud: str = "local",
    nodes: int = 1,
    priority: Priority = Priority.STANDARD,
    market: MarketKind = MarketKind.ON_DEMAND,
) -> int:
    """A job with an attempt on a cluster: PROVISIONING, or RUNNING from ``started``."""
    spec = parse_spec(
        {"name": "j", "run": "true", "priority": priority, "tags": tags}, source="t", now=created
    )
    job = store.add_job(spec, submitted_at=created, deadline_at=None)
    assert job.id is not None
    region, zone, instance_type = WHERE[cloud]
    attempt = AttemptRecord(
        job_id=job.id,
        number=1,
        state=AttemptState.STARTING,
        cloud=cloud,
        region=region,
        zone=zone,
        instance_type=instance_type,
        market=market,
        price_per_hour=price,
        num_nodes=nodes,
        placement_json=NO_MOVES,
        submission_id=f"sched-{job.id}-1",
        created_at=created,
    )
    store.transition(job.id, JobState.PLACED, at=created, reason="placed", new_attempt=attempt)
    store.transition(job.id, JobState.PROVISIONING, at=created, reason="up")
    if started is not None:
        store.transition(
            job.id,
            JobState.RUNNING,
            at=started,
            reason="running",
            attempt_updates={"state": AttemptState.RUNNING, "started_at": started},
        )
    return job.id


def finish(store: Store, job_id: int, at: datetime) -> float:
    """End a running attempt at ``at``, settling its ledger line; returns the line's total."""
    attempt_id = store.get_job(job_id).current_attempt_id
    assert attempt_id is not None
    attempt = store.attempt(attempt_id)
    billed_from = None if attempt.cloud == "local" else attempt.created_at
    line = settle(attempt, at, AttemptState.SUCCEEDED, billed_from)
    store.transition(
        job_id,
        JobState.SUCCEEDED,
        at=at,
        reason="done",
        expect=[JobState.RUNNING],
        attempt_updates={"state": AttemptState.SUCCEEDED, "ended_at": at, "cost": line.total_usd},
        job_updates={"cost": line.total_usd},
        ledger=line,
    )
    return line.total_usd
