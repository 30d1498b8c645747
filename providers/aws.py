"""AWS behind the provider interfaces: prices (aws_prices) and machines (aws_compute).

Importing this module does not import boto3; clients are made on first use.
"""

from __future__ import annotations

from pathlib import Path

from providers.aws_compute import (
    AwsClients,
    AwsCompute,
    InterruptionNotice,
    instance_action,
    zone_region,
)
from providers.aws_prices import DEFAULT_SPOT_ADVISOR, AwsPriceFeed, load_spot_advisor

__all__ = [
    "DEFAULT_SPOT_ADVISOR",
    "AwsClients",
    "AwsCompute",
    "AwsPriceFeed",
    "InterruptionNotice",
    "aws_compute",
    "aws_feed",
    "instance_action",
    "load_spot_advisor",
    "zone_region",
]


def aws_feed(
    advisor_path: Path = DEFAULT_SPOT_ADVISOR, clients: AwsClients | None = None
) -> AwsPriceFeed:
    """The live AWS price feed; regions and the time are given to each ``fetch``."""
    return AwsPriceFeed(advisor_path, clients=clients)


def aws_compute(clients: AwsClients | None = None) -> AwsCompute:
    return AwsCompute(clients)
