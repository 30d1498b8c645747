"""A stored spec this version no longer accepts fails its job with the reason; the controller
goes on with the others (before, every `sched reconcile` stopped on it with a traceback)."""

from __future__ import annotations

import json

from sqlmodel import Session

from jobs.lifecycle import JobState
from scheduler.api import Scheduler
from scheduler.config import Settings
from scheduler.records import JobRecord


def test_unreadable_stored_spec_fails_only_its_job(settings: Settings) -> None:
    s = Scheduler(settings)
    old = s.submit({"name": "old", "run": "true", "estimated_hours": 2}, start=False).id
    other = s.submit(
        {"name": "gpu", "run": "true", "resources": {"accelerators": "H100:8"}}, start=False
    ).id
    with Session(s.store._write) as session:  # what an older sched (or a hand edit) left
        row = session.get(JobRecord, old)
        assert row is not None
        spec = json.loads(row.spec_json)
        spec["estimated_hours"] = "Infinity"
        row.spec_json = json.dumps(spec)
        session.add(row)
        session.commit()
    warnings = s.reconcile()
    assert any(
        w.startswith(f"job {old}: its stored spec is no longer valid: estimated_hours")
        for w in warnings
    ), warnings
    failed = s.get(old, refresh=False)
    assert failed.state is JobState.FAILED
    assert "its stored spec is no longer valid: estimated_hours" in (failed.message or "")
    # The next job was still decided in the same pass (H100:8 fits nothing launchable here).
    assert s.get(other, refresh=False).state is JobState.FAILED
    assert "no feasible placement" in (s.get(other, refresh=False).message or "")
    s.close()


def test_place_queued_decides_the_queue_without_starting_anything(settings: Settings) -> None:
    """The placing step alone (what benchmarks/load.py times), over more than one batch."""
    s = Scheduler(settings)
    gpu = {"run": "true", "resources": {"accelerators": "H100:8"}}
    ids = [s.submit({"name": f"g{i}", **gpu}, start=False).id for i in range(70)]
    decided = s.controller.place_queued()
    assert [j.id for j in decided] == ids
    assert {j.state for j in decided} == {JobState.FAILED}
    assert all(len(s.events(i)) == 2 for i in ids[::10])  # submitted, then failed: once each
    assert s.controller.place_queued() == []  # nothing queued is left
