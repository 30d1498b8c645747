"""The price book's memory: live offerings, feed refresh status and spot history in the database.

Caching live prices in the same database as jobs means every ``sched`` process (CLI,
pipeline, controller) shares one fetch, and spot history accumulates across runs even
for GCP, whose API keeps none.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import delete, insert
from sqlmodel import SQLModel, col, select

from providers.feeds import SpotPricePoint
from providers.offering import (
    InterruptionSource,
    MarketKind,
    OfferedAccelerator,
    Offering,
    PriceSource,
)
from scheduler.price_records import CachedOffering, FeedStatus, SpotPriceRow
from scheduler.store import Store

_TABLES = [CachedOffering.__table__, SpotPriceRow.__table__, FeedStatus.__table__]


def _row(feed: str, o: Offering) -> dict[str, object]:
    a = o.accelerators
    return {
        "feed": feed,
        "cloud": o.cloud,
        "region": o.region,
        "zone": o.zone,
        "instance_type": o.instance_type,
        "market": o.market.value,
        "accelerator_name": a.name if a else None,
        "accelerator_count": a.count if a else None,
        "accelerator_memory_gb": a.memory_gb if a else None,
        "vcpus": o.vcpus,
        "memory_gb": o.memory_gb,
        "price_per_hour": o.price_per_hour,
        "interruption_rate": o.interruption_rate,
        "interruption_source": o.interruption_source.value,
        "as_of": o.as_of,
        "price_source": o.price_source.value,
        "source_detail": o.source_detail,
    }


def _offering(r: CachedOffering) -> Offering:
    accel = (
        OfferedAccelerator(
            name=r.accelerator_name,
            count=r.accelerator_count or 1,
            memory_gb=r.accelerator_memory_gb or 0.0,
        )
        if r.accelerator_name
        else None
    )
    return Offering(
        cloud=r.cloud,
        region=r.region,
        zone=r.zone,
        instance_type=r.instance_type,
        accelerators=accel,
        vcpus=r.vcpus,
        memory_gb=r.memory_gb,
        market=MarketKind(r.market),
        price_per_hour=r.price_per_hour,
        interruption_rate=r.interruption_rate,
        interruption_source=InterruptionSource(r.interruption_source),
        as_of=r.as_of,
        price_source=PriceSource(r.price_source),
        source_detail=r.source_detail,
    )


class PriceCache:
    def __init__(self, store: Store) -> None:
        self.store = store
        with store.writing() as session:
            SQLModel.metadata.create_all(session.connection(), tables=_TABLES)

    def replace(
        self, feed: str, offerings: Sequence[Offering], regions: Sequence[str], at: datetime
    ) -> None:
        """Swap in a feed's new offerings atomically: readers see the old set or the new one."""
        with self.store.writing() as session:
            session.execute(delete(CachedOffering).where(col(CachedOffering.feed) == feed))
            if offerings:
                session.execute(insert(CachedOffering), [_row(feed, o) for o in offerings])
            status = session.get(FeedStatus, feed) or FeedStatus(feed=feed, attempted_at=at)
            status.attempted_at = at
            status.refreshed_at = at
            status.regions_csv = ",".join(regions)
            status.offerings = len(offerings)
            status.error = None
            session.add(status)

    def record_failure(self, feed: str, at: datetime, error: str) -> None:
        """Keep the last good offerings; remember the failure so status can say why."""
        with self.store.writing() as session:
            status = session.get(FeedStatus, feed) or FeedStatus(feed=feed, attempted_at=at)
            status.attempted_at = at
            status.error = error
            session.add(status)

    def offerings(self, feeds: Iterable[str]) -> list[Offering]:
        names = list(feeds)
        if not names:
            return []
        with self.store.reading() as session:
            rows = session.exec(select(CachedOffering).where(col(CachedOffering.feed).in_(names)))
            return [_offering(r) for r in rows]

    def statuses(self) -> dict[str, FeedStatus]:
        with self.store.reading() as session:
            return {s.feed: s for s in session.exec(select(FeedStatus))}

    def add_spot_points(self, points: Sequence[SpotPricePoint]) -> int:
        """Insert points not seen before (same pool and time); returns how many were new."""
        if not points:
            return 0
        rows = [p.model_dump() for p in points]
        with self.store.writing() as session:
            conn = session.connection()
            dialect = conn.dialect.name
            if dialect == "postgresql":
                from sqlalchemy.dialects.postgresql import insert as upsert
            else:
                from sqlalchemy.dialects.sqlite import insert as upsert
            stmt = upsert(SpotPriceRow).on_conflict_do_nothing(
                index_elements=["cloud", "zone", "instance_type", "at"]
            )
            return max(conn.execute(stmt, rows).rowcount, 0)

    def spot_history(
        self, instance_type: str, since: datetime | None = None, cloud: str | None = None
    ) -> list[SpotPricePoint]:
        with self.store.reading() as session:
            query = select(SpotPriceRow).where(col(SpotPriceRow.instance_type) == instance_type)
            if since is not None:
                query = query.where(col(SpotPriceRow.at) >= since)
            if cloud is not None:
                query = query.where(col(SpotPriceRow.cloud) == cloud)
            query = query.order_by(col(SpotPriceRow.zone), col(SpotPriceRow.at))
            return [
                SpotPricePoint(
                    cloud=r.cloud,
                    region=r.region,
                    zone=r.zone,
                    instance_type=r.instance_type,
                    price_per_hour=r.price_per_hour,
                    at=r.at,
                )
                for r in session.exec(query)
            ]
