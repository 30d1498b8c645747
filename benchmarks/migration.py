"""Seconds from losing the node under a running job to the job RUNNING again elsewhere.

A real multi-node Ray cluster on this machine (Ray's test harness: a head and worker nodes
as separate processes, health checks every second as sched's own cluster would be run for
this). Each round adds two pool nodes, starts a checkpointing job on the first, kills that
node, and drives the scheduler as `sched controller` would (reconcile every 0.1 s) until
the job is RUNNING on the second pool. Three figures per round, from the kill:
- detected: the attempt is recorded PREEMPTED (Ray reported the job failed, its node dead);
- running again: the new attempt is RUNNING on the other pool;
- resumed: the job's output shows it started again from its checkpoint.
"""

from __future__ import annotations

import json
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from common import pool_cluster, summary

from jobs.lifecycle import AttemptState, JobState
from scheduler.api import Scheduler
from scheduler.config import load_settings

ROUNDS = 5
OUT = Path(__file__).parent / "results" / "migration.json"
STEPS = """
import json, os, pathlib, time
ck = pathlib.Path(os.environ["SCHED_CHECKPOINT_DIR"]) / "step.json"
start = json.loads(ck.read_text())["step"] if os.environ.get("SCHED_RESUME_FROM") else 0
print(f"starts at step {start}", flush=True)
for step in range(start, 1000):
    time.sleep(0.2)
    ck.write_text(json.dumps({"step": step + 1}))
"""


def one_round(s: Scheduler, cluster: object, work: Path, n: int) -> dict[str, float]:
    a = cluster.add_node(num_cpus=1, resources={f"sched-pool-a{n}": 1})  # type: ignore[attr-defined]
    b = cluster.add_node(num_cpus=1, resources={f"sched-pool-b{n}": 1})  # type: ignore[attr-defined]
    spec = {
        "name": f"migrate-{n}",
        "run": "python steps.py",
        "workdir": str(work),
        "checkpoint": {"write_seconds": 1},
        "constraints": {"zones": [f"a{n}", f"b{n}"]},
    }
    job = s.submit(spec)
    progress = s.settings.checkpoint_root / f"job-{job.id}" / "step.json"
    while not (progress.exists() and json.loads(progress.read_text())["step"] >= 5):
        s.reconcile([job.id])
        time.sleep(0.1)
    killed = time.monotonic()
    cluster.remove_node(a, allow_graceful=False)  # type: ignore[attr-defined]
    detected = running = None
    while running is None:
        s.reconcile([job.id])
        attempts = s.attempts(job.id)
        now = time.monotonic()
        if detected is None and attempts[0].state == AttemptState.PREEMPTED:
            detected = now - killed
        if len(attempts) > 1 and attempts[1].state == AttemptState.RUNNING:
            running = now - killed
        if now - killed > 120:
            raise RuntimeError(f"job {job.id} did not migrate: {s.get(job.id).message}")
        time.sleep(0.1)
    resumed = None
    while resumed is None and time.monotonic() - killed < 120:
        logs = s.logs(job.id)
        if "--- attempt 2" in logs and "starts at step" in logs.split("--- attempt 2")[1]:
            resumed = time.monotonic() - killed
            step = int(logs.split("--- attempt 2")[1].split("starts at step ")[1].split()[0])
        time.sleep(0.1)
    s.cancel(job.id)
    assert s.get(job.id, refresh=False).state is JobState.CANCELLED
    cluster.remove_node(b)  # type: ignore[attr-defined]
    return {
        "detected_s": detected or 0.0,
        "running_again_s": running,
        "resumed_output_s": resumed or 0.0,
        "resumed_at_step": float(step),
    }


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, pool_cluster() as (cluster, address):
        settings = load_settings(
            {
                "SCHED_REQUIRED_TAGS": "none",
                "SCHED_HOME": f"{tmp}/home",
                "SCHED_RAY_ADDRESS": address,
            }
        )
        work = Path(tmp) / "work"
        work.mkdir()
        (work / "steps.py").write_text(STEPS)
        s = Scheduler(settings)
        rounds = [one_round(s, cluster, work, n) for n in range(ROUNDS)]
        s.close()
    results = {
        "rounds": ROUNDS,
        "detected": summary([r["detected_s"] for r in rounds]),
        "running_again": summary([r["running_again_s"] for r in rounds]),
        "resumed_output": summary([r["resumed_output_s"] for r in rounds]),
        "resumed_at_step": [int(r["resumed_at_step"]) for r in rounds],
        "target_running_again_median_s": 10.0,
    }
    for key in ("detected", "running_again", "resumed_output"):
        r = results[key]
        print(
            f"{key:>15}: median {r['median_s']:.2f} s (min {r['min_s']:.2f}, max {r['max_s']:.2f})"
        )  # type: ignore[index]
    print(f"resumed at steps {results['resumed_at_step']} (checkpoint every 0.2 s of work)")
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(
        json.dumps({"measured_at": datetime.now(UTC).isoformat(), "results": results}, indent=2)
        + "\n"
    )
    print(f"written to {OUT}")


if __name__ == "__main__":
    main()
