"""When the cloud says no: throttling, no capacity, no quota, timeouts, and real errors.

Faults are injected where the clouds produce them, in HTTP answers: ``FaultyEc2`` stands
in front of moto and answers chosen EC2 actions with EC2's error documents (or holds them
past the client's read timeout); the Google fakes queue 429/503 answers or fail their
operations with ZONE_RESOURCE_POOL_EXHAUSTED, QUOTA_EXCEEDED or a TPU stockout. The
controller, the cluster manager and the real boto3/google clients have to make sense of
them: retry with backoff where the cloud is busy, place the job elsewhere where it has no
capacity or quota (leaving nothing running), fail where nothing else would help. The jobs
that get through run on a real local Ray cluster, which every head's address points at.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from jobs.lifecycle import JobState
from jobs.loading import parse_spec
from jobs.spec import JobSpec
from providers.aws_compute import IDEMPOTENCY_TAG, AwsClients, AwsCompute
from providers.gcp_clients import GoogleEndpoint
from providers.gcp_compute import GcpCompute
from providers.gcp_tpu_compute import GcpTpuCompute
from providers.instances import Compute
from providers.offering import MarketKind, OfferedAccelerator, Offering
from providers.ray_bootstrap import Bootstrap
from scheduler.cluster_store import ClusterStore
from scheduler.clusters import ClusterManager, LaunchRefused
from scheduler.config import load_settings
from scheduler.controller import Controller
from scheduler.launch_faults import FaultKind
from scheduler.placement import Placement
from scheduler.records import AttemptRecord, ClusterState
from scheduler.store import Store
from tests.conftest import RayTestCluster
from tests.fakes.aws_env import aws_environment, raw_ec2, run_tagged, spot_terminate
from tests.fakes.faults import FaultyEc2, ec2_tags, google_rest_error
from tests.fakes.google_compute import INSTANCE, INSTANCES, FakeCompute
from tests.fakes.google_tpu import NODES, FakeTpu
from tests.offerings import offering, placed

AMI = "ami-12c6146b"
PROJECT = "test-project"
IMAGE = "projects/debian-cloud/global/images/family/debian-12"


# ---- end to end: the controller, the real clients, the fakes, a real Ray job ---------------


@pytest.fixture(scope="module")
def aws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """moto behind the spot-price front, and FaultyEc2 in front of both."""
    for env in aws_environment(tmp_path_factory):
        with (
            FaultyEc2(os.environ["AWS_ENDPOINT_URL_EC2"]) as front,
            pytest.MonkeyPatch.context() as mp,
        ):
            mp.setenv("AWS_ENDPOINT_URL_EC2", front.url)
            yield {**env, "front": front}


@pytest.fixture
def front(aws: dict[str, Any]) -> FaultyEc2:
    f: FaultyEc2 = aws["front"]
    f.faults.clear()
    f.seen.clear()
    f.injected.clear()
    return f


def cpu_offers(cloud: str, itype: str, zones: list[tuple[str, str, float]]) -> list[Offering]:
    return [
        offering(
            cloud=cloud,
            region=region,
            zone=zone,
            instance_type=itype,
            market=MarketKind.SPOT,
            price=price,
            vcpus=4,
            memory_gb=16,
        )
        for region, zone, price in zones
    ]


class World:
    """A controller whose clusters are launched by ``computes`` and whose heads all point
    at the local Ray cluster, so a job that gets a cluster really runs."""

    def __init__(
        self,
        tmp_path: Path,
        ray: RayTestCluster,
        computes: dict[str, Compute],
        offers: list[Offering],
    ) -> None:
        self.store = Store(f"sqlite:///{tmp_path / 'sched.db'}")
        self.clusters = ClusterManager(
            ClusterStore(self.store),
            computes,
            Bootstrap(ray_version="2.0.0"),
            clock=lambda: datetime.now(UTC),
            images={"aws": AMI, "gcp": IMAGE},
            address_template=ray.address,
            boot_timeout_s=900,
            idle_stop_s=600,
        )
        settings = load_settings({"SCHED_HOME": str(tmp_path), "SCHED_REQUIRED_TAGS": "none"})
        self.controller = Controller(
            self.store,
            {},
            settings,
            lambda: datetime.now(UTC),
            cloud_offerings=lambda: offers,
            clusters=self.clusters,
        )

    def submit(self, cloud: str, nodes: int = 1) -> int:
        spec: JobSpec = parse_spec(
            {
                "name": "faulty",
                "run": "echo ran-on-attempt-$SCHED_ATTEMPT",
                "resources": {"cpus": 1, "num_nodes": nodes},
                "constraints": {"clouds": [cloud]},
            },
            source="<test>",
            now=datetime.now(UTC),
        )
        job = self.store.add_job(spec, submitted_at=datetime.now(UTC), deadline_at=None)
        assert job.id is not None
        return job.id

    def run(self, job_id: int, until: JobState | None = None, timeout: float = 40) -> JobState:
        """Reconcile until the job ends (or reaches ``until``); its state then."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.controller.reconcile()
            state = JobState(self.store.get_job(job_id).state)
            if state.terminal or state is until:
                return state
            time.sleep(0.2)
        pytest.fail(f"job {job_id} still {self.store.get_job(job_id).state}")

    def attempts(self, job_id: int) -> list[tuple[str, str]]:
        return [(a.zone, a.state) for a in self.store.attempts(job_id)]

    def reasons(self, job_id: int) -> list[str]:
        return [f"{e.from_state}->{e.to_state}: {e.reason}" for e in self.store.events(job_id)]

    def close(self) -> None:
        self.store.close()


