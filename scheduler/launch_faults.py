"""Why a cloud said no to a launch, and what follows: try again, go elsewhere, or give up.

- RETRY: the cloud is busy (throttled, unavailable, timed out). The client libraries retry
  these with backoff within a call; when they give up, the controller keeps the job where
  it is and tries again on its next pass. Nothing about the placement is wrong.
- CAPACITY: the zone has none of this machine now. Waiting rarely helps, another zone
  might: the pool is blocked for a while and the job is placed again.
- QUOTA: the account may not run more of it in this region (quotas are regional). Every
  zone of the region would say the same, so the cloud's region is blocked.
- FATAL: anything else (credentials, a bad image, a malformed request): the job fails with
  the cloud's own message, since no retry or other zone changes it.

Pure: it reads exceptions (their codes, statuses and reasons) and does no I/O. The client
libraries are imported only to recognise their exception classes.

Where the lists come from:

- botocore's standard retry mode (``botocore/retries/standard.py``:
  ``ThrottledRetryableChecker``, ``TransientRetryableChecker``): the throttling codes, the
  transient codes, HTTP 429/500/502/503/504, and connection/read timeouts.
- EC2 API Reference, "Error codes for the Amazon EC2 API" (``errors-overview.html``):
  capacity (server errors, HTTP 5xx) ``InsufficientInstanceCapacity``,
  ``InsufficientHostCapacity``, ``InsufficientCapacity``,
  ``InsufficientReservedInstanceCapacity``, ``UnfulfillableCapacity``; client errors
  ``SpotMaxPriceTooLow``, ``Unsupported`` (type not offered in that zone), and the limits
  ``VcpuLimitExceeded``, ``InstanceLimitExceeded``, ``MaxSpotInstanceCountExceeded``;
  ``RequestLimitExceeded`` is EC2's throttling (HTTP 503, "Troubleshooting API request
  errors", ``query-api-troubleshooting.html``). AWS ParallelCluster fails over on the same
  capacity codes (aws-parallelcluster-node ``slurm_resources.py`` ``EC2_ICE_ERROR_CODES``,
  PR #673 adding ``UnfulfillableCapacity`` and ``InsufficientCapacity``).
- ``google.api_core.retry.if_transient_error``: 500, 429, 503, connection errors; gapic's
  own retry of ``DeadlineExceeded``.
- Compute Engine, "Troubleshooting resource availability errors" (``/compute/docs/
  resource-error``): ``ZONE_RESOURCE_POOL_EXHAUSTED[_WITH_DETAILS]`` is capacity,
  unrelated to quota, and the advice is another zone; "Troubleshooting bulk VM creation":
  HTTP 403 ``quotaExceeded`` is quota, 503 ``insufficientCapacity`` is capacity, and 403
  ``rateLimitExceeded`` is the request rate ("wait ... and try your request again"), so it
  is RETRY here, not quota. Operation errors carry ``QUOTA_EXCEEDED``.
- Cloud TPU: a create operation ends with google.rpc code 8 (RESOURCE_EXHAUSTED) "There is
  no more capacity in the zone" (hashicorp/terraform-provider-google #10222), while a quota
  comes back at once as HTTP 429 "Quota limit '...' has been exceeded"
  (marin-community/marin #1612): a 429 is throttling unless it names a quota limit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from typing import Any


class FaultKind(StrEnum):
    RETRY = "retry"
    CAPACITY = "capacity"
    QUOTA = "quota"
    FATAL = "fatal"


@dataclass(frozen=True)
class LaunchFault:
    """What the cloud said (its code and first line of message) and what that means."""

    kind: FaultKind
    code: str
    message: str = ""

    def describe(self) -> str:
        return f"{self.code}: {self.message}" if self.message else self.code


AWS_RETRY = frozenset(
    {
        "RequestLimitExceeded",
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "EC2ThrottledException",
        "TooManyRequestsException",
        "ServiceUnavailable",
        "Unavailable",
        "InternalError",
        "InternalFailure",
        "RequestTimeout",
        "RequestTimeoutException",
        "PriorRequestNotComplete",
    }
)
AWS_CAPACITY = frozenset(
    {
        "InsufficientInstanceCapacity",
        "InsufficientHostCapacity",
        "InsufficientCapacity",
        "InsufficientReservedInstanceCapacity",
        "UnfulfillableCapacity",
        "SpotMaxPriceTooLow",
        "Unsupported",
    }
)
AWS_QUOTA = frozenset(
    {"VcpuLimitExceeded", "InstanceLimitExceeded", "MaxSpotInstanceCountExceeded"}
)
# Compute Engine operation error codes, REST ``errors[].reason`` and ErrorInfo reasons.
GCP_CAPACITY = frozenset(
    {
        "ZONE_RESOURCE_POOL_EXHAUSTED",
        "ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS",
        "insufficientCapacity",
        "resource_availability",
        "STOCKOUT",
    }
)
GCP_QUOTA = frozenset({"QUOTA_EXCEEDED", "quotaExceeded", "RESOURCE_QUOTA_EXCEEDED"})
GCP_RETRY = frozenset(
    {"rateLimitExceeded", "userRateLimitExceeded", "RATE_LIMIT_EXCEEDED", "backendError"}
)
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# google.rpc.Code of a finished long-running operation.
RPC_RESOURCE_EXHAUSTED = 8
RPC_RETRY = frozenset({4, 10, 13, 14})  # DEADLINE_EXCEEDED, ABORTED, INTERNAL, UNAVAILABLE
_QUOTA = re.compile(r"\bquota\b", re.IGNORECASE)


def one_line(text: str) -> str:
    """The first non-empty line, whitespace runs folded: an event reason is one line."""
    for line in str(text).splitlines():
        if line.strip():
            return " ".join(line.split())
    return ""


def classify(exc: BaseException) -> LaunchFault:
    """What the cloud's exception means for the launch; unknown exceptions are FATAL."""
    for reader in (_retry_error, _aws, _gce_operation, _tpu_operation, _google_call, _transport):
        fault = reader(exc)
        if fault is not None:
            return fault
    return LaunchFault(FaultKind.FATAL, type(exc).__name__, one_line(str(exc)))


