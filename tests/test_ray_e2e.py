"""Jobs really run on a local Ray cluster, driven through the `sched` command and the API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ray.job_submission import JobStatus, JobSubmissionClient

from jobs.lifecycle import JobState
from scheduler.api import Scheduler
from scheduler.config import Settings
from tests.conftest import REPO, Cli, RayTestCluster

QUICKSTART = REPO / "configs" / "examples" / "quickstart.yaml"


def _status(cli: Cli, job_id: str) -> dict:  # type: ignore[type-arg]
    result = cli("status", job_id, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_quickstart_runs_to_success(ray_cli: Cli) -> None:
    result = ray_cli("submit", str(QUICKSTART), "--wait")
    job_id = result.stdout.strip()
    assert result.returncode == 0, (result.stderr, ray_cli("status", job_id).stdout)
    assert job_id.isdigit()
    status = _status(ray_cli, job_id)
    assert status["state"] == "SUCCEEDED"
    assert status["exit_code"] == 0
    assert status["cloud"] == "local"
    assert status["cost"] == 0.0
    assert [e["to_state"] for e in status["events"]] == [
        "PENDING",
        "PLACED",
        "PROVISIONING",
        "RUNNING",
        "SUCCEEDED",
    ]
    table = ray_cli("status", job_id).stdout
    attempt_rows = [line.split() for line in table.splitlines() if line.lstrip().startswith("1 ")]
    assert any(row[1] == "local" and "SUCCEEDED:" in row for row in attempt_rows), table
    events = ray_cli("events", job_id)
    assert events.returncode == 0
    assert [line.split("->")[1].split()[0] for line in events.stdout.splitlines()] == [
        "PENDING",
        "PLACED",
        "PROVISIONING",
        "RUNNING",
        "SUCCEEDED",
    ]
    assert json.loads(ray_cli("events", job_id, "--json").stdout)[-1]["reason"] == "exited 0"
    logs = ray_cli("logs", job_id)
    assert logs.returncode == 0
    assert "round 8/8" in logs.stdout
    assert "pi ~ 3.14" in logs.stdout
    listed = json.loads(ray_cli("list", "--json").stdout)
    assert [j["id"] for j in listed] == [int(job_id)]


def test_failing_command_records_exit_code(ray_cli: Cli, home: Path) -> None:
    spec = home / "fail.yaml"
    spec.write_text("name: fails\nrun: echo about to fail; exit 3\n")
    result = ray_cli("submit", str(spec), "--wait")
    assert result.returncode == 1
    job_id = result.stdout.strip()
    status = _status(ray_cli, job_id)
    assert status["state"] == "FAILED"
    assert status["exit_code"] == 3
    assert "about to fail" in ray_cli("logs", job_id).stdout


def test_cancel_stops_the_job_on_ray(ray_cli: Cli, ray_cluster: RayTestCluster, home: Path) -> None:
    spec = home / "sleepy.yaml"
    spec.write_text("name: sleepy\nrun: echo started; sleep 600\n")
    result = ray_cli("submit", str(spec))
    assert result.returncode == 0, result.stderr
    job_id = result.stdout.strip()
    client = JobSubmissionClient(ray_cluster.address)
    submission = _status(ray_cli, job_id)["submission_id"]
    deadline = time.monotonic() + 60
    while client.get_job_status(submission) != JobStatus.RUNNING:
        assert time.monotonic() < deadline, "job never started on Ray"
        time.sleep(0.3)
    cancelled = ray_cli("cancel", job_id)
    assert cancelled.returncode == 0, cancelled.stderr
    assert cancelled.stdout.strip() == f"job {job_id} CANCELLED"
    assert client.get_job_status(submission) == JobStatus.STOPPED
    status = _status(ray_cli, job_id)
    assert status["state"] == "CANCELLED"
    assert status["events"][-1]["reason"] == "cancelled by user"


def test_queued_job_is_started_by_reconcile(ray_cli: Cli, home: Path) -> None:
    spec = home / "queued.yaml"
    spec.write_text("name: queued\nrun: echo from-the-queue\n")
    job_id = ray_cli("submit", "--queue", str(spec)).stdout.strip()
    assert _status(ray_cli, job_id)["state"] == "PENDING"
    result = ray_cli("reconcile")
    assert result.returncode == 0, result.stderr
    assert _status(ray_cli, job_id)["state"] in ("RUNNING", "SUCCEEDED")


def test_python_api_submit_wait_logs_and_checkpoint_env(ray_settings: Settings) -> None:
    s = Scheduler(ray_settings)
    job = s.submit(
        {
            "name": "api",
            "run": 'python -c "import os; e = os.environ;'
            " print('ckpt=' + e['SCHED_CHECKPOINT_DIR']"
            " + ' every=' + e['SCHED_CHECKPOINT_INTERVAL_S'])\"",
            "env": {"GREETING": 42},
            "tags": {"team": "research"},
            "checkpoint": {"write_seconds": 60},
        }
    )
    assert job.wait(timeout=120) is JobState.SUCCEEDED
    expected = ray_settings.checkpoint_root / f"job-{job.id}"
    # On-demand (the local machine): Daly's interval for a 720 h MTBF and 1-minute writes.
    assert f"ckpt={expected} every=17596" in job.logs()
    view = s.get(job.id)
    assert view.tags == {"team": "research"}
    assert view.attempts == 1
    s.close()


def test_quickstart_resumes_from_its_checkpoint(
    tmp_path: Path, ray_cluster: RayTestCluster
) -> None:
    """The example job itself honours SCHED_RESUME_FROM (run as its own Ray driver)."""
    script = REPO / "configs" / "examples" / "quickstart" / "estimate_pi.py"
    ckpt = tmp_path / "ckpt"
    env = {
        **os.environ,
        "RAY_ADDRESS": f"127.0.0.1:{ray_cluster.gcs_port}",
        "RAY_AUTH_MODE": "disabled",
        "SCHED_CHECKPOINT_DIR": str(ckpt),
    }
    args = [sys.executable, str(script), "--tasks", "1", "--samples", "1000"]
    first = subprocess.run([*args, "--rounds", "2"], env=env, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    assert json.loads((ckpt / "pi_checkpoint.json").read_text())["round"] == 2
    env["SCHED_RESUME_FROM"] = str(ckpt)
    second = subprocess.run([*args, "--rounds", "3"], env=env, capture_output=True, text=True)
    assert second.returncode == 0, second.stderr
    assert "resuming after round 2 (2000 samples)" in second.stdout
    assert "round 1/3" not in second.stdout
    assert "round 3/3" in second.stdout
    assert json.loads((ckpt / "pi_checkpoint.json").read_text())["total"] == 3000


@pytest.mark.parametrize("name", ["train-a100-spot.yaml", "tpu-v5p.yaml", "scavenger.yaml"])
def test_cloud_examples_plan_on_snapshot_prices(cli: Cli, name: str) -> None:
    """They need a cloud: `plan` ranks cloud placements from the shipped prices and says
    that this machine cannot launch them yet."""
    result = cli("plan", str(REPO / "configs" / "examples" / name), "--offline")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1].split()[1] in ("aws", "gcp")
    assert "feasible" in result.stdout
    assert "sched cannot launch on" in result.stderr


def test_controller_runs_queued_jobs_until_idle(ray_cli: Cli, home: Path) -> None:
    spec = home / "echo.yaml"
    spec.write_text("name: echo\nrun: echo done-$SCHED_JOB_ID\n")
    ids = [ray_cli("submit", str(spec), "--queue").stdout.strip() for _ in range(2)]
    assert all(_status(ray_cli, i)["state"] == "PENDING" for i in ids)
    run = ray_cli("controller", "--interval", "0.2", "--exit-when-idle", timeout=180)
    assert run.returncode == 0, run.stderr
    assert "no unfinished jobs; stopping" in run.stderr
    for i in ids:
        assert _status(ray_cli, i)["state"] == "SUCCEEDED"
        assert f"done-{i}" in ray_cli("logs", i).stdout
    assert ray_cli("reconcile").stdout.strip() == "0 unfinished job(s)"