def aws_compute(**limits: Any) -> AwsCompute:
    return AwsCompute(AwsClients(**{"max_attempts": 3, "read_timeout": 5.0, **limits}))


def ec2_machines(
    aws: dict[str, Any], region: str = "us-east-1", **filters: list[str]
) -> list[dict[str, Any]]:
    reply = raw_ec2(aws, region).describe_instances(
        Filters=[{"Name": k, "Values": v} for k, v in filters.items()]
    )
    return [i for r in reply["Reservations"] for i in r["Instances"]]


EAST = [("us-east-1", "us-east-1a", 0.040), ("us-east-1", "us-east-1b", 0.041)]


def test_aws_throttling_is_retried_by_botocore_then_by_the_next_pass(
    aws: dict[str, Any], front: FaultyEc2, ray_cluster: RayTestCluster, tmp_path: Path
) -> None:
    """Four RequestLimitExceeded answers to RunInstances: botocore's standard mode spends
    its three tries on the first pass (the job stays PROVISIONING, one event says so), the
    next pass gets through, and exactly one machine exists for the launch key."""
    front.fail("RunInstances", "RequestLimitExceeded", times=4)
    world = World(
        tmp_path, ray_cluster, {"aws": aws_compute()}, cpu_offers("aws", "m5.large", EAST)
    )
    job = world.submit("aws")
    world.controller.reconcile()
    assert world.store.get_job(job).state == JobState.PROVISIONING
    assert front.seen["RunInstances"] == 3
    assert world.run(job) is JobState.SUCCEEDED
    assert front.seen["RunInstances"] == 5 and len(front.injected) == 4
    assert world.attempts(job) == [("us-east-1a", "SUCCEEDED")]
    busy = [r for r in world.reasons(job) if "cloud busy" in r]
    assert len(busy) == 1, busy  # one event for the error, not one per pass
    assert busy[0].startswith("PROVISIONING->PROVISIONING: cloud busy (RequestLimitExceeded)")
    assert "Request limit exceeded." in busy[0]
    [cluster] = world.clusters.store.all()
    assert len(ec2_machines(aws, **{f"tag:{IDEMPOTENCY_TAG}": [f"{cluster.name}-head"]})) == 1
    world.close()


