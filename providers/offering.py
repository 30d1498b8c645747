"""What a cloud offers: one machine shape, in one zone, in one market, at one price."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class MarketKind(StrEnum):
    SPOT = "spot"
    ON_DEMAND = "on_demand"


class PriceSource(StrEnum):
    """Where a price came from, so every figure can say how fresh and how trustworthy it is."""

    LIVE = "live"
    SNAPSHOT = "snapshot"
    FILE = "file"
    CONFIGURED = "configured"


class InterruptionSource(StrEnum):
    """Where an interruption rate came from; observed history beats a published bucket."""

    NONE = "none"
    PUBLISHED_BUCKET = "published_bucket"
    OBSERVED_HISTORY = "observed_history"
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
    interruption_source: InterruptionSource = Field(default=InterruptionSource.NONE)
    as_of: datetime = Field(description="When the price was observed (not when it was loaded).")
    price_source: PriceSource
    source_detail: str = Field(
        default="", description="Which API, snapshot or file the price came from."
    )
    max_nodes: int | None = Field(default=None, ge=1, description="Nodes available; None: many.")

    @property
    def shape(self) -> str:
        """The machine as a user would name it. GCP attaches GPUs to generic N1 hosts, so
        an n1-standard-8 with a T4 and one with a V100 are different shapes."""
        a = self.accelerators
        if a is None or not cloud_attaches_gpus(self.cloud, self.instance_type):
            return self.instance_type
        return f"{self.instance_type}+{a.name}:{a.count}"

    @property
    def pool(self) -> str:
        """Capacity that is preempted together: one shape, in one zone, in one market."""
        shape = self.shape
        return f"{self.cloud}/{self.zone}/{shape}/{self.market}"


def cloud_attaches_gpus(cloud: str, instance_type: str) -> bool:
    """N1 is the GCP family whose GPUs are chosen at launch rather than built in."""
    return cloud == "gcp" and instance_type.startswith("n1-")
