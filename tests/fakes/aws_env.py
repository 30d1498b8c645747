"""AWS for tests: moto's server behind the spot-price EC2 front, the Price List fake, and
the environment variables that point boto3 at them."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from providers.aws import AwsClients
from tests.fakes.aws_pricing import FakePriceList, SpotPriceEc2

REGION = "us-east-1"
ADVISOR_YAML = """\
as_of: 2025-11-30
source: test table
default_bucket: ">20%"
buckets:
  us-east-1:
    p4d.24xlarge: "5-10%"
    g5.xlarge: "<5%"
"""


def aws_environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """moto behind the spot-price EC2 front, the Price List fake, and env pointing at them."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    home = tmp_path_factory.mktemp("aws-home")
    try:
        yield from _served(f"http://{host}:{port}", home)
    finally:
        moto.stop()


def _served(moto_url: str, home: Path) -> Iterator[dict[str, Any]]:
    with (
        SpotPriceEc2(moto_url) as ec2_front,
        FakePriceList(page_size=2) as price_list,
        pytest.MonkeyPatch.context() as mp,
    ):
        for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
            mp.delenv(var, raising=False)
        mp.setenv("AWS_ACCESS_KEY_ID", "testing")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        mp.setenv("AWS_DEFAULT_REGION", REGION)
        mp.setenv("AWS_CONFIG_FILE", str(home / "config"))
        mp.setenv("AWS_SHARED_CREDENTIALS_FILE", str(home / "credentials"))
        mp.setenv("AWS_EC2_METADATA_DISABLED", "true")
        mp.setenv("AWS_ENDPOINT_URL", moto_url)
        mp.setenv("AWS_ENDPOINT_URL_EC2", ec2_front.url)
        mp.setenv("AWS_ENDPOINT_URL_PRICING", price_list.url)
        advisor = home / "advisor.yaml"
        advisor.write_text(ADVISOR_YAML)
        import boto3

        raw = {r: boto3.client("ec2", region_name=r) for r in (REGION, "us-west-2")}
        yield {
            "ec2_front": ec2_front,
            "price_list": price_list,
            "advisor": advisor,
            "clients": AwsClients(),
            "raw": raw,
        }


def raw_ec2(aws: dict[str, Any], region: str = REGION) -> Any:
    """A plain boto3 client, to check what our code did through EC2's own eyes."""
    return aws["raw"][region]


def run_tagged(aws: dict[str, Any], tags: dict[str, str], instance_type: str = "m5.large") -> str:
    """A machine started behind sched's back (by a person, or a lost controller)."""
    reply = raw_ec2(aws).run_instances(
        ImageId="ami-12c6146b",
        InstanceType=instance_type,
        MinCount=1,
        MaxCount=1,
        TagSpecifications=[
            {"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
        ],
    )
    return str(reply["Instances"][0]["InstanceId"])


def spot_terminate(instance_id: str, region: str = REGION) -> None:
    """What EC2 does when it reclaims spot capacity, done in moto's in-process backend
    (state terminated, StateReason Server.SpotInstanceTermination)."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ec2.models import ec2_backends
    from moto.ec2.models.instances import StateReason

    machine = ec2_backends[DEFAULT_ACCOUNT_ID][region].get_instance(instance_id)
    machine.terminate()
    machine.state_reason = StateReason(
        "Server.SpotInstanceTermination: Spot instance termination",
        "Server.SpotInstanceTermination",
    )
