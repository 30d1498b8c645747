"""One way to make an Offering in tests, with defaults that name an ordinary AWS machine."""

from __future__ import annotations

from datetime import UTC, datetime

from providers.offering import MarketKind, OfferedAccelerator, Offering, PriceSource
from scheduler.placement import CostBreakdown, Placement

AS_OF = datetime(2026, 1, 1, tzinfo=UTC)


def offering(
    *,
    cloud: str = "aws",
    region: str = "us-east-1",
    zone: str | None = None,
    instance_type: str = "m5.xlarge",
    price: float = 1.0,
    market: MarketKind = MarketKind.ON_DEMAND,
    gpu: tuple[str, int, float] | None = None,
    vcpus: float = 4,
    memory_gb: float = 16,
    rate: float = 0.0,
    max_nodes: int | None = None,
) -> Offering:
    """``zone`` defaults to the region's first ('us-east-1a'; the region itself for local)."""
    return Offering(
        cloud=cloud,
        region=region,
        zone=zone or (region if cloud == "local" else f"{region}a"),
        instance_type=instance_type,
        accelerators=None
        if gpu is None
        else OfferedAccelerator(name=gpu[0], count=gpu[1], memory_gb=gpu[2]),
        vcpus=vcpus,
        memory_gb=memory_gb,
        market=market,
        price_per_hour=price,
        interruption_rate=rate,
        as_of=AS_OF,
        price_source=PriceSource.CONFIGURED,
        max_nodes=max_nodes,
    )


def placed(o: Offering, nodes: int = 1) -> Placement:
    """A placement on ``o`` priced at its list price for an hour (what attempts store)."""
    return Placement(
        offering=o,
        accelerator=None,
        num_nodes=nodes,
        expected_hours=1.0,
        boot_hours=0.1,
        cost=CostBreakdown(compute=o.price_per_hour * nodes),
    )