def test_no_capacity_moves_the_job_to_the_next_zone_and_leaves_nothing_running(
    aws: dict[str, Any], front: FaultyEc2, ray_cluster: RayTestCluster, tmp_path: Path
) -> None:
    """A cluster of two in us-east-1a: the head launches, EC2 has no capacity for the
    worker. The head is terminated, the attempt ends NO_CAPACITY (no interruption), and
    the job runs in us-east-1b."""
    front.fail(
        "RunInstances",
        "InsufficientInstanceCapacity",
        zone="us-east-1a",
        times=None,
        where=lambda form: ec2_tags(form).get("sched:role") == "worker",
    )
    world = World(
        tmp_path, ray_cluster, {"aws": aws_compute()}, cpu_offers("aws", "m5.large", EAST)
    )
    job = world.submit("aws", nodes=2)
    assert world.run(job) is JobState.SUCCEEDED
    assert world.attempts(job) == [("us-east-1a", "NO_CAPACITY"), ("us-east-1b", "SUCCEEDED")]
    record = world.store.get_job(job)
    assert record.interruptions == 0
    first = world.store.attempts(job)[0]
    assert (first.message or "").startswith("InsufficientInstanceCapacity: We currently do not")
    refused = next(r for r in world.reasons(job) if r.startswith("PROVISIONING->PREEMPTED"))
    assert "no capacity for" in refused and "InsufficientInstanceCapacity" in refused
    assert "(us-east-1a)" in refused and "\n" not in refused
    assert any(
        "placing again without pool aws/us-east-1a/m5.large/spot" in r for r in world.reasons(job)
    )
    # Nothing of the refused cluster runs in us-east-1a: its head was terminated.
    c1, c2 = world.clusters.store.all()
    assert c1.state == ClusterState.TERMINATED and "InsufficientInstanceCapacity" in (
        c1.end_reason or ""
    )
    [head] = ec2_machines(aws, **{"tag:sched:cluster": [c1.name]})
    assert head["Placement"]["AvailabilityZone"] == "us-east-1a"
    assert head["State"]["Name"] in ("shutting-down", "terminated")
    assert len(ec2_machines(aws, **{"tag:sched:cluster": [c2.name]})) == 2
    # The head ran for a moment before the refusal: that much is billed, and no more.
    line = world.store.ledger(job)[0]
    assert line.outcome == "NO_CAPACITY" and 0 < line.hours < 0.02
    world.close()


def test_a_quota_error_blocks_the_whole_region(
    aws: dict[str, Any], front: FaultyEc2, ray_cluster: RayTestCluster, tmp_path: Path
) -> None:
    """VcpuLimitExceeded in us-east-1a: us-east-1b (cheaper than us-west-2) is skipped,
    since the same regional quota would refuse it; the job runs in us-west-2a."""
    front.fail("RunInstances", "VcpuLimitExceeded", region="us-east-1", times=None)
    offers = cpu_offers("aws", "m5.large", [*EAST, ("us-west-2", "us-west-2a", 0.05)])
    world = World(tmp_path, ray_cluster, {"aws": aws_compute()}, offers)
    job = world.submit("aws")
    assert world.run(job, until=JobState.RUNNING) is JobState.RUNNING
    assert world.attempts(job) == [("us-east-1a", "NO_QUOTA"), ("us-west-2a", "RUNNING")]
    assert front.injected == [("RunInstances", "VcpuLimitExceeded")]  # a 400: not retried
    assert world.store.get_job(job).interruptions == 0
    assert any("no quota for" in r and "VcpuLimitExceeded" in r for r in world.reasons(job))
    assert any("without aws region us-east-1 " in r for r in world.reasons(job))
    assert world.store.ledger(job)[0].hours == 0  # refused outright: nothing billed
    world.close()


def test_a_lost_answer_is_retried_and_launches_one_machine(
    aws: dict[str, Any], front: FaultyEc2, ray_cluster: RayTestCluster, tmp_path: Path
) -> None:
    """RunInstances is held past the read timeout, then done: botocore tries again with
    the same ClientToken, EC2 answers with the machine it made, and there is one."""
    front.delay("RunInstances", 1.3)
    compute = aws_compute(read_timeout=1.0)
    world = World(tmp_path, ray_cluster, {"aws": compute}, cpu_offers("aws", "m5.large", EAST))
    job = world.submit("aws")
    assert world.run(job, until=JobState.RUNNING) is JobState.RUNNING
    # Two sends at least (a third, if the machine is slow, gets the same answer again).
    assert front.injected == [("RunInstances", "delay")] and front.seen["RunInstances"] >= 2
    [cluster] = world.clusters.store.all()
    assert len(ec2_machines(aws, **{f"tag:{IDEMPOTENCY_TAG}": [f"{cluster.name}-head"]})) == 1
    world.close()


def test_a_busy_cloud_while_cleaning_up_after_a_preemption_does_not_stop_the_pass(
    aws: dict[str, Any], front: FaultyEc2, ray_cluster: RayTestCluster, tmp_path: Path
) -> None:
    """The spot machine is taken back, and terminating its cluster is throttled past
    botocore's tries: the pass records the preemption and says the cloud was busy instead
    of ending with the cloud's exception (which stopped `sched controller`), and the job
    goes on to the next zone."""
    world = World(
        tmp_path, ray_cluster, {"aws": aws_compute()}, cpu_offers("aws", "m5.large", EAST)
    )
    job = world.submit("aws")
    assert world.run(job, until=JobState.RUNNING) is JobState.RUNNING
    [cluster] = world.clusters.store.all()
    [machine] = json.loads(cluster.instances_json)
    spot_terminate(machine)
    front.fail("TerminateInstances", "RequestLimitExceeded", times=3)
    warnings = world.controller.reconcile([job])  # this job's step alone, no housekeeping
    assert f"job {job}: cloud busy, left for a later pass: RequestLimitExceeded" in " ".join(
        warnings
    ), warnings
    assert world.store.get_job(job).state == JobState.PREEMPTED
    assert front.seen["TerminateInstances"] == 3
    assert world.run(job) is JobState.SUCCEEDED
    assert world.attempts(job) == [("us-east-1a", "PREEMPTED"), ("us-east-1b", "SUCCEEDED")]
    world.close()


