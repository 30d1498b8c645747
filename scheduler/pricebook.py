"""The price book: one answer to "what does every offering cost", with how fresh each number is.

Three layers, best first: live prices fetched from the clouds' APIs (cached in the
database, refreshed when older than the TTL), SkyPilot-format catalog files the user
brings, and the snapshot shipped in configs/. A live feed that answered for a region
replaces the lower layers there entirely: if AWS no longer sells a type in a zone, the
snapshot must not keep offering it. Merging is pure; fetching and caching are at the edge.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel

from providers.feeds import PriceFeed, SpotPricePoint
from providers.offering import MarketKind, Offering, PriceSource
from scheduler.price_cache import PriceCache

log = logging.getLogger(__name__)

HISTORY_WINDOW = timedelta(days=7)


class Refresh(StrEnum):
    AUTO = "auto"  # fetch feeds that are configured and older than the TTL
    FORCE = "force"  # fetch the selected feeds now, configured or not
    NEVER = "never"  # cached, catalog and snapshot prices only


def offering_kind(o: Offering) -> str:
    """Feeds are split by kind: GCP's TPU API is separate from Compute Engine's."""
    return "tpu" if o.accelerators and o.accelerators.name.startswith("tpu-") else "vm"


@dataclass(frozen=True)
class FeedEntry:
    """A live feed with what it covers; ``configured`` says whether auto refresh may use it."""

    name: str
    cloud: str
    kind: str
    regions: tuple[str, ...]
    feed: PriceFeed
    configured: bool
    why_not: str = ""


class FeedReport(BaseModel):
    feed: str
    ok: bool
    offerings: int = 0
    spot_points: int = 0
    error: str | None = None


class Coverage(BaseModel):
    """What a successful live fetch covered, kept so merging can supersede older layers."""

    cloud: str
    kind: str
    regions: list[str]


class PriceView(BaseModel):
    offerings: list[Offering]
    notes: list[str]
    reports: list[FeedReport]


def merge(
    snapshot: Iterable[Offering],
    catalogs: Iterable[Offering],
    live: Iterable[tuple[Coverage, Sequence[Offering]]],
) -> list[Offering]:
    """Layer live over catalog over snapshot.

    A catalog file replaces the snapshot for its whole cloud (it is a full catalog);
    a live feed replaces every lower layer for its cloud, kind and regions.
    """
    catalog_list = list(catalogs)
    catalog_clouds = {o.cloud for o in catalog_list}
    merged = [o for o in snapshot if o.cloud not in catalog_clouds] + catalog_list
    live_list = list(live)
    covered = {(c.cloud, c.kind, region) for c, offerings in live_list for region in c.regions}
    merged = [o for o in merged if (o.cloud, offering_kind(o), o.region) not in covered]
    for _, offerings in live_list:
        merged.extend(offerings)
    return merged


def spot_points(offerings: Iterable[Offering]) -> list[SpotPricePoint]:
    """Our own record of spot prices: the only history there is for clouds that keep none.

    Recorded under the offering's shape, so GPUs attached to one N1 host type keep
    separate histories (``--history n1-standard-8+T4:1``).
    """
    return [
        SpotPricePoint(
            cloud=o.cloud,
            region=o.region,
            zone=o.zone,
            instance_type=o.shape,
            price_per_hour=o.price_per_hour,
            at=o.as_of,
        )
        for o in offerings
        if o.market is MarketKind.SPOT
    ]


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".strip().rstrip(":")


def _date_span(offerings: Sequence[Offering]) -> str:
    days = sorted({o.as_of.date().isoformat() for o in offerings})
    return days[0] if len(days) == 1 else f"{days[0]}..{days[-1]}"


class PriceBook:
    def __init__(
        self,
        cache: PriceCache,
        feeds: Sequence[FeedEntry],
        *,
        ttl: timedelta,
        load_snapshot: Callable[[], list[Offering]],
        catalogs: Sequence[Path] = (),
        load_catalog: Callable[[Path], list[Offering]] | None = None,
    ) -> None:
        self.cache = cache
        self.feeds = list(feeds)
        self.ttl = ttl
        self._load_snapshot = load_snapshot
        self.catalogs = list(catalogs)
        self._load_catalog = load_catalog

    def _due(self, entry: FeedEntry, now: datetime) -> bool:
        status = self.cache.statuses().get(entry.name)
        if status is None:
            return True
        if status.regions_csv != ",".join(entry.regions) and status.error is None:
            return True
        return now - status.attempted_at >= self.ttl

    def refresh(
        self, now: datetime, mode: Refresh = Refresh.AUTO, clouds: Sequence[str] | None = None
    ) -> list[FeedReport]:
        """Fetch the feeds the mode selects; a failed feed keeps its last good prices."""
        if mode is Refresh.NEVER:
            return []
        reports = []
        for entry in self.feeds:
            if clouds and entry.cloud not in clouds:
                continue
            if mode is Refresh.AUTO and not (entry.configured and self._due(entry, now)):
                continue
            reports.append(self._fetch(entry, now))
        return reports

    def _fetch(self, entry: FeedEntry, now: datetime) -> FeedReport:
        try:
            offerings = entry.feed.fetch(entry.regions, now)
            types = sorted({o.instance_type for o in offerings if o.market is MarketKind.SPOT})
            history = (
                entry.feed.spot_history(types, entry.regions, now - HISTORY_WINDOW, now)
                if types
                else []
            )
        except Exception as exc:  # any cloud/SDK/network failure: report it, keep old prices
            error = _one_line(exc)
            log.debug("feed %s failed", entry.name, exc_info=True)
            self.cache.record_failure(entry.name, now, error)
            return FeedReport(feed=entry.name, ok=False, error=error)
        self.cache.replace(entry.name, offerings, entry.regions, now)
        added = self.cache.add_spot_points([*history, *spot_points(offerings)])
        return FeedReport(feed=entry.name, ok=True, offerings=len(offerings), spot_points=added)

    def view(
        self, now: datetime, mode: Refresh = Refresh.AUTO, clouds: Sequence[str] | None = None
    ) -> PriceView:
        reports = self.refresh(now, mode, clouds)
        statuses = self.cache.statuses()
        live: list[tuple[Coverage, Sequence[Offering]]] = []
        for entry in self.feeds:
            status = statuses.get(entry.name)
            if status is None or status.refreshed_at is None:
                continue
            regions = [r for r in status.regions_csv.split(",") if r]
            live.append(
                (
                    Coverage(cloud=entry.cloud, kind=entry.kind, regions=regions),
                    self.cache.offerings([entry.name]),
                )
            )
        catalog_offerings: list[Offering] = []
        if self._load_catalog is not None:
            for path in self.catalogs:
                catalog_offerings.extend(self._load_catalog(path))
        snapshot = self._load_snapshot()
        offerings = merge(snapshot, catalog_offerings, live)
        return PriceView(
            offerings=offerings, notes=self._notes(offerings, statuses, now), reports=reports
        )

    def _notes(self, offerings: Sequence[Offering], statuses: dict, now: datetime) -> list[str]:
        """One line per cloud saying where its prices came from and how old they are."""
        notes = []
        for cloud in sorted({o.cloud for o in offerings} | {e.cloud for e in self.feeds}):
            mine = [o for o in offerings if o.cloud == cloud]
            parts = []
            for source in (PriceSource.LIVE, PriceSource.FILE, PriceSource.SNAPSHOT):
                some = [o for o in mine if o.price_source is source]
                if not some:
                    continue
                if source is PriceSource.LIVE:
                    age = now - max(o.as_of for o in some)
                    parts.append(f"live prices ({len(some)}), newest {_age(age)} old")
                elif source is PriceSource.FILE:
                    parts.append(f"catalog file prices ({len(some)}) from {_date_span(some)}")
                else:
                    parts.append(f"snapshot from {_date_span(some)} ({len(some)})")
            for entry in (e for e in self.feeds if e.cloud == cloud):
                status = statuses.get(entry.name)
                if status is not None and status.error:
                    parts.append(f"{entry.name} live refresh failed: {status.error}")
                elif status is None and not entry.configured and entry.why_not:
                    parts.append(f"{entry.name} live prices off: {entry.why_not}")
            if parts:
                notes.append(f"{cloud}: " + "; ".join(parts))
        return notes


def _age(delta: timedelta) -> str:
    seconds = max(delta.total_seconds(), 0)
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    if seconds < 172800:
        return f"{seconds / 3600:.0f}h"
    return f"{seconds / 86400:.0f}d"
