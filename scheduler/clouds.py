"""Wiring: which live price feeds exist for these settings, and the price book built on them.

A feed is *configured* when its cloud's credentials or endpoint are set; only configured
feeds are refreshed automatically, so a machine with no cloud accounts never waits on a
network call and prices come from the snapshot. ``sched prices --refresh`` tries a feed
even when it is not configured, and says why it failed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from providers.commitment import Commitment
from providers.offering import Offering
from providers.snapshot import load_snapshot
from scheduler.config import Settings
from scheduler.price_cache import PriceCache
from scheduler.pricebook import FeedEntry, PriceBook
from scheduler.store import Store

if TYPE_CHECKING:
    from providers.instances import Compute
    from scheduler.audit import PriceLookup
    from scheduler.clusters import ClusterManager

Clock = Callable[[], datetime]

_AWS_VARS = ("AWS_ACCESS_KEY_ID", "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_WEB_IDENTITY_TOKEN_FILE")


def aws_configured(environ: Mapping[str, str], home: Path) -> tuple[bool, str]:
    if any(environ.get(v) for v in _AWS_VARS):
        return True, ""
    aws_dir = Path(environ.get("AWS_CONFIG_FILE") or home / ".aws" / "config").parent
    if (aws_dir / "credentials").exists() or (aws_dir / "config").exists():
        return True, ""
    return False, "no AWS credentials (set AWS_PROFILE or AWS_ACCESS_KEY_ID)"


def gcp_configured(settings: Settings) -> tuple[bool, str]:
    if settings.gcp_project:
        return True, ""
    return False, "no GCP project (set SCHED_GCP_PROJECT)"


def price_feeds(settings: Settings, environ: Mapping[str, str]) -> list[FeedEntry]:
    from providers.aws import AwsPriceFeed
    from providers.gcp import GcpPriceFeed
    from providers.gcp_clients import GoogleEndpoint
    from providers.gcp_tpu import GcpTpuPriceFeed

    home = Path(environ.get("HOME") or Path.home())
    aws_ok, aws_why = aws_configured(environ, home)
    gcp_ok, gcp_why = gcp_configured(settings)
    endpoint = GoogleEndpoint(
        api_endpoint=settings.gcp_api_endpoint, anonymous=settings.gcp_anonymous
    )
    project = settings.gcp_project or ""
    aws_regions = tuple(settings.aws_regions)
    gcp_regions = tuple(settings.gcp_regions)
    gcp_vms = GcpPriceFeed(project, endpoint)
    gcp_tpus = GcpTpuPriceFeed(project, endpoint)
    return [
        FeedEntry("aws", "aws", "vm", aws_regions, AwsPriceFeed(), aws_ok, aws_why),
        FeedEntry("gcp", "gcp", "vm", gcp_regions, gcp_vms, gcp_ok, gcp_why),
        FeedEntry("gcp-tpu", "gcp", "tpu", gcp_regions, gcp_tpus, gcp_ok, gcp_why),
    ]


def load_catalog(path: Path) -> list[Offering]:
    from providers.skypilot_catalog import load_skypilot_catalog

    return load_skypilot_catalog(path).offerings


def build_price_book(settings: Settings, store: Store, environ: Mapping[str, str]) -> PriceBook:
    return PriceBook(
        PriceCache(store),
        price_feeds(settings, environ),
        ttl=timedelta(seconds=settings.price_ttl_s),
        load_snapshot=load_snapshot,
        catalogs=settings.catalogs,
        load_catalog=load_catalog,
    )


def cluster_manager(settings: Settings, store: Store, clock: Clock) -> ClusterManager | None:
    """The cloud cluster manager for the clouds in SCHED_LAUNCH_CLOUDS (None: local only)."""
    from providers.ray_bootstrap import Bootstrap
    from scheduler.cluster_store import ClusterStore
    from scheduler.clusters import ClusterManager

    if not settings.launch_clouds:
        return None
    computes: dict[str, Compute] = {}
    sweep: dict[str, list[str]] = {}
    if "aws" in settings.launch_clouds:
        from providers.aws import AwsCompute

        computes["aws"] = AwsCompute()
        sweep["aws"] = list(settings.aws_regions)
    if "gcp" in settings.launch_clouds:
        from providers.gcp_clients import GoogleEndpoint
        from providers.gcp_compute import GcpCompute
        from providers.gcp_tpu_compute import GcpTpuCompute

        assert settings.gcp_project  # Settings refuses gcp without a project
        endpoint = GoogleEndpoint(
            api_endpoint=settings.gcp_api_endpoint, anonymous=settings.gcp_anonymous
        )
        computes["gcp"] = GcpCompute(settings.gcp_project, endpoint)
        sweep["gcp"] = list(settings.gcp_regions)
        computes["gcp-tpu"] = GcpTpuCompute(settings.gcp_project, endpoint)
    boot = Bootstrap(
        gcs_port=settings.ray_gcs_port,
        dashboard_port=settings.ray_dashboard_port,
        metadata_url={"aws": settings.aws_metadata_url, "gcp": settings.gcp_metadata_url},
    )
    return ClusterManager(
        ClusterStore(store),
        computes,
        boot,
        clock=clock,
        images={"aws": settings.aws_image, "gcp": settings.gcp_image},
        address_template=settings.cluster_address,
        boot_timeout_s=settings.cluster_boot_timeout_s,
        idle_stop_s=settings.cluster_idle_stop_s,
        sweep_regions=sweep,
    )


def auditors(
    settings: Settings, environ: Mapping[str, str], price: PriceLookup
) -> list[tuple[str, Any, list[str]]]:
    """(cloud, auditor, regions) for every cloud with credentials or a project here."""
    found: list[tuple[str, Any, list[str]]] = []
    home = Path(environ.get("HOME") or Path.home())
    if aws_configured(environ, home)[0]:
        from providers.aws_audit import AwsAudit
        from providers.aws_compute import AwsClients

        found.append(("aws", AwsAudit(AwsClients(), price=price), list(settings.aws_regions)))
    if settings.gcp_project:
        from providers.gcp_audit import GcpAudit
        from providers.gcp_clients import GoogleEndpoint

        endpoint = GoogleEndpoint(
            api_endpoint=settings.gcp_api_endpoint, anonymous=settings.gcp_anonymous
        )
        gcp = GcpAudit(settings.gcp_project, endpoint, price=price)
        found.append(("gcp", gcp, list(settings.gcp_regions)))
    return found


def live_commitments(settings: Settings, declared: Sequence[Commitment]) -> list[Commitment]:
    """Commitments read from the clouds in SCHED_COMMITMENTS_LIVE, merged with the declared
    ones: a declared entry with a live one's id overrides what the API cannot say (the
    discount; for a CUD, its $/h), and the live one replaces it in the result."""
    from providers.aws_commitments import fetch_savings_plans
    from providers.gcp_commitments import CudOverride, fetch_gcp_commitments

    by_id = {c.id: c for c in declared}
    live: list[Commitment] = []
    if "aws" in settings.commitments_live:
        from providers.aws_compute import AwsClients

        discounts = {c.id: c.discount for c in declared if c.cloud == "aws"}
        live += fetch_savings_plans(AwsClients(), discounts=discounts)
    if "gcp" in settings.commitments_live:
        from providers.gcp_clients import GoogleEndpoint

        assert settings.gcp_project  # Settings refuses gcp without a project
        endpoint = GoogleEndpoint(
            api_endpoint=settings.gcp_api_endpoint, anonymous=settings.gcp_anonymous
        )
        overrides = {
            c.id: CudOverride(hourly_commitment=c.hourly_commitment, discount=c.discount)
            for c in declared
            if c.cloud == "gcp"
        }
        live += fetch_gcp_commitments(
            settings.gcp_project, list(settings.gcp_regions), endpoint, overrides=overrides
        )
    seen = {c.id for c in live}
    return [*live, *(c for c in by_id.values() if c.id not in seen)]
