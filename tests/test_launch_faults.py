"""Launch errors sorted by what they mean (scheduler/launch_faults.py), and what re-planning
does with a refused launch (scheduler/migration.py): table-driven, on the client libraries'
own exception objects, no cloud or fake needed. The end-to-end behaviour is in
tests/test_cloud_faults.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import requests
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)
from google.api_core.exceptions import RetryError, ServiceUnavailable, format_http_response_error

from jobs.loading import parse_spec
from providers.gcp_compute import GcpOperationError
from providers.gcp_tpu_compute import TpuOperationError
from providers.offering import MarketKind
from scheduler.constraints import Stage, StaticFilter
from scheduler.launch_faults import FaultKind, classify
from scheduler.migration import replan_context
from scheduler.records import AttemptRecord
from tests.fakes.faults import google_rest_error
from tests.offerings import offering, placed

# ---- the classifier: table-driven, on the libraries' own exception objects -----------------


def aws_error(code: str, status: int, message: str = "m") -> ClientError:
    reply = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(reply, "RunInstances")  # type: ignore[arg-type]


def google_error(status: int, message: str, name: str, reason: str = "") -> Exception:
    """Through google.api_core's own REST error parsing, from the body Google sends."""
    code, body = google_rest_error(status, message, name, reason)
    response = requests.Response()
    response.status_code = code
    return format_http_response_error(response, "POST", "https://compute/x", body)


