"""Submit-to-RUNNING latency on a local Ray cluster that is already up.

Three figures per job, from the moment `submit()` is called:
- handed to Ray: submit() returned with the job RUNNING in our database;
- driver running: Ray itself reports the job RUNNING (its runtime env is set up);
- finished: a trivial command has SUCCEEDED and we recorded it.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from common import free_port, summary
from ray.job_submission import JobStatus, JobSubmissionClient

from jobs.lifecycle import JobState
from scheduler.api import Scheduler
from scheduler.config import load_settings

JOBS = 10
OUT = Path(__file__).parent / "results" / "submit_latency.json"


def main() -> None:
    home = Path(tempfile.mkdtemp(prefix="sched-bench-"))
    ray_tmp = tempfile.mkdtemp(prefix="sray-", dir="/tmp")
    settings = load_settings(
        {
            "SCHED_REQUIRED_TAGS": "none",
            "SCHED_HOME": str(home),
            "SCHED_RAY_PORT": str(free_port()),
            "SCHED_RAY_DASHBOARD_PORT": str(free_port()),
            "SCHED_RAY_TEMP_DIR": ray_tmp,
            "SCHED_POLL_INTERVAL": "0.05",
        }
    )
    s = Scheduler(settings)
    start = time.perf_counter()
    address, _ = s.up()
    cluster_up = time.perf_counter() - start
    client = JobSubmissionClient(address)
    try:
        s.submit({"name": "warmup", "run": "echo warm"}).wait(timeout=120)
        handed, running, finished = [], [], []
        for i in range(JOBS):
            t0 = time.perf_counter()
            job = s.submit({"name": f"lat-{i}", "run": "echo hello"})
            handed.append(time.perf_counter() - t0)
            assert s.get(job.id, refresh=False).state in (JobState.RUNNING, JobState.SUCCEEDED)
            sid = s.get(job.id, refresh=False).submission_id or ""
            while client.get_job_status(sid) == JobStatus.PENDING:
                time.sleep(0.02)
            running.append(time.perf_counter() - t0)
            assert job.wait(timeout=120) is JobState.SUCCEEDED
            finished.append(time.perf_counter() - t0)
    finally:
        s.down()
        shutil.rmtree(ray_tmp, ignore_errors=True)
    results = {
        "jobs": JOBS,
        "cluster_start_s": round(cluster_up, 2),
        "submit_to_handed_to_ray": summary(handed),
        "submit_to_driver_running": summary(running),
        "submit_to_succeeded": summary(finished),
    }
    print(f"cluster start          {cluster_up:.2f} s (once, not part of the latency)")
    for key in ("submit_to_handed_to_ray", "submit_to_driver_running", "submit_to_succeeded"):
        r = results[key]
        print(f"{key:24} median {r['median_s']:.3f} s  min {r['min_s']:.3f}  max {r['max_s']:.3f}")
    OUT.parent.mkdir(exist_ok=True)
    payload = {"measured_at": datetime.now(UTC).isoformat(), "results": results}
    OUT.write_text(json.dumps(payload, indent=2))
    print(f"written to {OUT}")


if __name__ == "__main__":
    main()
