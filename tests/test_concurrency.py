"""Several processes on one database: job leases, racing submitters, two controllers at once.

All of it on SQLite and on a real PostgreSQL server (the ``db_url`` fixture)."""

from __future__ import annotations

import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchmarks import concurrency
from jobs.lifecycle import JobState
from jobs.loading import parse_spec
from scheduler.api import Scheduler
from scheduler.config import load_settings
from scheduler.leases import dead_here, owner_id
from scheduler.ray_jobs import RayJobs
from scheduler.store import Store
from tests.conftest import REPO, SCHED, Cli, RayTestCluster

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def _job(store: Store) -> int:
    job = store.add_job(
        parse_spec({"name": "j", "run": "true"}, now=NOW), submitted_at=NOW, deadline_at=None
    )
    assert job.id is not None
    return job.id


def test_a_lease_is_held_until_released_or_expired(db_url: str) -> None:
    store = Store(db_url)
    job = _job(store)
    assert store.lease(job, "a", NOW, 60) is None
    assert store.lease(job, "a", NOW, 60) is None  # its holder may take it again
    assert store.lease(job, "b", NOW + timedelta(seconds=59), 60) == "a"
    store.release(job, "b")  # not b's to give back
    assert store.lease(job, "b", NOW, 60) == "a"
    assert store.lease(job, "b", NOW + timedelta(seconds=61), 60) is None  # a's expired
    store.release(job, "b")
    assert store.lease(job, "c", NOW, 60) is None
    assert store.get_job(job).lease_owner == "c"
    store.close()


def test_a_dead_holders_lease_is_taken_over_at_once(db_url: str) -> None:
    store = Store(db_url)
    job = _job(store)
    assert store.lease(job, "dead", NOW, 600) is None
    assert store.lease(job, "me", NOW, 600) == "dead"
    assert store.lease(job, "me", NOW, 600, replacing="dead") is None
    assert store.lease(job, "other", NOW, 600, replacing="dead") == "me"
    store.close()


def test_dead_here_knows_gone_processes_on_this_machine_only() -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    host = socket.gethostname()
    assert dead_here(f"{host}:{gone.pid}:abc")
    assert not dead_here(owner_id())  # this process
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert not dead_here(f"{host}:{alive.pid}:abc")
    finally:
        alive.kill()
        alive.wait()
    assert not dead_here(f"elsewhere-{host}:{gone.pid}:abc")  # can't tell: wait for expiry
    assert not dead_here("garbage")


def test_racing_submitters_and_a_controller_lose_and_duplicate_nothing(
    db_url: str, tmp_path: Path
) -> None:
    """8 processes submit 40 jobs each while `sched controller` decides them (the same
    run as benchmarks/concurrency.py, which does 8 x 1,000)."""
    url = None if db_url.startswith("sqlite") else db_url
    out = concurrency.run(8, 40, tmp_path, url)
    assert out["stored"] == out["distinct_uids"] == 320
    assert (out["lost"], out["duplicated"], out["unexpected"]) == (0, 0, 0)
    assert (out["undecided"], out["jobs_with_wrong_events"]) == (0, 0)
    assert out["states"] == {"FAILED": 320}  # H100:8 fits nowhere launchable here


def test_two_controllers_started_at_once_run_each_job_once(
    db_url: str, home: Path, ray_cluster: RayTestCluster, ray_cli: Cli
) -> None:
    env = {**ray_cli.env, "SCHED_DB_URL": db_url}
    settings = load_settings(
        {
            "SCHED_HOME": str(home),
            "SCHED_REQUIRED_TAGS": "none",
            "SCHED_DB_URL": db_url,
            **ray_cluster.env(),
        }
    )
    s = Scheduler(settings)
    ids = [
        s.submit({"name": f"both-{i}", "run": "echo ran-$SCHED_JOB_ID"}, start=False).id
        for i in range(8)
    ]
    controllers = [
        subprocess.Popen(
            [SCHED, "controller", "--interval", "0.1", "--exit-when-idle"],
            env=env,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for _ in range(2)
    ]
    errors = [c.communicate(timeout=240)[1].decode() for c in controllers]
    assert [c.returncode for c in controllers] == [0, 0], errors
    ray = RayJobs(ray_cluster.address)
    for job_id in ids:
        view = s.get(job_id, refresh=False)
        assert view.state is JobState.SUCCEEDED, (job_id, view.message)
        [attempt] = s.attempts(job_id)
        assert ray.status(attempt.submission_id) is not None
        assert s.logs(job_id).count(f"ran-{job_id}") == 1
        events = [e.to_state for e in s.events(job_id)]
        assert events.count(JobState.RUNNING) == 1 and JobState.FAILED not in events
        assert s.store.get_job(job_id).lease_owner is None  # every lease given back
    s.close()