TPU_QUOTA = "Quota limit 'TPUV6EPreemptiblePerProjectPerRegionForTPUAPI' has been exceeded."
CAPACITY_DETAIL = "A g2-standard-4 VM instance is currently unavailable in the zone"
CLASSIFIED: list[tuple[str, BaseException, FaultKind, str]] = [
    (
        "EC2 throttling",
        aws_error("RequestLimitExceeded", 503),
        FaultKind.RETRY,
        "RequestLimitExceeded",
    ),
    ("AWS Throttling", aws_error("Throttling", 400), FaultKind.RETRY, "Throttling"),
    ("EC2 unavailable", aws_error("Unavailable", 503), FaultKind.RETRY, "Unavailable"),
    ("EC2 internal", aws_error("InternalError", 500), FaultKind.RETRY, "InternalError"),
    ("unknown 502", aws_error("Whatever", 502), FaultKind.RETRY, "Whatever"),
    (
        "ICE is a 500 but capacity",
        aws_error("InsufficientInstanceCapacity", 500),
        FaultKind.CAPACITY,
        "InsufficientInstanceCapacity",
    ),
    (
        "host capacity",
        aws_error("InsufficientHostCapacity", 500),
        FaultKind.CAPACITY,
        "InsufficientHostCapacity",
    ),
    ("spot price", aws_error("SpotMaxPriceTooLow", 400), FaultKind.CAPACITY, "SpotMaxPriceTooLow"),
    ("type not in zone", aws_error("Unsupported", 400), FaultKind.CAPACITY, "Unsupported"),
    ("vCPU limit", aws_error("VcpuLimitExceeded", 400), FaultKind.QUOTA, "VcpuLimitExceeded"),
    (
        "instance limit",
        aws_error("InstanceLimitExceeded", 400),
        FaultKind.QUOTA,
        "InstanceLimitExceeded",
    ),
    (
        "spot count",
        aws_error("MaxSpotInstanceCountExceeded", 400),
        FaultKind.QUOTA,
        "MaxSpotInstanceCountExceeded",
    ),
    ("credentials", aws_error("AuthFailure", 401), FaultKind.FATAL, "AuthFailure"),
    (
        "bad image",
        aws_error("InvalidAMIID.NotFound", 400),
        FaultKind.FATAL,
        "InvalidAMIID.NotFound",
    ),
    (
        "read timeout",
        ReadTimeoutError(endpoint_url="http://ec2"),
        FaultKind.RETRY,
        "ReadTimeoutError",
    ),
    (
        "connect timeout",
        ConnectTimeoutError(endpoint_url="http://ec2"),
        FaultKind.RETRY,
        "ConnectTimeoutError",
    ),
    (
        "no endpoint",
        EndpointConnectionError(endpoint_url="http://ec2"),
        FaultKind.RETRY,
        "EndpointConnectionError",
    ),
    ("requests timeout", requests.exceptions.ReadTimeout("read"), FaultKind.RETRY, "ReadTimeout"),
    (
        "requests refused",
        requests.exceptions.ConnectionError("refused"),
        FaultKind.RETRY,
        "ConnectionError",
    ),
    ("timeout", TimeoutError("timed out"), FaultKind.RETRY, "TimeoutError"),
    (
        "Google 429",
        google_error(429, "Rate Limit Exceeded", "RESOURCE_EXHAUSTED", "rateLimitExceeded"),
        FaultKind.RETRY,
        "rateLimitExceeded",
    ),
    (
        "bare 429",
        google_error(429, "Too many requests", "RESOURCE_EXHAUSTED"),
        FaultKind.RETRY,
        "429 TooManyRequests",
    ),
    (
        "TPU quota 429",
        google_error(429, TPU_QUOTA, "RESOURCE_EXHAUSTED"),
        FaultKind.QUOTA,
        "429 TooManyRequests",
    ),
    (
        "Google 503",
        google_error(503, "The service is currently unavailable.", "UNAVAILABLE"),
        FaultKind.RETRY,
        "503 ServiceUnavailable",
    ),
    (
        "Google 500",
        google_error(500, "Internal error", "INTERNAL"),
        FaultKind.RETRY,
        "500 InternalServerError",
    ),
    (
        "Google 504",
        google_error(504, "Deadline", "DEADLINE_EXCEEDED"),
        FaultKind.RETRY,
        "504 GatewayTimeout",
    ),
    (
        "503 without capacity",
        google_error(503, "no capacity", "UNAVAILABLE", "insufficientCapacity"),
        FaultKind.CAPACITY,
        "insufficientCapacity",
    ),
    (
        "403 quota",
        google_error(
            403,
            "Quota 'CPUS' exceeded. Limit: 24.0 in region us-central1.",
            "PERMISSION_DENIED",
            "quotaExceeded",
        ),
        FaultKind.QUOTA,
        "quotaExceeded",
    ),
    (
        "403 rate is throttling",
        google_error(403, "Rate Limit Exceeded", "PERMISSION_DENIED", "rateLimitExceeded"),
        FaultKind.RETRY,
        "rateLimitExceeded",
    ),
    (
        "403 permission",
        google_error(
            403, "Required 'compute.instances.create' permission", "PERMISSION_DENIED", "forbidden"
        ),
        FaultKind.FATAL,
        "403 Forbidden",
    ),
    (
        "400 bad image",
        google_error(
            400, "Invalid value for field 'resource.disks[0]'", "INVALID_ARGUMENT", "invalid"
        ),
        FaultKind.FATAL,
        "400 BadRequest",
    ),
    (
        "GCE stockout",
        GcpOperationError(
            "insert vm",
            ["ZONE_RESOURCE_POOL_EXHAUSTED"],
            "The zone 'z' does not have enough resources",
        ),
        FaultKind.CAPACITY,
        "ZONE_RESOURCE_POOL_EXHAUSTED",
    ),
    (
        "GCE stockout, details",
        GcpOperationError(
            "insert vm", ["ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS"], CAPACITY_DETAIL
        ),
        FaultKind.CAPACITY,
        "ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS",
    ),
    (
        "GCE quota",
        GcpOperationError("insert vm", ["QUOTA_EXCEEDED"], "Quota 'NVIDIA_L4_GPUS' exceeded."),
        FaultKind.QUOTA,
        "QUOTA_EXCEEDED",
    ),
    (
        "GCE other",
        GcpOperationError("insert vm", ["RESOURCE_NOT_FOUND"], "no such image"),
        FaultKind.FATAL,
        "RESOURCE_NOT_FOUND",
    ),
    (
        "TPU stockout",
        TpuOperationError("create n", 8, 'There is no more capacity in the zone "us-central1-b"'),
        FaultKind.CAPACITY,
        "RESOURCE_EXHAUSTED",
    ),
    (
        "TPU quota op",
        TpuOperationError("create n", 8, "Quota limit 'TPUV5P' has been exceeded"),
        FaultKind.QUOTA,
        "RESOURCE_EXHAUSTED",
    ),
    (
        "TPU unavailable op",
        TpuOperationError("create n", 14, "try again"),
        FaultKind.RETRY,
        "rpc code 14",
    ),
    (
        "TPU bad argument",
        TpuOperationError("create n", 3, "bad runtime"),
        FaultKind.FATAL,
        "rpc code 3",
    ),
    (
        "retries ran out",
        RetryError("Timeout of 20.0s exceeded", ServiceUnavailable("busy")),
        FaultKind.RETRY,
        "503 ServiceUnavailable",
    ),
    ("our own bug", ValueError("an AWS launch needs an AMI id"), FaultKind.FATAL, "ValueError"),
]


