"""What a cloud offers: one machine shape, in one zone, in one market, at one price."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class MarketKind(StrEnum):
    SPOT = "spot"
    ON_DEMAND = "on_demand"


class PriceSource(StrEnum):
    LIVE = "live"
    SNAPSHOT = "snapshot"
    FILE = "file"
    CONFIGURED = "configured"


class OfferedAccelerator(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str = Field(description="Canonical accelerator name ('A100', 'tpu-v5p-8').")
    count: int = Field(ge=1, description="Devices per node (1 for a TPU slice).")
    memory_gb: float = Field(ge=0, description="Memory per device in GB.")


class Offering(BaseModel):
    """A priced machine shape. ``pool`` identifies where preemptions are correlated."""

    model_config = ConfigDict(frozen=True)

    cloud: str
    region: str
    zone: str
    instance_type: str
    accelerators: OfferedAccelerator | None = None
    vcpus: float = Field(gt=0)
    memory_gb: float = Field(gt=0)
    market: MarketKind
    price_per_hour: float = Field(ge=0, description="$/hour for one node.")
    interruption_rate: float = Field(
        default=0.0, ge=0, description="Expected preemptions per hour (0 for on-demand)."
    )
    interruption_source: str = Field(default="none")
    as_of: datetime
    price_source: PriceSource
    max_nodes: int | None = Field(default=None, ge=1, description="Nodes available; None: many.")

    @property
    def pool(self) -> str:
        return f"{self.cloud}/{self.zone}/{self.instance_type}/{self.market}"
