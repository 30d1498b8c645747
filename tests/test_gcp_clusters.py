"""Ray clusters on GCE VMs and TPU VMs, against the local Google fakes over HTTP.

The cluster manager drives the real google-cloud-compute and google-cloud-tpu clients; the
head's Jobs API is a small HTTP fake too (``/api/version``), since a fake VM runs no Ray.
The end-to-end path with a real Ray job is tested on AWS (tests/test_cloud_clusters.py);
here the point is the Google side: launch with a startup script, workers that join the
head's IP, labels, preemption seen through the API, and termination.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from jobs.lifecycle import JobState
from jobs.loading import parse_spec
from providers.gcp_clients import GoogleEndpoint
from providers.gcp_compute import GcpCompute
from providers.gcp_tpu_compute import GcpTpuCompute
from providers.instances import LaunchRequest
from providers.offering import MarketKind, OfferedAccelerator
from providers.ray_bootstrap import Bootstrap
from scheduler.cluster_store import ClusterStore
from scheduler.clusters import ClusterError, ClusterManager
from scheduler.config import load_settings
from scheduler.controller import Controller
from scheduler.placement import CostBreakdown, Placement
from scheduler.records import AttemptRecord, ClusterState
from scheduler.store import Store
from tests.fakes.google_compute import FakeCompute
from tests.fakes.google_tpu import FakeTpu
from tests.fakes.http import FakeHttpServer
from tests.offerings import offering

PROJECT = "test-project"
IMAGE = "projects/debian-cloud/global/images/family/debian-12"
T0 = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(scope="module")
def gce() -> Iterator[FakeCompute]:
    with FakeCompute(PROJECT) as f:
        f.add_zone("us-central1-a")
        f.add_machine_type("us-central1-a", "g2-standard-4", 4, 16, {"nvidia-l4": 1})
        yield f


@pytest.fixture(scope="module")
def tpu() -> Iterator[FakeTpu]:
    with FakeTpu(PROJECT, polls_to_done=2, page_size=2) as f:
        f.add_zone("us-central1-a", {"v5p-8": "2x2x1"})
        yield f


@pytest.fixture(scope="module")
def head_api() -> Iterator[FakeHttpServer]:
    """What a Ray head answers once its dashboard is up."""
    with FakeHttpServer() as server:
        server.route("GET", "/api/version", lambda r: {"ray_version": "2.x"})
        yield server


def manager(
    tmp_path: Path,
    gce: FakeCompute,
    tpu: FakeTpu,
    head_api: FakeHttpServer,
    clock: Clock,
    store: Store | None = None,
) -> ClusterManager:
    computes = {
        "gcp": GcpCompute(PROJECT, GoogleEndpoint(api_endpoint=gce.url, anonymous=True)),
        "gcp-tpu": GcpTpuCompute(
            PROJECT,
            GoogleEndpoint(api_endpoint=tpu.url, anonymous=True),
            poll_interval=0.01,
            launch_wait_s=5,
        ),
    }
    return ClusterManager(
        ClusterStore(store or Store(f"sqlite:///{tmp_path / 'sched.db'}")),
        computes,
        Bootstrap(ray_version="2.0.0"),
        clock=clock,
        images={"gcp": IMAGE},
        address_template=head_api.url,
        boot_timeout_s=900,
        idle_stop_s=600,
    )


def placement(instance_type: str, nodes: int, gpu: tuple[str, int, float] | None) -> Placement:
    o = offering(
        cloud="gcp",
        region="us-central1",
        zone="us-central1-a",
        instance_type=instance_type,
        market=MarketKind.SPOT,
        price=0.3,
        gpu=gpu,
    )
    if instance_type.startswith("tpu-"):
        accel = OfferedAccelerator(name="tpu-v5p-8", count=1, memory_gb=380)
        o = o.model_copy(update={"accelerators": accel})
    return Placement(
        offering=o,
        accelerator=None,
        num_nodes=nodes,
        expected_hours=1.0,
        boot_hours=0.1,
        cost=CostBreakdown(compute=0.3 * nodes * 1.1),
    )


def attempt(attempt_id: int) -> AttemptRecord:
    return AttemptRecord(
        id=attempt_id,
        job_id=1,
        number=1,
        state="STARTING",
        cloud="gcp",
        region="us-central1",
        zone="us-central1-a",
        instance_type="g2-standard-4",
        market="spot",
        price_per_hour=0.3,
        submission_id=f"s-{attempt_id}",
        created_at=T0,
    )


def test_gce_cluster_of_two_comes_up_and_a_preemption_is_seen(
    tmp_path: Path, gce: FakeCompute, tpu: FakeTpu, head_api: FakeHttpServer
) -> None:
    clock = Clock()
    m = manager(tmp_path, gce, tpu, head_api, clock)
    where = placement("g2-standard-4", 2, ("L4", 1, 24))
    address = m.ensure(attempt(1), where, "sched-gce-1", {"team": "ml"})
    assert address == head_api.url
    [record] = m.store.all()
    assert record.state == ClusterState.UP and record.attempt_id == 1
    vms = {name: vm for (zone, name), vm in gce.instances.items() if zone == "us-central1-a"}
    mine = {n: vm for n, vm in vms.items() if vm["labels"].get("sched_cluster") == "sched-gce-1"}
    assert len(mine) == 2
    roles = sorted(vm["labels"]["sched_role"] for vm in mine.values())
    assert roles == ["head", "worker"]
    head = next(vm for vm in mine.values() if vm["labels"]["sched_role"] == "head")
    worker = next(vm for vm in mine.values() if vm["labels"]["sched_role"] == "worker")
    assert head["labels"]["team"] == "ml"
    assert head["scheduling"]["provisioningModel"] == "SPOT"

    def script(vm: dict[str, object]) -> str:
        items = vm["metadata"]["items"]  # type: ignore[index]
        return next(i["value"] for i in items if i["key"] == "startup-script")

    head_ip = head["networkInterfaces"][0]["networkIP"]
    assert "ray start --head" in script(head) and "--cloud gcp" in script(head)
    assert f"ray start --address={head_ip}:6379" in script(worker)
    assert "RAY_JOB_STOP_WAIT_TIME_S=25" in script(worker)
    # Asking again (a restarted controller) launches nothing new.
    assert m.ensure(attempt(1), where, "sched-gce-1", {"team": "ml"}) == address
    assert len(gce.instances) == len(vms)

    assert m.check(1) is None
    gce.preempt("us-central1-a", worker["name"])
    why = m.check(1)
    assert why is not None and "preempted" in why
    m.terminate(record, f"preempted: {why}")
    assert not [n for (_, n) in gce.instances if n in mine]
    assert m.store.get(record.id or 0).state == ClusterState.TERMINATED


def test_tpu_slice_cluster_and_its_preemption(
    tmp_path: Path, gce: FakeCompute, tpu: FakeTpu, head_api: FakeHttpServer
) -> None:
    clock = Clock()
    m = manager(tmp_path, gce, tpu, head_api, clock)
    where = placement("tpu-v5p-8", 1, None)
    address = None
    for _ in range(20):  # the fake's operations take a few polls
        address = m.ensure(attempt(7), where, "sched-tpu-7", {})
        if address:
            break
    assert address == head_api.url
    [node] = [n for n in tpu.nodes.values() if n["labels"].get("sched_cluster") == "sched-tpu-7"]
    assert node["schedulingConfig"] == {"spot": True}
    assert "ray start --head" in node["metadata"]["startup-script"]
    assert m.check(7) is None
    tpu.preempt("us-central1-a", node["name"].rsplit("/", 1)[-1])
    why = m.check(7)
    assert why is not None and "preempted" in why


def test_a_cluster_not_up_in_time_is_terminated(
    tmp_path: Path, gce: FakeCompute, tpu: FakeTpu, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The head never answers: past SCHED_BOOT_TIMEOUT the machines go and the attempt
    gets a ClusterError saying why."""
    clock = Clock()
    with FakeHttpServer() as silent:  # answers 404 to /api/version: no Ray there
        m = manager(tmp_path, gce, tpu, silent, clock)
        where = placement("g2-standard-4", 1, ("L4", 1, 24))
        assert m.ensure(attempt(3), where, "sched-slow-3", {}) is None
        assert [n for (_, n), vm in gce.instances.items() if "sched-slow-3" in n]
        clock.now = T0 + timedelta(seconds=901)
        with pytest.raises(ClusterError, match="not up after 901 s"):
            m.ensure(attempt(3), where, "sched-slow-3", {})
    assert not [n for (_, n) in gce.instances if "sched-slow-3" in n]
    [record] = m.store.all()
    assert record.state == ClusterState.TERMINATED and "SCHED_BOOT_TIMEOUT" in (
        record.end_reason or ""
    )


