"""EC2 machines: launch, look at, stop, and hear that AWS is taking a spot machine back.

boto3 is imported on first use so that ``sched`` starts fast; endpoints come from boto3's
own configuration (``AWS_ENDPOINT_URL``, ``AWS_ENDPOINT_URL_EC2``, profiles), which is how
tests point it at moto.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from providers.cloud_tags import ec2_tags
from providers.instances import Instance, InstanceState, LaunchRequest
from providers.node_agent import aws_instance_action
from providers.offering import MarketKind

# EC2 remembers a ClientToken, but a retry must also find machines made by a call whose
# answer was lost; the key is tagged on every machine so a launch can look before it acts.
IDEMPOTENCY_TAG = "sched:idempotency-key"

# StateReason codes EC2 uses when it reclaims spot capacity (terminate / stop behaviour).
SPOT_INTERRUPTION_CODES = frozenset(
    {"Server.SpotInstanceTermination", "Server.SpotInstanceShutdown"}
)

_STATES = {
    "pending": InstanceState.PENDING,
    "running": InstanceState.RUNNING,
    "stopping": InstanceState.STOPPING,
    "stopped": InstanceState.STOPPING,
    "shutting-down": InstanceState.STOPPING,
    "terminated": InstanceState.TERMINATED,
}
_REGION_RE = re.compile(r"[a-z]{2}(?:-[a-z]+)+-\d+")
# Bounds for the clients that launch and watch machines: a throttled or hung EC2 call gives
# up within about a minute (4 tries, at most 10 s each, 7 s of backoff) and the controller
# tries again on its next pass, instead of one pass waiting on 6 tries of up to 60 s.
LAUNCH_LIMITS: dict[str, Any] = {"max_attempts": 4, "connect_timeout": 5.0, "read_timeout": 10.0}


class AwsClients:
    """boto3 clients made on first use, one per (service, region), safe to share by threads.

    One session per object rather than boto3's module-level default session, so nothing
    global is mutated and two schedulers in one process do not share credentials by accident.

    Retries are botocore's own (standard mode: throttling and transient errors, with
    exponential backoff and jitter, a retry quota per client); ``max_attempts`` counts the
    first try (botocore's ``total_max_attempts``). The defaults are the 60 s timeouts of
    botocore and 6 tries; launching uses tighter bounds (LAUNCH_LIMITS).
    """

    def __init__(
        self,
        profile: str | None = None,
        *,
        max_attempts: int = 6,
        connect_timeout: float = 60.0,
        read_timeout: float = 60.0,
    ) -> None:
        self.profile = profile
        self.max_attempts = max_attempts
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self._session: Any = None
        self._clients: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    def client(self, service: str, region: str) -> Any:
        with self._lock:
            found = self._clients.get((service, region))
            if found is None:
                import boto3
                from botocore.config import Config

                if self._session is None:
                    self._session = boto3.session.Session(profile_name=self.profile)
                config = Config(
                    retries={"mode": "standard", "total_max_attempts": self.max_attempts},
                    connect_timeout=self.connect_timeout,
                    read_timeout=self.read_timeout,
                )
                found = self._session.client(service, region_name=region, config=config)
                self._clients[(service, region)] = found
            return found


def zone_region(zone: str) -> str:
    """``us-east-1a`` -> ``us-east-1``; also right for local zones (``us-west-2-lax-1a``)."""
    m = _REGION_RE.match(zone)
    if not m:
        raise ValueError(f"not an AWS availability zone: {zone!r}")
    return m.group(0)


def _utc(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return None


def instance_from_ec2(data: Mapping[str, Any]) -> Instance:
    """One ``Reservations[].Instances[]`` entry of DescribeInstances/RunInstances as ours."""
    tags = {t["Key"]: t.get("Value", "") for t in data.get("Tags") or []}
    reason = data.get("StateReason") or {}
    state_name = (data.get("State") or {}).get("Name", "pending")
    interrupted = reason.get("Code") in SPOT_INTERRUPTION_CODES
    state = (
        InstanceState.PREEMPTED if interrupted else _STATES.get(state_name, InstanceState.PENDING)
    )
    detail = reason.get("Message") or data.get("StateTransitionReason") or state_name
    return Instance(
        cloud="aws",
        zone=(data.get("Placement") or {}).get("AvailabilityZone", ""),
        instance_id=data["InstanceId"],
        instance_type=data.get("InstanceType", ""),
        state=state,
        spot=data.get("InstanceLifecycle") == "spot",
        name=tags.get("Name", ""),
        private_ip=data.get("PrivateIpAddress") or None,
        public_ip=data.get("PublicIpAddress") or None,
        launched_at=_utc(data.get("LaunchTime")),
        tags=tags,
        interrupted=interrupted,
        detail=detail,
    )


def run_instances_args(request: LaunchRequest) -> dict[str, Any]:
    """The RunInstances arguments for a request; ValueError says what the request lacks."""
    offering = request.offering
    if offering.cloud != "aws":
        raise ValueError(f"AwsCompute cannot launch a {offering.cloud!r} offering")
    if not request.image:
        raise ValueError("an AWS launch needs an AMI id: set the request's image (ami-...)")
    tags = ec2_tags(
        {**request.tags, "Name": request.name, IDEMPOTENCY_TAG: request.idempotency_key}
    )
    args: dict[str, Any] = {
        "ImageId": request.image,
        "InstanceType": offering.instance_type,
        "MinCount": request.count,
        "MaxCount": request.count,
        "Placement": {"AvailabilityZone": offering.zone},
        "ClientToken": request.idempotency_key,
        "TagSpecifications": [
            {"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
        ],
    }
    if offering.market is MarketKind.SPOT:
        args["InstanceMarketOptions"] = {
            "MarketType": "spot",
            "SpotOptions": {
                "SpotInstanceType": "one-time",
                "InstanceInterruptionBehavior": "terminate",
            },
        }
    if request.user_data is not None:
        args["UserData"] = request.user_data  # boto3 base64-encodes it
    return args


class InterruptionNotice(BaseModel):
    """The cloud's warning that it will take a machine back at ``at``."""

    model_config = ConfigDict(frozen=True)

    cloud: str
    action: str = Field(description="What will happen: terminate, stop or hibernate.")
    at: datetime
    detail: str = ""


class AwsCompute:
    """The Compute protocol on EC2. Missing instances are absent from ``describe``."""

    cloud = "aws"

    def __init__(self, clients: AwsClients | None = None) -> None:
        self.clients = clients or AwsClients(**LAUNCH_LIMITS)

    def _ec2(self, region: str) -> Any:
        return self.clients.client("ec2", region)

    def _find(self, region: str, filters: list[dict[str, Any]]) -> list[Instance]:
        pages = self._ec2(region).get_paginator("describe_instances").paginate(Filters=filters)
        return [
            instance_from_ec2(i)
            for page in pages
            for r in page["Reservations"]
            for i in r["Instances"]
        ]

    def launch(self, request: LaunchRequest) -> list[Instance]:
        args = run_instances_args(request)
        region = request.offering.region
        key_filter = {"Name": f"tag:{IDEMPOTENCY_TAG}", "Values": [request.idempotency_key]}
        existing = self._find(region, [key_filter])
        if existing:
            return existing
        reply = self._ec2(region).run_instances(**args)
        return [instance_from_ec2(i) for i in reply["Instances"]]

    def abandon(self, request: LaunchRequest) -> list[str]:
        """Terminate whatever a launch with this key made (a launch the cloud refused half
        way, or whose answer was lost); returns the instance ids it found."""
        region = request.offering.region
        key_filter = {"Name": f"tag:{IDEMPOTENCY_TAG}", "Values": [request.idempotency_key]}
        alive = {
            "Name": "instance-state-name",
            "Values": ["pending", "running", "stopping", "stopped"],
        }
        found = [i.instance_id for i in self._find(region, [key_filter, alive])]
        if found:
            self._ec2(region).terminate_instances(InstanceIds=found)
        return found

    def describe(self, zone: str, instance_ids: Sequence[str]) -> list[Instance]:
        if not instance_ids:  # an empty id list would mean "every instance"
            return []
        # A filter, unlike InstanceIds, does not fail the whole call for one unknown id.
        return self._find(
            zone_region(zone), [{"Name": "instance-id", "Values": list(instance_ids)}]
        )

    def managed(self, region: str, tag_key: str) -> list[Instance]:
        """Machines in the region carrying ``tag_key`` that still bill (pending or running)."""
        return self._find(
            region,
            [
                {"Name": "tag-key", "Values": [tag_key]},
                {"Name": "instance-state-name", "Values": ["pending", "running"]},
            ],
        )

    def terminate(self, zone: str, instance_ids: Sequence[str]) -> None:
        from botocore.exceptions import ClientError

        if not instance_ids:
            return
        ec2 = self._ec2(zone_region(zone))
        try:
            ec2.terminate_instances(InstanceIds=list(instance_ids))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "InvalidInstanceID.NotFound":
                raise
            known = [i.instance_id for i in self.describe(zone, instance_ids)]
            if known:
                ec2.terminate_instances(InstanceIds=known)

    def instance_action(self, metadata_base_url: str) -> InterruptionNotice | None:
        return instance_action(metadata_base_url)


def instance_action(metadata_base_url: str, timeout: float = 2.0) -> InterruptionNotice | None:
    """Run on the instance: the pending spot instance-action, or None when there is none.
    The reading itself is the node agent's, which runs on the node without sched."""
    body = aws_instance_action(metadata_base_url, timeout)
    if body is None:
        return None
    at = datetime.fromisoformat(body["time"])
    return InterruptionNotice(
        cloud="aws", action=body["action"], at=_utc(at) or at, detail=json.dumps(body)
    )
