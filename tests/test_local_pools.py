"""Losing a node under a running job: detected, the pool blocked, the job resumed elsewhere.

A real multi-node Ray cluster on this machine (Ray's own test harness starts the head and
two worker nodes as separate processes); each worker carries a `sched-pool-NAME` resource,
so sched offers it as a pool of its own. Killing pool a's node with the job on it is the
local stand-in for a spot preemption.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from benchmarks.common import pool_cluster
from jobs.lifecycle import JobState
from scheduler.api import Scheduler
from scheduler.config import load_settings
from tests.running import wait_for_step

STEPS = """
import json, os, pathlib, time
ck = pathlib.Path(os.environ["SCHED_CHECKPOINT_DIR"]) / "step.json"
start = json.loads(ck.read_text())["step"] if os.environ.get("SCHED_RESUME_FROM") else 0
print(f"attempt {os.environ['SCHED_ATTEMPT']} starts at step {start}", flush=True)
for step in range(start, 14):
    time.sleep(0.5)
    print(f"step {step}", flush=True)
    ck.write_text(json.dumps({"step": step + 1}))
"""


@pytest.fixture(scope="module")
def pools() -> Iterator[tuple[Any, dict[str, Any], str]]:
    with pool_cluster() as (cluster, address):
        nodes = {p: cluster.add_node(num_cpus=1, resources={f"sched-pool-{p}": 1}) for p in "ab"}
        yield cluster, nodes, address


def test_losing_a_pool_node_migrates_the_job_and_resumes_it(
    pools: tuple[Any, dict[str, Any], str], tmp_path: Path
) -> None:
    cluster, nodes, address = pools
    settings = load_settings(
        {
            "SCHED_REQUIRED_TAGS": "none",
            "SCHED_HOME": str(tmp_path / "home"),
            "SCHED_POLL_INTERVAL": "0.2",
            "SCHED_RAY_ADDRESS": address,
            "SCHED_LOCAL_PRICE_PER_HOUR": "3.6",
        }
    )
    work = tmp_path / "work"
    work.mkdir()
    (work / "steps.py").write_text(STEPS)
    s = Scheduler(settings)
    spec = {
        "name": "pools",
        "run": "python steps.py",
        "workdir": str(work),
        "checkpoint": {"write_seconds": 1},
        "constraints": {"zones": ["a", "b"]},
    }
    job = s.submit(spec)
    first = s.attempts(job.id)[0]
    assert (first.zone, first.instance_type) == ("a", "ray-node-a")
    wait_for_step(s, job.id, settings.checkpoint_root / f"job-{job.id}" / "step.json", 3, 90)
    cluster.remove_node(nodes["a"], allow_graceful=False)
    assert job.wait(timeout=120) is JobState.SUCCEEDED, s.get(job.id).message
    attempts = s.attempts(job.id)
    assert [(a.zone, a.state) for a in attempts] == [("a", "PREEMPTED"), ("b", "SUCCEEDED")]
    assert all(a.cost > 0 for a in attempts)  # $3.60/h for the time each attempt ran
    view = s.get(job.id)
    assert view.interruptions == 1
    assert view.cost == pytest.approx(sum(a.cost for a in attempts))
    states = [e.to_state for e in s.events(job.id)]
    assert states[states.index("PREEMPTED") :] == [
        "PREEMPTED",
        "MIGRATING",
        "PLACED",
        "PROVISIONING",
        "RUNNING",
        "SUCCEEDED",
    ]
    placed_again = [e.reason for e in s.events(job.id) if e.to_state == "PLACED"][-1]
    assert placed_again.startswith("placed on local b ray-node-b on-demand")
    logs = s.logs(job.id)
    second = logs.split("--- attempt 2")[1]
    resumed = int(re.search(r"attempt 2 starts at step (\d+)", second).group(1))  # type: ignore[union-attr]
    assert resumed >= 3
    assert [int(n) for n in re.findall(r"^step (\d+)$", second, re.M)] == list(range(resumed, 14))
    s.close()
