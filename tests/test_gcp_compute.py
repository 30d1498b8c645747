"""GCP machines against the local Compute fake, over HTTP: labels and names, launching,
describing, terminating, and hearing that Google took a spot VM back."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from providers.gcp import GcpCompute, GcpOperationError, GcpPriceFeed, gcp_compute
from providers.gcp_clients import GoogleEndpoint
from providers.gcp_compute import (
    PREEMPTED_OPERATION,
    instance_body,
    instance_from_gce,
    instance_names,
    metadata_preempted,
    request_id,
    sanitize_labels,
)
from providers.instances import InstanceState, LaunchRequest
from providers.offering import (
    Offering,
)
from tests.fakes.gcp_env import IMAGE, NOW, PROJECT, gcp_fake, offering_of
from tests.fakes.google_compute import FakeCompute
from tests.fakes.http import Request

SHARED = Path(__file__).resolve().parent.parent / ".." / "shared" / "data"
LABEL_RE = re.compile(r"[a-z][a-z0-9_-]{0,62}")
VALUE_RE = re.compile(r"[a-z0-9_-]{0,63}")
GCE_NAME_RE = re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?")


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeCompute]:
    yield from gcp_fake()


@pytest.fixture(scope="module")
def endpoint(fake: FakeCompute) -> GoogleEndpoint:
    return GoogleEndpoint(api_endpoint=fake.url, anonymous=True)


@pytest.fixture(scope="module")
def offerings(endpoint: GoogleEndpoint) -> list[Offering]:
    return GcpPriceFeed(PROJECT, endpoint, spot_interruption_rate=0.07).fetch(["us-central1"], NOW)


# ---- labels, names, request ids (pure) -----------------------------------------------------


def test_sanitize_labels_examples() -> None:
    assert sanitize_labels({"Team": "ML Infra", "sched:job": "J-1", "cost.center": "42"}) == {
        "team": "ml_infra",
        "sched_job": "j-1",
        "cost_center": "42",
    }
    assert sanitize_labels({"9lives": "", "": "x"}) == {"k9lives": "", "k": "x"}
    long = sanitize_labels({"k" * 100: "v" * 100})
    assert [len(k) for k in long] == [63] and [len(v) for v in long.values()] == [63]
    clash = sanitize_labels({"a:b": "1", "a.b": "2"})
    assert len(clash) == 2 and "a_b" in clash
    with pytest.raises(ValueError, match="64 labels"):
        sanitize_labels({f"k{i}": "" for i in range(65)})


@given(st.dictionaries(st.text(max_size=80), st.text(max_size=80), max_size=64))
def test_sanitized_labels_are_valid_and_keep_every_tag(tags: dict[str, str]) -> None:
    labels = sanitize_labels(tags)
    assert len(labels) == len(tags)
    assert all(LABEL_RE.fullmatch(k) for k in labels)
    assert all(VALUE_RE.fullmatch(v) for v in labels.values())
    assert sanitize_labels(labels) == labels


def test_names_and_request_ids_follow_the_key(offerings: list[Offering]) -> None:
    base = {"offering": offerings[0], "idempotency_key": "attempt-7", "name": "Train_GPT!"}
    req = LaunchRequest(**base, count=3)
    names = instance_names(req)
    assert len(set(names)) == 3 and all(GCE_NAME_RE.fullmatch(n) for n in names)
    assert names == instance_names(LaunchRequest(**base, count=3))
    assert names[0].startswith("train-gpt-")
    other = instance_names(LaunchRequest(**{**base, "idempotency_key": "attempt-8"}))
    assert other[0] != names[0]
    long = instance_names(LaunchRequest(**{**base, "name": "9" * 200}))
    assert GCE_NAME_RE.fullmatch(long[0]) and long[0].startswith("s-9")
    assert request_id("attempt-7", 0) == request_id("attempt-7", 0)
    assert len({request_id("attempt-7", i) for i in range(3)}) == 3
    assert re.fullmatch(
        r"[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}",
        request_id("attempt-7", 0),
    )


def test_instance_body_spot_and_attached_gpu(offerings: list[Offering]) -> None:
    t4 = offering_of(offerings, "n1-standard-8", "spot", "T4", 1)
    req = LaunchRequest(offering=t4, idempotency_key="k", name="n", user_data="echo hi")
    body = instance_body(req, "n-1", image=IMAGE, spot_termination_action="STOP")
    assert body["scheduling"] == {
        "onHostMaintenance": "TERMINATE",
        "automaticRestart": False,
        "provisioningModel": "SPOT",
        "instanceTerminationAction": "STOP",
    }
    assert body["guestAccelerators"] == [
        {
            "acceleratorType": "zones/us-central1-a/acceleratorTypes/nvidia-tesla-t4",
            "acceleratorCount": 1,
        }
    ]
    assert body["metadata"] == {"items": [{"key": "startup-script", "value": "echo hi"}]}
    a2 = offering_of(offerings, "a2-highgpu-1g", "on_demand")
    od_req = LaunchRequest(offering=a2, idempotency_key="k", name="n")
    od = instance_body(od_req, "n-1", image=IMAGE)
    assert "guestAccelerators" not in od and "metadata" not in od  # A2 brings its own GPUs
    assert od["scheduling"]["provisioningModel"] == "STANDARD"
    assert "instanceTerminationAction" not in od["scheduling"]


def test_instance_from_gce_states() -> None:
    base = {"name": "vm", "id": "77", "zone": "zones/us-central1-a", "machineType": "x/n1"}
    spot = {"provisioningModel": "SPOT"}
    stopped = {**base, "status": "TERMINATED", "scheduling": spot}
    assert instance_from_gce(stopped).state is InstanceState.TERMINATED
    by_status = instance_from_gce({**stopped, "lastStopTimestamp": "2026-11-01T10:00:00Z"})
    assert by_status.state is InstanceState.PREEMPTED and by_status.interrupted
    by_op = instance_from_gce(stopped, preempted_ids={"77"})
    assert by_op.state is InstanceState.PREEMPTED and PREEMPTED_OPERATION in by_op.detail
    on_demand = {**base, "status": "TERMINATED", "lastStopTimestamp": "2026-11-01T10:00:00Z"}
    assert not instance_from_gce(on_demand, {"77"}).interrupted
    assert instance_from_gce({**base, "status": "STAGING"}).state is InstanceState.PENDING


# ---- launching, describing, terminating against the fake -----------------------------------


def _inserts(fake: FakeCompute, zone: str = "us-central1-a") -> list[Request]:
    path = f"/compute/v1/projects/{PROJECT}/zones/{zone}/instances"
    return [r for r in fake.requests if r.method == "POST" and r.path == path]


def test_spot_launch_sends_spot_scheduling_and_labels(
    fake: FakeCompute, endpoint: GoogleEndpoint, offerings: list[Offering]
) -> None:
    compute = GcpCompute(PROJECT, endpoint)
    offering = offering_of(offerings, "n1-standard-8", "spot", "T4", 1)
    before = len(_inserts(fake))
    req = LaunchRequest(
        offering=offering,
        idempotency_key="spot-1",
        name="job-spot",
        tags={"Team": "ML Infra", "sched:job": "J1"},
        user_data="#!/bin/sh\necho hi",
        image=IMAGE,
    )
    [vm] = compute.launch(req)
    [sent] = _inserts(fake)[before:]
    assert sent.body["scheduling"]["provisioningModel"] == "SPOT"
    assert sent.body["scheduling"]["instanceTerminationAction"] == "DELETE"
    assert sent.body["labels"] == {"team": "ml_infra", "sched_job": "j1"}
    assert sent.body["guestAccelerators"][0]["acceleratorType"].endswith("/nvidia-tesla-t4")
    assert sent.body["disks"][0]["initializeParams"]["sourceImage"] == IMAGE
    assert sent.arg("requestId") == request_id("spot-1", 0)
    assert (vm.state, vm.spot, vm.instance_type) == (InstanceState.RUNNING, True, "n1-standard-8")
    assert vm.tags == {"team": "ml_infra", "sched_job": "j1"} and vm.private_ip
    reads = [r for r in fake.requests if "/operations/" in r.path and r.method == "GET"]
    assert reads, "the insert operation was followed through the custom endpoint"


def test_on_demand_launch_of_count_two(
    fake: FakeCompute, endpoint: GoogleEndpoint, offerings: list[Offering]
) -> None:
    compute = gcp_compute(PROJECT, endpoint.api_endpoint, True, default_image=IMAGE)
    before = len(_inserts(fake))
    offering = offering_of(offerings, "a2-highgpu-1g", "on_demand")
    req = LaunchRequest(offering=offering, idempotency_key="od-1", name="pair", count=2)
    vms = compute.launch(req)
    sent = _inserts(fake)[before:]
    assert len({vm.name for vm in vms}) == 2
    assert {r.arg("requestId") for r in sent} == {request_id("od-1", i) for i in (0, 1)}
    assert all(r.body["scheduling"]["provisioningModel"] == "STANDARD" for r in sent)
    assert all(not vm.spot and vm.state is InstanceState.RUNNING for vm in vms)


def test_retried_launch_makes_one_instance(
    fake: FakeCompute, endpoint: GoogleEndpoint, offerings: list[Offering]
) -> None:
    compute = GcpCompute(PROJECT, endpoint, default_image=IMAGE)
    req = LaunchRequest(
        offering=offering_of(offerings, "g2-standard-4", "on_demand"),
        idempotency_key="retry-1",
        name="retry",
    )
    before = len(fake.instances)
    first = compute.launch(req)
    again = compute.launch(req)
    assert [vm.instance_id for vm in again] == [vm.instance_id for vm in first]
    assert len(fake.instances) == before + 1
    # Past Google's dedup window the requestId is forgotten: the name still protects.
    fake.by_request_id.clear()
    assert [vm.instance_id for vm in compute.launch(req)] == [vm.instance_id for vm in first]
    assert len(fake.instances) == before + 1


def test_terminate_and_describe(
    fake: FakeCompute, endpoint: GoogleEndpoint, offerings: list[Offering]
) -> None:
    compute = GcpCompute(PROJECT, endpoint, default_image=IMAGE)
    req = LaunchRequest(
        offering=offering_of(offerings, "g2-standard-4", "on_demand"),
        idempotency_key="term-1",
        name="term",
    )
    [vm] = compute.launch(req)
    zone = vm.zone
    assert compute.describe(zone, [vm.instance_id, "no-such-vm"]) == [vm]
    compute.terminate(zone, [vm.instance_id, "no-such-vm"])
    assert (zone, vm.instance_id) not in fake.instances
    assert compute.describe(zone, [vm.instance_id]) == []
    compute.terminate(zone, [vm.instance_id])  # again: nothing left, no error


def test_preemption_seen_by_status(
    fake: FakeCompute, endpoint: GoogleEndpoint, offerings: list[Offering]
) -> None:
    compute = GcpCompute(PROJECT, endpoint, default_image=IMAGE, spot_termination_action="STOP")
    req = LaunchRequest(
        offering=offering_of(offerings, "a2-highgpu-1g", "spot"),
        idempotency_key="pre-stop",
        name="pre",
    )
    [vm] = compute.launch(req)
    fake.preempt(vm.zone, vm.instance_id)
    [seen] = compute.describe(vm.zone, [vm.instance_id])
    assert seen.state is InstanceState.PREEMPTED and seen.interrupted
    assert fake.instances[(vm.zone, vm.instance_id)]["status"] == "TERMINATED"


def test_preemption_seen_by_operation_after_delete(
    fake: FakeCompute, endpoint: GoogleEndpoint, offerings: list[Offering]
) -> None:
    compute = GcpCompute(PROJECT, endpoint, default_image=IMAGE)
    req = LaunchRequest(
        offering=offering_of(offerings, "n1-standard-16", "spot", "T4", 2),
        idempotency_key="pre-delete",
        name="pre",
    )
    [vm] = compute.launch(req)
    fake.preempt(vm.zone, vm.instance_id)
    assert (vm.zone, vm.instance_id) not in fake.instances
    [gone] = compute.describe(vm.zone, [vm.instance_id])
    assert gone.state is InstanceState.PREEMPTED and gone.interrupted
    assert PREEMPTED_OPERATION in gone.detail
    assert vm.instance_id in compute.preempted(vm.zone)
    # The same name launched again is a new VM, not the preempted one.
    fake.by_request_id.clear()
    [again] = compute.launch(req)
    assert again.state is InstanceState.RUNNING and not again.interrupted


def test_capacity_error_is_raised_with_google_code(
    endpoint: GoogleEndpoint, offerings: list[Offering]
) -> None:
    exhausted = offering_of(offerings, "n1-standard-8", "spot", "T4", 1).model_copy(
        update={"zone": "us-east1-b", "region": "us-east1"}
    )
    compute = GcpCompute(PROJECT, endpoint, default_image=IMAGE)
    req = LaunchRequest(offering=exhausted, idempotency_key="full-1", name="full")
    with pytest.raises(GcpOperationError) as err:
        compute.launch(req)
    assert err.value.codes == ("ZONE_RESOURCE_POOL_EXHAUSTED",)


def test_a_slow_insert_holds_one_call_for_launch_wait_s_and_its_failure_comes_later(
    fake: FakeCompute, endpoint: GoogleEndpoint, offerings: list[Offering]
) -> None:
    """A controller pass must not sit on one launch (the old wait held it up to 600 s):
    the call returns what exists; later calls with the same key follow the same operation,
    and an error Google reports late still fails the launch (no capacity, not a loss)."""
    exhausted = offering_of(offerings, "n1-standard-8", "spot", "T4", 1).model_copy(
        update={"zone": "us-east1-b", "region": "us-east1"}
    )
    fake.polls_to_done = 3
    try:
        compute = GcpCompute(
            PROJECT, endpoint, default_image=IMAGE, launch_wait_s=0.2, poll_interval=0.5
        )
        req = LaunchRequest(offering=exhausted, idempotency_key="slow-full", name="slow-full")
        assert compute.launch(req) == []  # read once, still RUNNING: nothing exists yet
        assert compute.launch(req) == []  # the same operation (same requestId), read again
        with pytest.raises(GcpOperationError) as err:
            compute.launch(req)
        assert err.value.codes == ("ZONE_RESOURCE_POOL_EXHAUSTED",)
        posts = [r for r in fake.requests if r.method == "POST" and "slow-full" in str(r.body)]
        assert {r.arg("requestId") for r in posts} == {request_id("slow-full", 0)}
    finally:
        fake.polls_to_done = 1


def test_launch_refuses_bad_requests(endpoint: GoogleEndpoint, offerings: list[Offering]) -> None:
    compute = GcpCompute(PROJECT, endpoint)
    offering = offerings[0]
    with pytest.raises(ValueError, match="boot image"):
        compute.launch(LaunchRequest(offering=offering, idempotency_key="x", name="x"))
    aws = offering.model_copy(update={"cloud": "aws"})
    with pytest.raises(ValueError, match="'aws'"):
        compute.launch(LaunchRequest(offering=aws, idempotency_key="x", name="x", image=IMAGE))
    with pytest.raises(ValueError, match="DELETE or STOP"):
        GcpCompute(PROJECT, endpoint, spot_termination_action="HIBERNATE")


def test_metadata_preempted(fake: FakeCompute) -> None:
    fake.metadata_answer = b"FALSE"  # type: ignore[attr-defined]
    assert metadata_preempted(fake.url) is False
    fake.metadata_answer = b"TRUE"  # type: ignore[attr-defined]
    assert metadata_preempted(fake.url + "/") is True
    sent = [r for r in fake.requests if r.path.endswith("/instance/preempted")]
    assert all(r.headers.get("metadata-flavor") == "Google" for r in sent)
    fake.metadata_answer = b"<html>captive portal</html>"  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="TRUE or FALSE"):
        metadata_preempted(fake.url)
