"""Ray clusters on AWS machines, against moto's server: bring-up, preemption, reuse, cleanup.

The whole path is real except the machines themselves: prices come from the Price List
and spot-price fakes, the plan picks an EC2 spot pool, the head is launched through
boto3 into moto with its startup script and idempotency token, and the job runs on a
real Ray cluster. moto's machines cannot run Ray, so the head's Jobs API address is set
(SCHED_CLUSTER_ADDRESS, the same setting that picks private or public IPs in a VPC) to
the local Ray cluster, which has fake GPUs so that an A10G job fits. A spot termination
is set in moto's backend the way EC2 reports one (state terminated, StateReason
Server.SpotInstanceTermination); the controller has to notice it through DescribeInstances.
"""

from __future__ import annotations

import base64
import json
import os
import random
import re
import subprocess
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from benchmarks.common import pool_cluster
from jobs.lifecycle import JobState
from scheduler.api import Scheduler
from scheduler.cluster_store import ClusterStore
from scheduler.config import Settings, load_settings
from scheduler.placement import Placement
from scheduler.records import ClusterState
from tests.conftest import REPO, SCHED
from tests.fakes.aws_env import REGION, aws_environment, raw_ec2, run_tagged, spot_terminate
from tests.fakes.aws_pricing import ec2_product
from tests.running import kill_controllers, wait_for_step

JOBS = 30

AMI = "ami-12c6146b"
STEPS = """
import json, os, pathlib, signal, sys, time
ck = pathlib.Path(os.environ["SCHED_CHECKPOINT_DIR"]) / "step.json"
start = json.loads(ck.read_text())["step"] if os.environ.get("SCHED_RESUME_FROM") else 0
print(f"attempt {os.environ['SCHED_ATTEMPT']} starts at step {start}", flush=True)
step = start
def last_checkpoint(signum, frame):
    ck.write_text(json.dumps({"step": step}))
    print(f"SIGTERM at step {step}: checkpoint written", flush=True)
    sys.exit(143)
signal.signal(signal.SIGTERM, last_checkpoint)
while step < 14:
    time.sleep(0.5)
    print(f"step {step}", flush=True)
    step += 1
    ck.write_text(json.dumps({"step": step}))
"""


@pytest.fixture(scope="module")
def aws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    yield from aws_environment(tmp_path_factory)


@pytest.fixture(scope="module")
def gpu_ray() -> Iterator[str]:
    """A local Ray cluster whose one worker claims 64 GPUs (Ray takes the count on trust)."""
    with pool_cluster() as (cluster, address):
        cluster.add_node(num_cpus=64, num_gpus=64)
        yield address


@pytest.fixture(scope="module")
def priced(aws: dict[str, Any]) -> None:
    """g5.xlarge spot is cheapest in us-east-1a, then us-east-1b (half a cent more)."""
    now = datetime.now(UTC)
    aws["price_list"].add(ec2_product("g5.xlarge", REGION, 1.006))
    aws["ec2_front"].add("us-east-1a", "g5.xlarge", 0.400, now - timedelta(minutes=30))
    aws["ec2_front"].add("us-east-1b", "g5.xlarge", 0.405, now - timedelta(minutes=30))


def cloud_env(home: Path, ray_address: str, **extra: str) -> dict[str, str]:
    port = ray_address.rsplit(":", 1)[1]
    return {
        "SCHED_HOME": str(home),
        "SCHED_POLL_INTERVAL": "0.2",
        "SCHED_REQUIRED_TAGS": "none",
        "SCHED_RAY_ADDRESS": ray_address,
        "SCHED_LAUNCH_CLOUDS": "aws",
        "SCHED_AWS_IMAGE": AMI,
        "SCHED_AWS_REGIONS": REGION,
        "SCHED_CLUSTER_ADDRESS": f"http://127.0.0.1:{port}",
        "SCHED_RAY_DASHBOARD_PORT": port,
        **extra,
    }


def cloud_settings(home: Path, ray_address: str, **extra: str) -> Settings:
    return load_settings(cloud_env(home, ray_address, **extra))


def spec(name: str, workdir: Path, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "run": "python steps.py",
        "workdir": str(workdir),
        "resources": {"accelerators": "A10G:1"},
        "constraints": {"clouds": ["aws"], "zones": ["us-east-1a", "us-east-1b"]},
        "tags": {"team": "ml"},
        "estimated_hours": 1,
        **extra,
    }