@pytest.mark.parametrize(
    ("exc", "kind", "code"), [c[1:] for c in CLASSIFIED], ids=[c[0] for c in CLASSIFIED]
)
def test_launch_faults_are_classified_from_the_clouds_own_words(
    exc: BaseException, kind: FaultKind, code: str
) -> None:
    fault = classify(exc)
    assert (fault.kind, fault.code) == (kind, code)
    assert "\n" not in fault.describe()


def test_replanning_blocks_the_pool_without_capacity_and_the_region_without_quota() -> None:
    """Neither counts as an interruption; both last the cooldown."""
    now = datetime(2026, 11, 29, 12, tzinfo=UTC)
    spec = parse_spec({"run": "x", "resources": {"cpus": 1}}, source="t", now=now)

    def ended(state: str, zone: str, minutes_ago: float) -> AttemptRecord:
        o = offering(region=zone[:-1], zone=zone, instance_type="m5.large")
        return AttemptRecord(
            job_id=1,
            number=1,
            state=state,
            cloud="aws",
            region=o.region,
            zone=zone,
            instance_type="m5.large",
            market="on_demand",
            price_per_hour=0.1,
            placement_json=placed(o).model_dump_json(),
            submission_id=f"s-{zone}-{state}",
            created_at=now,
            ended_at=now - timedelta(minutes=minutes_ago),
        )

    attempts = [ended("NO_CAPACITY", "us-east-1a", 5), ended("NO_QUOTA", "us-west-2a", 5)]
    ctx = replan_context(spec, attempts, now=now, hours_left=None, cooldown_s=1800)
    assert ctx.interruptions_so_far == 0
    assert ctx.restore_from is None  # neither ran: no checkpoint is beside them
    check = StaticFilter(spec, ctx)

    def reason(cloud: str, region: str, zone: str, market: MarketKind) -> str | None:
        o = offering(cloud=cloud, region=region, zone=zone, instance_type="m5.large", market=market)
        return check.reason(Stage.BLOCKED, o) if check.check(o) is Stage.BLOCKED else None

    on_demand, spot = MarketKind.ON_DEMAND, MarketKind.SPOT
    assert reason("aws", "us-east-1", "us-east-1a", on_demand) == (
        "pool aws/us-east-1a/m5.large/on_demand is blocked:"
        " the cloud had no capacity 5 min ago, for 30 min"
    )
    assert reason("aws", "us-east-1", "us-east-1b", on_demand) is None  # capacity is per zone
    assert reason("aws", "us-west-2", "us-west-2b", spot) == (  # quota is per region
        "region aws/us-west-2 is blocked: the cloud refused for quota 5 min ago, for 30 min"
    )
    assert reason("aws", "us-west-2", "us-west-2-lax-1a", spot) is not None  # a local zone
    assert reason("gcp", "us-west2", "us-west2-a", spot) is None  # another cloud's region
    later = replan_context(
        spec, attempts, now=now + timedelta(hours=1), hours_left=None, cooldown_s=1800
    )
    assert not later.blocked_pools and not later.blocked_regions