def test_an_error_no_retry_or_zone_can_fix_fails_the_job_with_the_clouds_words(
    aws: dict[str, Any], front: FaultyEc2, ray_cluster: RayTestCluster, tmp_path: Path
) -> None:
    front.fail(
        "RunInstances", "InvalidAMIID.NotFound", message=f"The image id '[{AMI}]' does not exist"
    )
    world = World(
        tmp_path, ray_cluster, {"aws": aws_compute()}, cpu_offers("aws", "m5.large", EAST)
    )
    job = world.submit("aws")
    assert world.run(job) is JobState.FAILED
    message = world.store.get_job(job).message or ""
    assert "InvalidAMIID.NotFound: The image id '[ami-12c6146b]' does not exist" in message
    assert world.attempts(job) == [("us-east-1a", "FAILED")]
    assert front.seen["RunInstances"] == 1
    world.close()


# ---- Google --------------------------------------------------------------------------------


@pytest.fixture
def gce() -> Iterator[FakeCompute]:
    with FakeCompute(PROJECT) as f:
        for zone in ("us-central1-a", "us-central1-b"):
            f.add_zone(zone)
            f.add_machine_type(zone, "e2-standard-4", 4, 16)
        yield f


def gcp_compute(fake: FakeCompute) -> GcpCompute:
    endpoint = GoogleEndpoint(api_endpoint=fake.url, anonymous=True)
    return GcpCompute(PROJECT, endpoint, retry_deadline=15)


CENTRAL = [("us-central1", "us-central1-a", 0.03), ("us-central1", "us-central1-b", 0.031)]


def test_google_429_and_503_are_retried_within_the_call(
    gce: FakeCompute, ray_cluster: RayTestCluster, tmp_path: Path
) -> None:
    insert = gce.fail_next(
        "POST",
        INSTANCES,
        google_rest_error(429, "Rate Limit Exceeded", "RESOURCE_EXHAUSTED", "rateLimitExceeded"),
        google_rest_error(503, "The service is currently unavailable.", "UNAVAILABLE"),
    )
    get = gce.fail_next("GET", INSTANCE, google_rest_error(503, "Backend Error", "UNAVAILABLE"))
    offers = cpu_offers("gcp", "e2-standard-4", CENTRAL)
    world = World(tmp_path, ray_cluster, {"gcp": gcp_compute(gce)}, offers)
    job = world.submit("gcp")
    assert world.run(job) is JobState.SUCCEEDED
    assert (insert.used, get.used) == (2, 1)
    inserts = [r for r in gce.requests if r.method == "POST" and r.path.endswith("/instances")]
    assert len(inserts) == 3 and len({r.arg("requestId") for r in inserts}) == 1
    assert len(gce.instances) == 1
    assert world.attempts(job) == [("us-central1-a", "SUCCEEDED")]
    assert not [r for r in world.reasons(job) if "cloud busy" in r]
    world.close()


def test_a_zone_without_resources_sends_the_job_to_the_next_zone(
    gce: FakeCompute, ray_cluster: RayTestCluster, tmp_path: Path
) -> None:
    gce.exhausted_zones.add("us-central1-a")
    offers = cpu_offers("gcp", "e2-standard-4", CENTRAL)
    world = World(tmp_path, ray_cluster, {"gcp": gcp_compute(gce)}, offers)
    job = world.submit("gcp")
    assert world.run(job) is JobState.SUCCEEDED
    assert world.attempts(job) == [
        ("us-central1-a", "NO_CAPACITY"),
        ("us-central1-b", "SUCCEEDED"),
    ]
    assert any(
        "no capacity for" in r and "ZONE_RESOURCE_POOL_EXHAUSTED" in r for r in world.reasons(job)
    )
    assert [zone for zone, _ in gce.instances] == ["us-central1-b"]
    assert world.store.get_job(job).interruptions == 0
    world.close()


