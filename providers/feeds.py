"""The interface a cloud's price source is written against, and the history it reports.

A feed answers "what does every GPU/TPU shape cost in these regions right now" as
Offerings (one per zone and market), and, where the cloud keeps one, a spot price history.
The price book (scheduler/pricebook.py) merges feeds with the shipped snapshot and caches them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from providers.offering import Offering


class SpotPricePoint(BaseModel):
    """One observed spot price: from the cloud's history API or the price book's own record."""

    model_config = ConfigDict(frozen=True)

    cloud: str
    region: str
    zone: str
    instance_type: str
    price_per_hour: float = Field(ge=0)
    at: datetime


class PriceFeed(Protocol):
    cloud: str

    def fetch(self, regions: Sequence[str], now: datetime) -> list[Offering]:
        """Every accelerator offering in these regions, per zone and market, priced now."""
        ...

    def spot_history(
        self, instance_types: Sequence[str], regions: Sequence[str], start: datetime, end: datetime
    ) -> list[SpotPricePoint]:
        """Spot prices observed in the window; empty where the cloud keeps no history."""
        ...