def test_orphaned_gce_vms_are_deleted_and_others_left(
    tmp_path: Path, gce: FakeCompute, tpu: FakeTpu, head_api: FakeHttpServer
) -> None:
    """A VM labelled by sched that no cluster in the database claims is deleted by the
    sweep; a VM without the label, and one of a live cluster, are left alone."""
    clock = Clock()
    m = manager(tmp_path, gce, tpu, head_api, clock)
    m.sweep_regions = {"gcp": ["us-central1"]}
    live = m.ensure(attempt(11), placement("g2-standard-4", 1, ("L4", 1, 24)), "sched-live-11", {})
    assert live is not None
    compute = m.computes["gcp"]
    orphan = offering(
        cloud="gcp",
        region="us-central1",
        zone="us-central1-a",
        instance_type="g2-standard-4",
        gpu=("L4", 1, 24),
    )
    [ghost] = compute.launch(
        LaunchRequest(
            offering=orphan,
            idempotency_key="ghost",
            name="ghost",
            tags={"sched:cluster": "sched-ghost-1"},
            image=IMAGE,
        )
    )
    [theirs] = compute.launch(
        LaunchRequest(
            offering=orphan,
            idempotency_key="theirs",
            name="theirs",
            tags={"team": "x"},
            image=IMAGE,
        )
    )
    done = m.maintain(active_attempts={11})
    assert done == [f"terminated orphan {ghost.instance_id} (sched-ghost-1)"]
    names = {n for (_, n) in gce.instances}
    assert ghost.instance_id not in names
    assert theirs.instance_id in names
    [record] = m.store.live()
    assert record.name == "sched-live-11"
    assert all(n in names for n in json.loads(record.instances_json))


