"""The small interface every place a job can run is written against.

Modelled on Ray's NodeProvider and Karpenter's CloudProvider: the scheduler asks
for offerings and, for the chosen one, a Ray cluster address; everything cloud
specific stays behind it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from providers.offering import Offering


class Provider(Protocol):
    name: str

    def offerings(self, now: datetime) -> list[Offering]:
        """Everything this provider can run right now, priced."""
        ...

    def ensure_cluster(self, offering: Offering, num_nodes: int) -> str:
        """Bring up (or reuse) a Ray cluster for the offering; return its Jobs API address."""
        ...
