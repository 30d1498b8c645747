"""The store on a real SQLite file and a real PostgreSQL server: transitions, races, events."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from jobs.lifecycle import IllegalTransition, JobState
from jobs.loading import parse_spec
from jobs.spec import JobSpec
from scheduler.records import AttemptRecord
from scheduler.store import Move, StaleState, Store, StoreError, UnknownJob

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def spec(name: str = "j") -> JobSpec:
    return parse_spec({"name": name, "run": "true", "tags": {"team": "ml"}}, now=NOW)


def test_add_job_writes_job_and_pending_event(db_url: str) -> None:
    store = Store(db_url)
    job = store.add_job(spec("a"), submitted_at=NOW, deadline_at=None)
    assert job.id is not None
    got = store.get_job(job.id)
    assert (got.name, got.state, got.submitted_at) == ("a", JobState.PENDING, NOW)
    events = store.events(job.id)
    assert [(e.from_state, e.to_state) for e in events] == [(None, JobState.PENDING)]
    assert store.count_jobs() == 1
    with pytest.raises(UnknownJob):
        store.get_job(job.id + 100)


def _attempt(job_id: int, number: int = 1) -> AttemptRecord:
    return AttemptRecord(
        job_id=job_id,
        number=number,
        state="STARTING",
        cloud="local",
        region="local",
        zone="h",
        instance_type="local-2cpu",
        market="on_demand",
        price_per_hour=0.5,
        submission_id=f"sched-{job_id}-{number}",
        created_at=NOW,
    )


def test_transition_writes_attempt_and_event_together(db_url: str) -> None:
    store = Store(db_url)
    job = store.add_job(spec(), submitted_at=NOW, deadline_at=None)
    assert job.id is not None
    attempt = _attempt(job.id)
    placed = store.transition(
        job.id, JobState.PLACED, at=NOW, reason="r", expect=[JobState.PENDING], new_attempt=attempt
    )
    assert placed.current_attempt_id is not None
    store.transition(
        job.id,
        JobState.PROVISIONING,
        at=NOW,
        reason="up",
        attempt_updates={"cluster_address": "http://x"},
    )
    assert store.attempt(placed.current_attempt_id).cluster_address == "http://x"
    events = store.events(job.id)
    assert [e.to_state for e in events] == ["PENDING", "PLACED", "PROVISIONING"]
    assert events[1].attempt_id == placed.current_attempt_id


def test_stale_and_illegal_transitions_write_nothing(db_url: str) -> None:
    store = Store(db_url)
    job = store.add_job(spec(), submitted_at=NOW, deadline_at=None)
    assert job.id is not None
    with pytest.raises(StaleState):
        store.transition(job.id, JobState.FAILED, at=NOW, reason="x", expect=[JobState.RUNNING])
    with pytest.raises(IllegalTransition):
        store.transition(job.id, JobState.SUCCEEDED, at=NOW, reason="x")
    assert store.get_job(job.id).state == JobState.PENDING
    assert len(store.events(job.id)) == 1


def test_bad_database_url_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StoreError, match="cannot open database"):
        Store(f"sqlite:///{blocker}/sub/sched.db")


def test_password_is_hidden_in_messages() -> None:
    store = Store.__new__(Store)
    store.url = "postgresql://me:secret@db.example:5432/sched"
    assert store.safe_url == "postgresql://me:***@db.example:5432/sched"


_SUBMITTER = textwrap.dedent(
    """
    import sys, time
    from datetime import UTC, datetime
    from pathlib import Path
    from jobs.loading import parse_spec
    from scheduler.store import Store

    url, tag, count, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
    store = Store(url)
    while not go.exists():
        time.sleep(0.01)
    for i in range(count):
        now = datetime.now(UTC)
        spec = parse_spec({"name": f"{tag}-{i}", "run": "true"}, now=now)
        store.add_job(spec, submitted_at=now, deadline_at=None)
    """
)


def _race(script: str, db_url: str, tmp_path: Path, *args: str) -> None:
    """Run two processes of ``script`` released at the same instant."""
    Store(db_url).close()  # create the tables first, as the first `sched` call would
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, db_url, tag, *args, str(go)],
            stderr=subprocess.PIPE,
            text=True,
        )
        for tag in ("p1", "p2")
    ]
    go.write_text("")
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err


def test_two_processes_submitting_500_each_lose_and_duplicate_nothing(
    db_url: str, tmp_path: Path
) -> None:
    _race(_SUBMITTER, db_url, tmp_path, "500")
    store = Store(db_url)
    jobs = store.list_jobs()
    names = [j.name for j in jobs]
    assert len(jobs) == 1000
    assert len(set(names)) == 1000
    assert {f"p{p}-{i}" for p in (1, 2) for i in range(500)} == set(names)
    assert len({j.id for j in jobs}) == 1000
    assert all(len(store.events(j.id or 0)) == 1 for j in jobs[:50])


_CLAIMER = textwrap.dedent(
    """
    import sys, time
    from datetime import UTC, datetime
    from pathlib import Path
    from jobs.lifecycle import JobState
    from scheduler.store import StaleState, Store

    url, tag, count, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
    store = Store(url)
    while not go.exists():
        time.sleep(0.01)
    for job_id in range(1, count + 1):
        try:
            store.transition(job_id, JobState.PLACED, at=datetime.now(UTC), reason=tag,
                             expect=[JobState.PENDING])
        except StaleState:
            pass
    """
)


def test_racing_claims_give_each_job_exactly_one_winner(db_url: str, tmp_path: Path) -> None:
    """The read-modify-write race BEGIN IMMEDIATE / FOR UPDATE exists to win."""
    store = Store(db_url)
    for i in range(150):
        store.add_job(spec(f"j{i}"), submitted_at=NOW, deadline_at=None)
    _race(_CLAIMER, db_url, tmp_path, "150")
    winners: dict[str, int] = {}
    for job in store.list_jobs():
        assert job.state == JobState.PLACED
        placed = [e for e in store.events(job.id or 0) if e.to_state == JobState.PLACED]
        assert len(placed) == 1
        winners[placed[0].reason] = winners.get(placed[0].reason, 0) + 1
    assert sum(winners.values()) == 150


def test_transition_many_writes_each_move_as_transition_would(db_url: str) -> None:
    store = Store(db_url)
    a, b, c, d = (
        store.add_job(spec(n), submitted_at=NOW, deadline_at=None).id or 0 for n in "abcd"
    )
    store.transition(d, JobState.CANCELLED, at=NOW, reason="gone", expect=[JobState.PENDING])
    waiting = [JobState.PENDING, JobState.MIGRATING]
    moved = store.transition_many(
        [
            Move(b, JobState.PLACED, "on b", waiting, new_attempt=_attempt(b)),
            Move(a, JobState.PLACED, "on a", waiting, new_attempt=_attempt(a)),
            Move(c, JobState.FAILED, "nothing fits", waiting, job_updates={"message": "none"}),
            Move(d, JobState.PLACED, "too late", waiting, new_attempt=_attempt(d)),
        ],
        at=NOW,
    )
    assert [j.id for j in moved] == [b, a, c]  # the cancelled job is left alone
    for job_id, reason in ((a, "on a"), (b, "on b")):
        job = store.get_job(job_id)
        [attempt] = store.attempts(job_id)
        assert (job.state, job.current_attempt_id) == (JobState.PLACED, attempt.id)
        last = store.events(job_id)[-1]
        assert (last.from_state, last.to_state, last.reason) == (
            JobState.PENDING,
            JobState.PLACED,
            reason,
        )
        assert last.attempt_id == attempt.id
    assert (store.get_job(c).state, store.get_job(c).message) == (JobState.FAILED, "none")
    assert store.get_job(d).state == JobState.CANCELLED and store.attempts(d) == []
    assert len(store.events(d)) == 2


def test_transition_many_with_an_illegal_move_writes_nothing(db_url: str) -> None:
    store = Store(db_url)
    a, b = (store.add_job(spec(n), submitted_at=NOW, deadline_at=None).id or 0 for n in "ab")
    moves = [
        Move(a, JobState.PLACED, "fine", [JobState.PENDING], new_attempt=_attempt(a)),
        Move(b, JobState.RUNNING, "skips PLACED", [JobState.PENDING]),
    ]
    with pytest.raises(IllegalTransition):
        store.transition_many(moves, at=NOW)
    assert store.get_job(a).state == JobState.PENDING and store.attempts(a) == []
    assert len(store.events(a)) == 1
    with pytest.raises(ValueError, match="at most once"):
        store.transition_many([moves[0], moves[0]], at=NOW)


_BATCH_CLAIMER = textwrap.dedent(
    """
    import sys, time
    from datetime import UTC, datetime
    from pathlib import Path
    from jobs.lifecycle import JobState
    from scheduler.store import Move, Store

    url, tag, count, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
    store = Store(url)
    ids = list(range(1, count + 1))
    if tag == "p2":
        ids.reverse()  # the other way round: batches overlap in opposite orders
    while not go.exists():
        time.sleep(0.01)
    for start in range(0, count, 16):
        moves = [Move(i, JobState.PLACED, tag, [JobState.PENDING]) for i in ids[start:start + 16]]
        store.transition_many(moves, at=datetime.now(UTC))
    """
)


def test_racing_batches_give_each_job_one_winner_and_never_deadlock(
    db_url: str, tmp_path: Path
) -> None:
    store = Store(db_url)
    for i in range(150):
        store.add_job(spec(f"j{i}"), submitted_at=NOW, deadline_at=None)
    _race(_BATCH_CLAIMER, db_url, tmp_path, "150")
    for job in store.list_jobs():
        assert job.state == JobState.PLACED
        placed = [e for e in store.events(job.id or 0) if e.to_state == JobState.PLACED]
        assert len(placed) == 1