def test_a_machine_lost_while_booting_is_a_preemption_and_the_job_moves(
    tmp_path: Path, gce: FakeCompute, tpu: FakeTpu
) -> None:
    """The controller places a job on GCP spot in zone a; Google takes the head back before
    the cluster is up: that is a preemption (the pool blocked, one interruption counted),
    not a failure, and the job is placed again in zone b."""
    gce.add_zone("us-central1-b")
    gce.add_machine_type("us-central1-b", "g2-standard-4", 4, 16, {"nvidia-l4": 1})
    offers = [
        offering(
            cloud="gcp",
            region="us-central1",
            zone=f"us-central1-{z}",
            instance_type="g2-standard-4",
            market=MarketKind.SPOT,
            price=price,
            gpu=("L4", 1, 24),
        )
        for z, price in (("a", 0.30), ("b", 0.32))
    ]
    clock = Clock()
    store = Store(f"sqlite:///{tmp_path / 'sched.db'}")
    with FakeHttpServer() as silent:  # the heads never answer: the clusters stay booting
        m = manager(tmp_path, gce, tpu, silent, clock, store)
        controller = Controller(
            store,
            {},
            load_settings({"SCHED_HOME": str(tmp_path)}),
            clock,
            cloud_offerings=lambda: offers,
            clusters=m,
        )
        spec = parse_spec(
            {
                "name": "boot-lost",
                "run": "echo hi",
                "resources": {"accelerators": "L4:1"},
                "constraints": {"clouds": ["gcp"]},
            },
            source="<test>",
            now=T0,
        )
        job = store.add_job(spec, submitted_at=T0, deadline_at=None)
        assert job.id is not None
        controller.reconcile()
        assert store.get_job(job.id).state == JobState.PROVISIONING
        [booting] = m.store.live()
        assert booting.zone == "us-central1-a"
        [head_id] = json.loads(booting.instances_json)
        gce.preempt("us-central1-a", head_id)
        clock.now = T0 + timedelta(minutes=2)
        controller.reconcile()  # sees the loss: PREEMPTED
        controller.reconcile()  # re-plans without zone a
    after = store.get_job(job.id)
    assert after.interruptions == 1
    assert after.state == JobState.PROVISIONING
    attempts = store.attempts(job.id)
    assert [(a.zone, a.state) for a in attempts] == [
        ("us-central1-a", "PREEMPTED"),
        ("us-central1-b", "STARTING"),
    ]
    assert "lost while booting" in (attempts[0].message or "")
    # Two minutes of a $0.30/h machine that was asked for and lost: billed, no data moved.
    [line] = store.ledger(job.id)
    assert line.compute_usd == pytest.approx(0.30 * 2 / 60)
    assert line.outcome == "PREEMPTED"
    states = [e.to_state for e in store.events(job.id)]
    assert states[-4:] == ["PREEMPTED", "MIGRATING", "PLACED", "PROVISIONING"]
