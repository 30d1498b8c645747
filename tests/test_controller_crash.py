"""kill -9 the controller at random moments while jobs run: each job still runs exactly once.

Every controller step is a transaction that checks the state it expects, and a job's Ray
submission id is derived from its attempt, so a controller killed between "submitted to
Ray" and "recorded RUNNING" finds the submission again instead of making a second one.
"""

from __future__ import annotations

import random

from jobs.lifecycle import JobState
from scheduler.api import Scheduler
from scheduler.config import Settings
from scheduler.ray_jobs import RayJobs
from tests.conftest import Cli
from tests.running import kill_controllers

JOBS = 20


def test_killed_controllers_lose_and_duplicate_nothing(
    ray_settings: Settings, ray_cli: Cli
) -> None:
    s = Scheduler(ray_settings)
    ids = [
        s.submit({"name": f"once-{i}", "run": "echo ran-$SCHED_JOB_ID"}, start=False).id
        for i in range(JOBS)
    ]
    rng = random.Random(20261129)
    kills = kill_controllers(
        ray_cli.env, lambda: not s.unfinished(), rng, alive_s=(1.0, 3.0), timeout=240
    )
    assert kills >= 3, f"the controller was killed mid-work only {kills} times"
    assert s.unfinished() == []
    ray = RayJobs(ray_settings.ray_address or f"http://127.0.0.1:{ray_settings.ray_dashboard_port}")
    for job_id in ids:
        view = s.get(job_id, refresh=False)
        assert view.state is JobState.SUCCEEDED, (job_id, view.message)
        attempts = s.attempts(job_id)
        assert len(attempts) == 1, f"job {job_id} ran {len(attempts)} times"
        assert ray.status(attempts[0].submission_id) is not None
        assert s.logs(job_id).count(f"ran-{job_id}") == 1
    s.close()