@pytest.fixture
def tpu() -> Iterator[FakeTpu]:
    with FakeTpu(PROJECT, polls_to_done=1) as f:
        f.add_zone("us-central2-b", {"v4-8": "2x2x1"})
        yield f


def tpu_launch(tmp_path: Path, fake: FakeTpu) -> ClusterManager:
    compute = GcpTpuCompute(
        PROJECT,
        GoogleEndpoint(api_endpoint=fake.url, anonymous=True),
        poll_interval=0.01,
        launch_wait_s=5,
        retry_deadline=5,
    )
    return ClusterManager(
        ClusterStore(Store(f"sqlite:///{tmp_path / 'sched.db'}")),
        {"gcp-tpu": compute},
        Bootstrap(ray_version="2.0.0"),
        clock=lambda: datetime.now(UTC),
        images={},
        address_template="http://127.0.0.1:1",
        boot_timeout_s=900,
        idle_stop_s=600,
    )


def tpu_attempt(n: int) -> tuple[AttemptRecord, Placement]:
    o = offering(cloud="gcp", region="us-central2", zone="us-central2-b", instance_type="tpu-v4-8")
    o = o.model_copy(
        update={"accelerators": OfferedAccelerator(name="tpu-v4-8", count=1, memory_gb=128)}
    )
    attempt = AttemptRecord(
        id=n,
        job_id=1,
        number=n,
        state="STARTING",
        cloud="gcp",
        region="us-central2",
        zone="us-central2-b",
        instance_type="tpu-v4-8",
        market="on_demand",
        price_per_hour=1.0,
        submission_id=f"s-{n}",
        created_at=datetime.now(UTC),
    )
    return attempt, placed(o)


def test_tpu_stockout_and_quota_refuse_the_launch_and_leave_no_node(
    tmp_path: Path, tpu: FakeTpu
) -> None:
    """A stockout ends the create operation with RESOURCE_EXHAUSTED (capacity); a quota
    is a 429 "Quota limit ... exceeded" at once (quota, not throttling: not retried)."""
    m = tpu_launch(tmp_path, tpu)
    tpu.stockout("us-central2-b", "v4-8")
    attempt, where = tpu_attempt(1)
    with pytest.raises(LaunchRefused) as refused:
        m.ensure(attempt, where, "sched-tpu-1", {})
    assert refused.value.fault.kind is FaultKind.CAPACITY and not refused.value.launched
    assert "no more capacity" in refused.value.fault.message
    assert tpu.nodes == {}

    tpu.stockouts.clear()
    quota = "Quota limit 'TPUV4PodPerProjectPerZoneForTPUAPI' has been exceeded. Limit: 0"
    create = tpu.fail_next("POST", NODES, google_rest_error(429, quota, "RESOURCE_EXHAUSTED"))
    attempt, where = tpu_attempt(2)
    with pytest.raises(LaunchRefused) as refused:
        m.ensure(attempt, where, "sched-tpu-2", {})
    assert refused.value.fault.kind is FaultKind.QUOTA and create.used == 1
    assert len([r for r in tpu.requests if r.method == "POST"]) == 2  # one each: no retry
    assert tpu.nodes == {}
    assert {c.state for c in m.store.all()} == {ClusterState.TERMINATED}


def test_housekeeping_is_put_off_while_ec2_throttles(
    aws: dict[str, Any], front: FaultyEc2, tmp_path: Path
) -> None:
    """The orphan sweep lists machines with DescribeInstances: throttled past botocore's
    tries, the pass says it put the sweep off instead of failing, and the next one sweeps."""
    orphan = run_tagged(aws, {"sched:cluster": "sched-ghost-9"})
    m = ClusterManager(
        ClusterStore(Store(f"sqlite:///{tmp_path / 'sched.db'}")),
        {"aws": aws_compute(max_attempts=2)},
        Bootstrap(ray_version="2.0.0"),
        clock=lambda: datetime.now(UTC),
        images={"aws": AMI},
        address_template="http://127.0.0.1:1",
        boot_timeout_s=900,
        idle_stop_s=600,
        sweep_regions={"aws": ["us-east-1"]},
    )
    front.fail("DescribeInstances", "RequestLimitExceeded", times=2)
    assert m.maintain(set()) == [
        "put off (RequestLimitExceeded: Request limit exceeded.): sweep of aws us-east-1"
    ]
    assert f"terminated orphan {orphan} (sched-ghost-9)" in m.maintain(set())
    assert front.seen["DescribeInstances"] == 3
