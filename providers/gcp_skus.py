"""Cloud Billing Catalog SKUs as prices: money as units + nanos, tiered rates, usage types.

The Catalog API prices everything Google sells as SKUs. A GPU VM's price is not one SKU
but a sum (vCPU SKU x cores + RAM SKU x GiB + GPU SKU x count), and spot ("Preemptible"
usage type) and on-demand are separate SKUs, so parsing is kept apart from composing.
"""

from __future__ import annotations

import math
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
    if not isinstance(value, Mapping):
        raise ValueError(f"unitPrice {_short(value)} is not an object")
    units = Decimal(_whole(value.get("units") or 0, "units"))
    nanos = Decimal(_whole(value.get("nanos") or 0, "nanos")) / Decimal(1_000_000_000)
    if units and nanos and (units < 0) != (nanos < 0):
        raise ValueError("units and nanos have different signs")
    return units + nanos


def _whole(value: Any, what: str) -> int:
    """An int64 as Google sends it: a number, or a string of digits in JSON."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"{what} {_short(value)} is not a whole number")
    return int(value)  # ValueError for "1.5" or "abc"


def _short(value: Any) -> str:
    text = repr(value) if not isinstance(value, int) or value.bit_length() < 64 else "a huge int"
    return text if len(text) <= 40 else text[:37] + "..."


def _objects(value: Any, what: str, sku_id: str) -> list[Mapping[str, Any]]:
    """A list of JSON objects, or SkuError naming the field."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
        raise SkuError(f"SKU {sku_id}: {what} is not a list of objects")
    return value


def _mapping(value: Any, what: str, sku_id: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise SkuError(f"SKU {sku_id}: {what} is not an object")
    return value


def sku_from_dict(data: Mapping[str, Any]) -> SkuPrice:
    """Parse one SKU in the REST (camelCase) shape; the latest pricingInfo entry wins.

    SkuError, naming the SKU and the field, for anything else: a field missing or of
    another type, a price that is not a finite number.
    """
    if not isinstance(data, Mapping):
        raise SkuError(f"SKU ?: {type(data).__name__}, not an object")
    sku_id = " ".join(str(data.get("skuId") or data.get("name") or "?").split())[:60]
    infos = _objects(data.get("pricingInfo"), "pricingInfo", sku_id)
    if not infos:
        raise SkuError(f"SKU {sku_id}: pricingInfo is empty")
    info = max(infos, key=lambda i: str(i.get("effectiveTime") or ""))
    expr = _mapping(info.get("pricingExpression"), "pricingExpression", sku_id)
    rates = _objects(expr.get("tieredRates"), "pricingExpression.tieredRates", sku_id)
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
        raise SkuError(f"SKU {sku_id}: tieredRates: {' '.join(str(exc).split())}") from None
    if not all(math.isfinite(float(t.usd)) and math.isfinite(float(t.start)) for t in tiers):
        raise SkuError(f"SKU {sku_id}: tieredRates: a price or start too large to use")
    currency = {
        str(_mapping(r.get("unitPrice"), "unitPrice", sku_id).get("currencyCode", "USD"))
        for r in rates
    }
    if currency - {"USD"}:
        raise SkuError(f"SKU {sku_id}: priced in {sorted(currency)}, expected USD")
    category = _mapping(data.get("category"), "category", sku_id)
    regions = data.get("serviceRegions") or []
    if not isinstance(regions, list) or not all(isinstance(r, str) for r in regions):
        raise SkuError(f"SKU {sku_id}: serviceRegions is not a list of names")
    try:
        effective = _time(info.get("effectiveTime"))
    except ValueError as exc:
        raise SkuError(f"SKU {sku_id}: effectiveTime: {' '.join(str(exc).split())}") from None
    return SkuPrice(
        sku_id=sku_id,
        description=str(data.get("description") or ""),
        resource_family=str(category.get("resourceFamily") or ""),
        resource_group=str(category.get("resourceGroup") or ""),
        usage_type=str(category.get("usageType") or ""),
        regions=tuple(regions),
        usage_unit=str(expr.get("usageUnit") or ""),
        tiers=tiers,
        effective_time=effective,
    )


def _time(value: Any) -> datetime | None:
    """effectiveTime: RFC 3339 text in REST; a datetime when a client library built it."""
    if not value:
        return None
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise ValueError(f"{_short(value)} is not a time")
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


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
