"""Database tables of the price book: cached live offerings, spot price history, feed status."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from scheduler.records import UTCDateTime


class CachedOffering(SQLModel, table=True):
    """One live offering as last fetched; a feed's rows are replaced together on refresh."""

    __tablename__ = "price_offering"

    id: int | None = Field(default=None, primary_key=True)
    feed: str = Field(index=True)
    cloud: str
    region: str
    zone: str
    instance_type: str = Field(index=True)
    market: str
    accelerator_name: str | None = Field(default=None, index=True)
    accelerator_count: int | None = None
    accelerator_memory_gb: float | None = None
    vcpus: float
    memory_gb: float
    price_per_hour: float
    interruption_rate: float
    interruption_source: str
    as_of: datetime = Field(sa_type=UTCDateTime)
    price_source: str
    source_detail: str = ""


class SpotPriceRow(SQLModel, table=True):
    """Every spot price observed: from a cloud's history API or from our own fetches."""

    __tablename__ = "spot_price"
    __table_args__ = (UniqueConstraint("cloud", "zone", "instance_type", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    cloud: str
    region: str
    zone: str
    instance_type: str = Field(index=True)
    price_per_hour: float
    at: datetime = Field(sa_type=UTCDateTime, index=True)


class FeedStatus(SQLModel, table=True):
    """The last refresh attempt of one live feed, successful or not, with its regions."""

    __tablename__ = "price_feed"

    feed: str = Field(primary_key=True)
    attempted_at: datetime = Field(sa_type=UTCDateTime)
    refreshed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    regions_csv: str = ""
    offerings: int = 0
    error: str | None = None
