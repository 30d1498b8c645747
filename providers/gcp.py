"""GCP Compute Engine behind the provider interfaces: prices (gcp_prices) and VMs (gcp_compute).

Importing this module does not import the Google SDKs; clients are made on first use.
TPUs are a separate provider (gcp_tpu).
"""

from __future__ import annotations

from providers.gcp_clients import GoogleEndpoint
from providers.gcp_compute import (
    PREEMPTED_OPERATION,
    GcpCompute,
    GcpOperationError,
    metadata_preempted,
    sanitize_labels,
)
from providers.gcp_prices import (
    DEFAULT_SPOT_INTERRUPTION_RATE,
    GcpPriceFeed,
    canonical_accelerator,
    sku_role,
)

__all__ = [
    "DEFAULT_SPOT_INTERRUPTION_RATE",
    "PREEMPTED_OPERATION",
    "GcpCompute",
    "GcpOperationError",
    "GcpPriceFeed",
    "GoogleEndpoint",
    "canonical_accelerator",
    "gcp_compute",
    "gcp_feed",
    "metadata_preempted",
    "sanitize_labels",
    "sku_role",
]


def gcp_feed(
    project: str,
    api_endpoint: str | None = None,
    anonymous: bool = False,
    spot_interruption_rate: float = DEFAULT_SPOT_INTERRUPTION_RATE,
) -> GcpPriceFeed:
    """The live Compute Engine price feed (Settings: gcp_project, gcp_api_endpoint,
    gcp_anonymous); regions and the time are given to each ``fetch``."""
    endpoint = GoogleEndpoint(api_endpoint=api_endpoint, anonymous=anonymous)
    return GcpPriceFeed(project, endpoint, spot_interruption_rate=spot_interruption_rate)


def gcp_compute(
    project: str,
    api_endpoint: str | None = None,
    anonymous: bool = False,
    default_image: str | None = None,
) -> GcpCompute:
    endpoint = GoogleEndpoint(api_endpoint=api_endpoint, anonymous=anonymous)
    return GcpCompute(project, endpoint, default_image=default_image)