def ec2_instances(aws: dict[str, Any], **filters: list[str]) -> list[dict[str, Any]]:
    reply = raw_ec2(aws).describe_instances(
        Filters=[{"Name": k, "Values": v} for k, v in filters.items()]
    )
    return [i for r in reply["Reservations"] for i in r["Instances"]]


def test_spot_termination_migrates_the_job_to_the_next_pool_and_resumes_it(
    aws: dict[str, Any], priced: None, gpu_ray: str, tmp_path: Path
) -> None:
    settings = cloud_settings(tmp_path / "home", gpu_ray)
    work = tmp_path / "work"
    work.mkdir()
    (work / "steps.py").write_text(STEPS)
    s = Scheduler(settings)
    job = s.submit(spec("spot-a10g", work, checkpoint={"write_seconds": 1}))
    first = s.attempts(job.id)[0]
    assert (first.cloud, first.zone, first.instance_type, first.market) == (
        "aws",
        "us-east-1a",
        "g5.xlarge",
        "spot",
    )
    clusters = ClusterStore(s.store)
    [c1] = clusters.all()
    assert c1.state == ClusterState.UP and c1.attempt_id == first.id
    [head] = ec2_instances(aws, **{"tag:sched:cluster": [c1.name]})
    assert head["Placement"]["AvailabilityZone"] == "us-east-1a"
    assert head["InstanceLifecycle"] == "spot"
    tags = {t["Key"]: t["Value"] for t in head["Tags"]}
    assert tags["team"] == "ml" and tags["sched:role"] == "head"
    assert tags["sched:idempotency-key"] == f"{c1.name}-head"
    user_data = raw_ec2(aws).describe_instance_attribute(
        InstanceId=head["InstanceId"], Attribute="userData"
    )["UserData"]["Value"]
    script = base64.b64decode(user_data).decode()
    assert "ray start --head" in script and "node_agent.py --cloud aws" in script

    wait_for_step(s, job.id, settings.checkpoint_root / f"job-{job.id}" / "step.json", 3, 90)
    spot_terminate(head["InstanceId"])

    assert job.wait(timeout=120) is JobState.SUCCEEDED, s.get(job.id).message
    attempts = s.attempts(job.id)
    assert [(a.zone, a.state) for a in attempts] == [
        ("us-east-1a", "PREEMPTED"),
        ("us-east-1b", "SUCCEEDED"),
    ]
    assert "Spot instance termination" in (attempts[0].message or "")
    # The ledger settles each attempt: $/h x hours (no data moves in this job).
    ledger = s.store.ledger(job.id)
    assert [line.outcome for line in ledger] == ["PREEMPTED", "SUCCEEDED"]
    for line, attempt in zip(ledger, attempts, strict=True):
        assert line.compute_usd == pytest.approx(attempt.price_per_hour * line.hours)
        assert line.compute_usd > 0 and line.egress_usd == 0
        assert attempt.cost == pytest.approx(line.total_usd)
    assert s.get(job.id).cost == pytest.approx(sum(line.total_usd for line in ledger))
    assert s.get(job.id).interruptions == 1

    # The job got SIGTERM when its machine went (a last checkpoint), then resumed from it.
    logs = s.logs(job.id)
    assert re.search(r"SIGTERM at step (\d+): checkpoint written", logs.split("--- attempt 2")[0])
    second = logs.split("--- attempt 2")[1]
    resumed = int(re.search(r"attempt 2 starts at step (\d+)", second).group(1))  # type: ignore[union-attr]
    assert resumed >= 3
    assert [int(n) for n in re.findall(r"^step (\d+)$", second, re.M)] == list(range(resumed, 14))

    c1, c2 = clusters.all()
    assert c1.state == ClusterState.TERMINATED and "preempted" in (c1.end_reason or "")
    assert c2.state == ClusterState.UP and c2.attempt_id is None  # warm, for the next job
    assert c2.zone == "us-east-1b"
    [head2] = ec2_instances(aws, **{"tag:sched:cluster": [c2.name]})
    assert head2["State"]["Name"] == "running"
    s.close()

    # The same from the command line: the clusters, the ledger columns, stopping one.
    env = sched_env(tmp_path / "home", gpu_ray)
    listed = run_sched(env, "clusters")
    assert c2.name in listed.stdout and "idle" in listed.stdout
    assert c1.name not in listed.stdout  # terminated ones only with --all
    assert c1.name in run_sched(env, "clusters", "--all").stdout
    status = run_sched(env, "status", str(job.id)).stdout
    assert "COMPUTE" in status and "EGRESS" in status and "PREEMPTED" in status
    stopped = run_sched(env, "clusters", "--stop", c2.name)
    assert stopped.returncode == 0 and "TERMINATED (stopped by user)" in stopped.stdout
    assert ec2_instances(aws, **{"tag:sched:cluster": [c2.name]})[0]["State"]["Name"] in (
        "shutting-down",
        "terminated",
    )
    missing = run_sched(env, "clusters", "--stop", "nope")
    assert missing.returncode == 2 and missing.stderr == "error: --stop: no cluster 'nope'\n"


