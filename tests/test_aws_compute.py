"""AWS machines through boto3 against moto's server: launch, describe, terminate, and the
interruption signals (StateReason, the on-instance metadata notice)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from providers.aws import (
    AwsCompute,
    instance_action,
    zone_region,
)
from providers.aws_compute import IDEMPOTENCY_TAG, instance_from_ec2
from providers.instances import InstanceState, LaunchRequest
from providers.offering import MarketKind, Offering, PriceSource
from tests.fakes.aws_env import REGION, aws_environment, raw_ec2
from tests.fakes.http import FakeHttpServer, Request
from tests.fakes.imds import with_token_route

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def aws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    yield from aws_environment(tmp_path_factory)


# ---- machines ------------------------------------------------------------------------------


def offering(market: MarketKind, itype: str = "g5.xlarge", zone: str = "us-east-1b") -> Offering:
    return Offering(
        cloud="aws",
        region=zone_region(zone),
        zone=zone,
        instance_type=itype,
        vcpus=4,
        memory_gb=16,
        market=market,
        price_per_hour=1.0,
        as_of=NOW,
        price_source=PriceSource.LIVE,
    )


def request(key: str, market: MarketKind = MarketKind.SPOT, **kw: Any) -> LaunchRequest:
    return LaunchRequest(
        offering=offering(market),
        idempotency_key=key,
        name=f"sched-{key}",
        tags={"sched:job": key, "team": "ml"},
        user_data="#!/bin/sh\necho hello\n",
        image="ami-12c6146b",
        **kw,
    )


def described(aws: dict[str, Any], instance_id: str, region: str = REGION) -> dict[str, Any]:
    reply = raw_ec2(aws, region).describe_instances(InstanceIds=[instance_id])
    return reply["Reservations"][0]["Instances"][0]


def test_spot_launch_with_tags_zone_and_user_data(aws: dict[str, Any]) -> None:
    [inst] = AwsCompute(aws["clients"]).launch(request("spot-1"))
    raw = described(aws, inst.instance_id)
    assert raw["InstanceLifecycle"] == "spot" and inst.spot
    assert raw["Placement"]["AvailabilityZone"] == "us-east-1b" == inst.zone
    assert raw["InstanceType"] == "g5.xlarge" == inst.instance_type
    tags = {t["Key"]: t["Value"] for t in raw["Tags"]}
    assert tags == {
        "Name": "sched-spot-1",
        "sched:job": "spot-1",
        "team": "ml",
        IDEMPOTENCY_TAG: "spot-1",
    }
    assert inst.tags == tags and inst.name == "sched-spot-1"
    assert raw["ClientToken"] == "spot-1"
    data = raw_ec2(aws).describe_instance_attribute(
        InstanceId=inst.instance_id, Attribute="userData"
    )
    assert base64.b64decode(data["UserData"]["Value"]).decode() == "#!/bin/sh\necho hello\n"
    assert inst.state in (InstanceState.PENDING, InstanceState.RUNNING)
    assert inst.launched_at is not None and inst.launched_at.tzinfo is not None


def test_on_demand_launch_of_several(aws: dict[str, Any]) -> None:
    made = AwsCompute(aws["clients"]).launch(request("od-1", MarketKind.ON_DEMAND, count=2))
    assert len(made) == 2 and len({i.instance_id for i in made}) == 2
    for inst in made:
        raw = described(aws, inst.instance_id)
        assert "InstanceLifecycle" not in raw and not inst.spot
        assert {t["Key"]: t["Value"] for t in raw["Tags"]}["Name"] == "sched-od-1"


def test_retried_launch_returns_the_same_machines(aws: dict[str, Any]) -> None:
    compute = AwsCompute(aws["clients"])
    first = compute.launch(request("retry-1"))
    again = AwsCompute().launch(request("retry-1"))  # a new process, same attempt
    assert [i.instance_id for i in again] == [i.instance_id for i in first]
    reply = raw_ec2(aws).describe_instances(
        Filters=[{"Name": f"tag:{IDEMPOTENCY_TAG}", "Values": ["retry-1"]}]
    )
    assert sum(len(r["Instances"]) for r in reply["Reservations"]) == 1


def test_launch_refuses_requests_it_cannot_run(aws: dict[str, Any]) -> None:
    base = request("bad-1")
    with pytest.raises(ValueError, match="AMI"):
        AwsCompute(aws["clients"]).launch(base.model_copy(update={"image": None}))
    gcp = base.offering.model_copy(update={"cloud": "gcp"})
    with pytest.raises(ValueError, match="gcp"):
        AwsCompute(aws["clients"]).launch(base.model_copy(update={"offering": gcp}))
    reply = raw_ec2(aws).describe_instances(
        Filters=[{"Name": f"tag:{IDEMPOTENCY_TAG}", "Values": ["bad-1"]}]
    )
    assert reply["Reservations"] == []


def test_describe_and_terminate(aws: dict[str, Any]) -> None:
    compute = AwsCompute(aws["clients"])
    [inst] = compute.launch(request("term-1", MarketKind.ON_DEMAND))
    missing = "i-0123456789abcdef0"
    [seen] = compute.describe("us-east-1b", [inst.instance_id, missing])
    assert seen.instance_id == inst.instance_id and not seen.interrupted
    assert compute.describe("us-east-1b", []) == []
    compute.terminate("us-east-1b", [inst.instance_id, missing])
    assert described(aws, inst.instance_id)["State"]["Name"] in ("shutting-down", "terminated")
    [gone] = compute.describe("us-east-1b", [inst.instance_id])
    assert gone.state in (InstanceState.STOPPING, InstanceState.TERMINATED)
    assert not gone.interrupted
    compute.terminate("us-east-1b", [inst.instance_id])  # again: no error
    compute.terminate("us-east-1b", [])


def test_spot_interruption_is_read_from_the_state_reason(aws: dict[str, Any]) -> None:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ec2.models import ec2_backends
    from moto.ec2.models.instances import StateReason

    compute = AwsCompute(aws["clients"])
    [inst] = compute.launch(request("interrupt-1"))
    # What EC2 reports after reclaiming spot capacity, set in moto's in-process backend.
    machine = ec2_backends[DEFAULT_ACCOUNT_ID][REGION].get_instance(inst.instance_id)
    machine.terminate()
    machine.state_reason = StateReason(
        "Server.SpotInstanceTermination: Spot instance termination",
        "Server.SpotInstanceTermination",
    )
    [seen] = compute.describe(inst.zone, [inst.instance_id])
    assert seen.interrupted and seen.state is InstanceState.PREEMPTED
    assert "Spot instance termination" in seen.detail


# ---- the on-instance metadata check --------------------------------------------------------


@pytest.fixture(scope="module")
def imds_server() -> Iterator[FakeHttpServer]:
    with FakeHttpServer() as server:
        yield server


@pytest.fixture
def imds(imds_server: FakeHttpServer) -> FakeHttpServer:
    """The metadata fake with only its IMDSv2 token route; each test adds the rest."""
    return with_token_route(imds_server, b"TOKEN-1")


def test_instance_action_reports_a_pending_termination(imds: FakeHttpServer) -> None:
    def action(req: Request) -> tuple[int, Any]:
        if req.headers.get("x-aws-ec2-metadata-token") != "TOKEN-1":
            return 401, b""
        return 200, {"action": "terminate", "time": "2026-03-01T12:02:00Z"}

    imds.route("GET", "/latest/meta-data/spot/instance-action", action)
    notice = instance_action(imds.url)
    assert notice is not None
    assert (notice.cloud, notice.action) == ("aws", "terminate")
    assert notice.at == datetime(2026, 3, 1, 12, 2, tzinfo=UTC)
    assert AwsCompute().instance_action(imds.url + "/") == notice


def test_instance_action_absent_is_none(imds: FakeHttpServer) -> None:
    assert instance_action(imds.url) is None  # the fake answers 404 for unknown paths
    assert [r.path for r in imds.requests] == [
        "/latest/api/token",
        "/latest/meta-data/spot/instance-action",
    ]


def test_instance_action_surfaces_other_errors(imds: FakeHttpServer) -> None:
    import urllib.error

    imds.route("GET", "/latest/meta-data/spot/instance-action", lambda r: (500, b"boom"))
    with pytest.raises(urllib.error.HTTPError):
        instance_action(imds.url)


def test_instance_from_ec2_and_zone_region() -> None:
    raw = {
        "InstanceId": "i-1",
        "InstanceType": "p5.48xlarge",
        "State": {"Name": "shutting-down"},
        "StateReason": {"Code": "Server.SpotInstanceShutdown", "Message": "spot stop"},
        "InstanceLifecycle": "spot",
        "Placement": {"AvailabilityZone": "us-west-2-lax-1a"},
        "Tags": [{"Key": "Name", "Value": "n"}],
    }
    inst = instance_from_ec2(raw)
    assert (inst.state, inst.interrupted, inst.spot, inst.name) == (
        InstanceState.PREEMPTED,
        True,
        True,
        "n",
    )
    user = {**raw, "StateReason": {"Code": "Client.UserInitiatedShutdown", "Message": "user"}}
    assert instance_from_ec2(user).state is InstanceState.STOPPING
    assert zone_region("us-east-1a") == "us-east-1"
    assert zone_region("us-west-2-lax-1a") == "us-west-2"
    assert zone_region("us-gov-west-1b") == "us-gov-west-1"
    with pytest.raises(ValueError):
        zone_region("nowhere")
