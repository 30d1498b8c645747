"""Cloud Billing Catalog SKUs as prices: money as units + nanos, tiered rates, usage types.

The Catalog API prices everything Google sells as SKUs. A GPU VM's price is not one SKU
but a sum (vCPU SKU x cores + RAM SKU x GiB + GPU SKU x count), and spot ("Preemptible"
usage type) and on-demand are separate SKUs, so parsing is kept apart from composing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from providers.gcp_clients import GoogleEndpoint
from providers.offering import MarketKind

COMPUTE_SERVICE_ID = "6F81-5844-456A"  # Compute Engine
TPU_SERVICE_ID = "E000-3F24-B8AA"  # Cloud TPU

# Usage types that are plain pay-as-you-go prices; commitments (Commit1Yr...) are issue 6.
USAGE_MARKETS = {"OnDemand": MarketKind.ON_DEMAND, "Preemptible": MarketKind.SPOT}


class SkuError(ValueError):
    """A SKU the catalog returned in a shape we cannot price; names the SKU and field."""


class Tier(BaseModel):
    model_config = ConfigDict(frozen=True)

    start: Decimal = Field(ge=0, description="Usage (in the SKU's unit) where this rate starts.")
    usd: Decimal = Field(ge=0, description="Price per unit from ``start`` on.")


class SkuPrice(BaseModel):
    """One SKU's current list price, in USD per ``usage_unit``."""

    model_config = ConfigDict(frozen=True)

    sku_id: str
    description: str
    resource_family: str = ""
    resource_group: str = ""
    usage_type: str = ""
    regions: tuple[str, ...] = ()
    usage_unit: str = Field(description="'h' for a device or core hour, 'GiBy.h' for RAM.")
    tiers: tuple[Tier, ...]
    effective_time: datetime | None = None

    @property
    def market(self) -> MarketKind | None:
        return USAGE_MARKETS.get(self.usage_type)

    @property
    def hourly_usd(self) -> float:
        """The rate past any free first tier: what one more unit-hour costs at scale."""
        paid = [t for t in self.tiers if t.usd > 0]
        return float(paid[0].usd if paid else self.tiers[0].usd)

    def cost(self, quantity: float) -> float:
        """Marginal tiers: each slice of usage is billed at the rate of the tier it falls in."""
        amount = Decimal(str(quantity))
        total = Decimal(0)
        for tier, nxt in zip(self.tiers, (*self.tiers[1:], None), strict=True):
            if amount <= tier.start:
                break
            upper = amount if nxt is None else min(amount, nxt.start)
            total += (upper - tier.start) * tier.usd
        return float(total)


def money(value: Mapping[str, Any] | None) -> Decimal:
    """Google's Money: whole ``units`` (an int64, a string in JSON) plus ``nanos`` (1e-9)."""
    if not value:
        return Decimal(0)
    units = Decimal(str(value.get("units") or 0))
    nanos = Decimal(int(value.get("nanos") or 0)) / Decimal(1_000_000_000)
    if units and nanos and (units < 0) != (nanos < 0):
        raise ValueError("units and nanos have different signs")
    return units + nanos


def sku_from_dict(data: Mapping[str, Any]) -> SkuPrice:
    """Parse one SKU in the REST (camelCase) shape; the latest pricingInfo entry wins."""
    sku_id = str(data.get("skuId") or data.get("name") or "?")
    infos = data.get("pricingInfo") or []
    if not infos:
        raise SkuError(f"SKU {sku_id}: pricingInfo is empty")
    info = max(infos, key=lambda i: str(i.get("effectiveTime") or ""))
    expr = info.get("pricingExpression") or {}
    rates = expr.get("tieredRates") or []
    if not rates:
        raise SkuError(f"SKU {sku_id}: pricingExpression.tieredRates is empty")
    try:
        tiers = tuple(
            sorted(
                (
                    Tier(
                        start=Decimal(str(r.get("startUsageAmount") or 0)),
                        usd=money(r.get("unitPrice")),
                    )
                    for r in rates
                ),
                key=lambda t: t.start,
            )
        )
    except (ValueError, ArithmeticError) as exc:
        raise SkuError(f"SKU {sku_id}: tieredRates: {exc}") from None
    currency = {(r.get("unitPrice") or {}).get("currencyCode", "USD") for r in rates}
    if currency - {"USD"}:
        raise SkuError(f"SKU {sku_id}: priced in {sorted(currency)}, expected USD")
    category = data.get("category") or {}
    effective = info.get("effectiveTime")
    return SkuPrice(
        sku_id=sku_id,
        description=str(data.get("description") or ""),
        resource_family=str(category.get("resourceFamily") or ""),
        resource_group=str(category.get("resourceGroup") or ""),
        usage_type=str(category.get("usageType") or ""),
        regions=tuple(data.get("serviceRegions") or ()),
        usage_unit=str(expr.get("usageUnit") or ""),
        tiers=tiers,
        effective_time=datetime.fromisoformat(effective.replace("Z", "+00:00"))
        if effective
        else None,
    )


def parse_skus(items: Iterable[Mapping[str, Any]]) -> tuple[list[SkuPrice], list[str]]:
    """Every SKU that parses, and one line per SKU that does not (never silently dropped)."""
    prices: list[SkuPrice] = []
    problems: list[str] = []
    for item in items:
        try:
            prices.append(sku_from_dict(item))
        except SkuError as exc:
            problems.append(str(exc))
    return prices, problems


def fetch_skus(endpoint: GoogleEndpoint, service_id: str) -> tuple[list[SkuPrice], list[str]]:
    """All SKUs of one service from the live Cloud Billing Catalog API (paged by the client)."""
    from google.cloud import billing_v1

    client = billing_v1.CloudCatalogClient(**endpoint.client_kwargs())
    pages = client.list_skus(parent=f"services/{service_id}")
    return parse_skus(
        billing_v1.Sku.to_dict(sku, preserving_proto_field_name=False) for sku in pages
    )