def sched_env(home: Path, ray_address: str) -> dict[str, str]:
    """The environment of a `sched` process: the moto endpoints, and the cloud settings."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SCHED_", "RAY_"))},
        **cloud_env(home, ray_address),
        "RAY_AUTH_MODE": "disabled",
        "COLUMNS": "250",
    }


def run_sched(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SCHED, *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=120
    )


def test_a_warm_cluster_is_reused_and_an_idle_one_is_stopped(
    aws: dict[str, Any], priced: None, gpu_ray: str, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    work = tmp_path / "work"
    work.mkdir()
    (work / "steps.py").write_text("print('hello from', __import__('os').environ['SCHED_JOB_ID'])")
    s = Scheduler(cloud_settings(home, gpu_ray))
    first = s.submit(spec("first", work))
    assert first.wait(timeout=60) is JobState.SUCCEEDED
    clusters = ClusterStore(s.store)
    [warm] = clusters.all()
    assert warm.zone == "us-east-1a" and warm.attempt_id is None
    launched = len(ec2_instances(aws))

    second = s.submit(spec("second", work))
    assert second.wait(timeout=60) is JobState.SUCCEEDED
    assert len(ec2_instances(aws)) == launched  # no new machine
    [only] = clusters.all()
    assert only.id == warm.id and only.attempt_id is None
    placed = next(e.reason for e in s.events(second.id) if e.to_state == "PLACED")
    assert "warm cluster" in placed
    s.close()

    # Idle past SCHED_IDLE_STOP: the next full pass terminates it, and the machine too.
    s2 = Scheduler(cloud_settings(home, gpu_ray, SCHED_IDLE_STOP="0"))
    warnings = s2.reconcile()
    assert any(f"stopped {warm.name}: idle" in w for w in warnings), warnings
    [gone] = ClusterStore(s2.store).all()
    assert gone.state == ClusterState.TERMINATED
    [machine] = ec2_instances(aws, **{"tag:sched:cluster": [warm.name]})
    assert machine["State"]["Name"] in ("shutting-down", "terminated")
    s2.close()


def test_orphaned_machines_are_terminated(
    aws: dict[str, Any], gpu_ray: str, tmp_path: Path
) -> None:
    """A machine tagged by sched that no cluster in the database claims (its record lost,
    or launched by a controller that died before recording it) is terminated; untagged
    machines are not sched's to touch."""
    orphan = run_tagged(aws, {"sched:cluster": "sched-ghost-1"}, "g5.xlarge")
    theirs = run_tagged(aws, {"team": "someone-else"}, "g5.xlarge")
    s = Scheduler(cloud_settings(tmp_path / "home", gpu_ray))
    warnings = s.reconcile()
    assert f"clusters: terminated orphan {orphan} (sched-ghost-1)" in warnings
    states = {i["InstanceId"]: i["State"]["Name"] for i in ec2_instances(aws)}
    assert states[orphan] in ("shutting-down", "terminated")
    assert states[theirs] == "running"
    s.close()