def retryable(exc: BaseException) -> bool:
    """Predicate for the client libraries' retry machinery (google.api_core Retry)."""
    return classify(exc).kind is FaultKind.RETRY


# ---- readers: each recognises one family of exceptions, else None ----------------------------


def _retry_error(exc: BaseException) -> LaunchFault | None:
    """google.api_core's RetryError: the retry deadline passed; the last error decides."""
    if type(exc).__name__ != "RetryError" or not hasattr(exc, "cause"):
        return None
    cause = exc.cause
    if isinstance(cause, BaseException):
        return classify(cause)
    return LaunchFault(FaultKind.RETRY, "RetryError", one_line(str(exc)))


def _aws(exc: BaseException) -> LaunchFault | None:
    """botocore's ClientError: ``response["Error"]["Code"]`` and the HTTP status."""
    response: Any = getattr(exc, "response", None)
    if not isinstance(response, dict) or "Error" not in response:
        return None
    error = response.get("Error") or {}
    code = str(error.get("Code") or "")
    message = one_line(str(error.get("Message") or ""))
    status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
    if code in AWS_CAPACITY:
        return LaunchFault(FaultKind.CAPACITY, code, message)
    if code in AWS_QUOTA:
        return LaunchFault(FaultKind.QUOTA, code, message)
    if code in AWS_RETRY or status in RETRY_STATUSES:
        return LaunchFault(FaultKind.RETRY, code or str(status), message)
    return LaunchFault(FaultKind.FATAL, code or str(status), message)


def _gce_operation(exc: BaseException) -> LaunchFault | None:
    """A Compute Engine operation that finished with errors (GcpOperationError.codes)."""
    from providers.gcp_compute import GcpOperationError

    if not isinstance(exc, GcpOperationError):
        return None
    message = one_line(str(exc))
    for kind, codes in (
        (FaultKind.CAPACITY, GCP_CAPACITY),
        (FaultKind.QUOTA, GCP_QUOTA),
        (FaultKind.RETRY, GCP_RETRY),
    ):
        found = next((c for c in exc.codes if c in codes), None)
        if found is not None:
            return LaunchFault(kind, found, message)
    return LaunchFault(FaultKind.FATAL, ",".join(exc.codes) or "operation error", message)


def _tpu_operation(exc: BaseException) -> LaunchFault | None:
    """A TPU operation that finished with a google.rpc code (TpuOperationError.code)."""
    from providers.gcp_tpu_compute import TpuOperationError

    if not isinstance(exc, TpuOperationError):
        return None
    message = one_line(str(exc))
    if exc.code == RPC_RESOURCE_EXHAUSTED:
        kind = FaultKind.QUOTA if _QUOTA.search(message) else FaultKind.CAPACITY
        return LaunchFault(kind, "RESOURCE_EXHAUSTED", message)
    if exc.code in RPC_RETRY:
        return LaunchFault(FaultKind.RETRY, f"rpc code {exc.code}", message)
    return LaunchFault(FaultKind.FATAL, f"rpc code {exc.code}", message)


def _google_call(exc: BaseException) -> LaunchFault | None:
    """google.api_core's GoogleAPICallError: HTTP status, REST ``errors[].reason`` and the
    ErrorInfo reason, read in that order of precedence: reasons first, status last."""
    from google.api_core.exceptions import GoogleAPICallError

    if not isinstance(exc, GoogleAPICallError):
        return None
    status = exc.code if isinstance(exc.code, int) else None
    message = one_line(exc.message or str(exc))
    reasons = [str(e.get("reason", "")) for e in exc.errors if isinstance(e, dict)]
    if exc.reason:
        reasons.append(str(exc.reason))
    for kind, codes in (
        (FaultKind.CAPACITY, GCP_CAPACITY),
        (FaultKind.QUOTA, GCP_QUOTA),
        (FaultKind.RETRY, GCP_RETRY),
    ):
        found = next((r for r in reasons if r in codes), None)
        if found is not None:
            return LaunchFault(kind, found, message)
    name = f"{status} {type(exc).__name__}" if status else type(exc).__name__
    if status == 429 and "quota limit" in message.lower():
        return LaunchFault(FaultKind.QUOTA, name, message)
    if status in RETRY_STATUSES:
        return LaunchFault(FaultKind.RETRY, name, message)
    return LaunchFault(FaultKind.FATAL, name, message)


@cache
def _transport_errors() -> tuple[type[BaseException], ...]:
    """Connection and timeout errors of every transport the clients use."""
    import botocore.exceptions
    import google.auth.exceptions
    import requests

    return (
        botocore.exceptions.HTTPClientError,  # ReadTimeoutError, ConnectionClosedError
        botocore.exceptions.ConnectionError,  # ConnectTimeoutError, EndpointConnectionError
        requests.exceptions.ConnectionError,
        requests.exceptions.Timeout,
        requests.exceptions.ChunkedEncodingError,
        google.auth.exceptions.TransportError,
        TimeoutError,  # socket.timeout too, and our own operation waits
        ConnectionError,
    )


def _transport(exc: BaseException) -> LaunchFault | None:
    if isinstance(exc, _transport_errors()):
        return LaunchFault(FaultKind.RETRY, type(exc).__name__, one_line(str(exc)))
    return None