def test_killed_controllers_launch_each_machine_once(
    aws: dict[str, Any], priced: None, gpu_ray: str, tmp_path: Path
) -> None:
    """30 jobs on AWS while `sched controller` is killed with -9 at random moments: every
    job runs exactly once, and every launch key names exactly one machine in moto."""
    env = sched_env(tmp_path / "home", gpu_ray)
    s = Scheduler(load_settings(env))
    job_spec = spec("once", tmp_path) | {"run": "echo ran-$SCHED_JOB_ID"}
    del job_spec["workdir"]
    ids = [s.submit(job_spec | {"name": f"once-{i}"}, start=False).id for i in range(JOBS)]
    rng = random.Random(20261129)
    kills = kill_controllers(env, lambda: not s.unfinished(), rng, alive_s=(2.5, 6.0), timeout=300)
    assert kills >= 3, f"the controller was killed mid-work only {kills} times"
    assert s.unfinished() == []
    for job_id in ids:
        view = s.get(job_id, refresh=False)
        assert view.state is JobState.SUCCEEDED, (job_id, view.message)
        assert len(s.attempts(job_id)) == 1, f"job {job_id} ran more than once"
        assert s.logs(job_id).count(f"ran-{job_id}") == 1
        assert len(s.store.ledger(job_id)) == 1

    records = ClusterStore(s.store).all()
    names = {c.name for c in records}
    tagged = [
        (m, {t["Key"]: t["Value"] for t in m["Tags"]})
        for m in ec2_instances(aws, **{"tag-key": ["sched:cluster"]})
    ]
    ours = [(m, tags) for m, tags in tagged if tags["sched:cluster"] in names]
    machines = [m for m, _ in ours]
    keys = Counter(tags["sched:idempotency-key"] for _, tags in ours)
    assert keys and max(keys.values()) == 1, f"duplicate launches: {keys.most_common(3)}"
    recorded = {i for c in records for i in json.loads(c.instances_json)}
    assert recorded == {m["InstanceId"] for m in machines}  # none launched and forgotten
    assert len(records) <= JOBS  # warm clusters were reused, never one per retry
    s.close()


COMMITMENT = """\
commitments:
  - id: sp-small
    kind: aws_compute_savings_plan
    hourly_commitment: 0.9
    discount: 0.4
    start: 2026-01-01
    end: 2030-01-01
"""


def test_a_scavenger_fills_the_plan_and_yields_it_to_production(
    aws: dict[str, Any], priced: None, gpu_ray: str, tmp_path: Path
) -> None:
    """A $0.90/h Savings Plan at 40% off covers $1.50/h of on-demand use: one g5.xlarge
    ($1.006/h). A scavenger runs there for nothing; a production job arrives, the
    scavenger gets SIGTERM and yields in the same step, production runs at once on the
    plan (on the scavenger's warm cluster), and the scavenger resumes from its checkpoint
    once the plan is free again. A yield is not an interruption."""
    plan = tmp_path / "commitments.yaml"
    plan.write_text(COMMITMENT)
    work = tmp_path / "work"
    work.mkdir()
    (work / "steps.py").write_text(STEPS)
    s = Scheduler(cloud_settings(tmp_path / "home", gpu_ray, SCHED_COMMITMENTS=str(plan)))
    scav = s.submit(
        spec("scavenger", work, checkpoint={"write_seconds": 1}) | {"priority": "scavenger"}
    )
    [first] = s.attempts(scav.id)
    assert (first.market, first.instance_type) == ("on_demand", "g5.xlarge")
    placed = Placement.model_validate_json(first.placement_json)
    assert placed.cost.credit == pytest.approx(placed.cost.compute)  # all of it on the plan
    progress = tmp_path / "home" / "checkpoints" / f"job-{scav.id}" / "step.json"
    wait_for_step(s, scav.id, progress, 3, 60)
    launched = len(ec2_instances(aws))

    prod = s.submit(spec("production", work) | {"priority": "production", "run": "echo prod"})
    assert s.get(prod.id, refresh=False).state is JobState.RUNNING  # in the same step
    yielded = s.attempts(scav.id)[0]
    assert yielded.state == "YIELDED" and f"to job {prod.id}" in (yielded.message or "")
    [p1] = s.attempts(prod.id)
    assert (p1.market, p1.zone) == ("on_demand", first.zone)
    assert len(ec2_instances(aws)) == launched  # the scavenger's warm cluster, no new machine
    assert prod.wait(timeout=60) is JobState.SUCCEEDED

    assert scav.wait(timeout=120) is JobState.SUCCEEDED, s.get(scav.id).message
    attempts = s.attempts(scav.id)
    assert [a.state for a in attempts] == ["YIELDED", "SUCCEEDED"]
    assert s.get(scav.id).interruptions == 0
    assert [line.outcome for line in s.store.ledger(scav.id)] == ["YIELDED", "SUCCEEDED"]
    logs = s.logs(scav.id)
    assert "SIGTERM at step" in logs.split("--- attempt 2")[0]
    resumed = int(re.search(r"attempt 2 starts at step (\d+)", logs).group(1))  # type: ignore[union-attr]
    assert resumed >= 3
    s.close()
