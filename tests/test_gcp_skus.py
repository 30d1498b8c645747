"""Cloud Billing Catalog SKU parsing, and fetching SKUs over REST from a local fake."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from providers.gcp_clients import GoogleEndpoint
from providers.gcp_skus import (
    COMPUTE_SERVICE_ID,
    SkuError,
    fetch_skus,
    money,
    parse_skus,
    sku_from_dict,
)
from providers.offering import MarketKind
from tests.fakes.http import FakeHttpServer


def sku(
    sku_id: str = "AB12-CD34-EF56",
    description: str = "Nvidia Tesla A100 GPU running in Americas",
    usage_type: str = "OnDemand",
    regions: tuple[str, ...] = ("us-central1",),
    tiers: list[tuple[float, str, int]] | None = None,
    unit: str = "h",
) -> dict[str, Any]:
    rates = tiers if tiers is not None else [(0, "2", 933908000)]
    return {
        "name": f"services/{COMPUTE_SERVICE_ID}/skus/{sku_id}",
        "skuId": sku_id,
        "description": description,
        "category": {
            "serviceDisplayName": "Compute Engine",
            "resourceFamily": "Compute",
            "resourceGroup": "GPU",
            "usageType": usage_type,
        },
        "serviceRegions": list(regions),
        "pricingInfo": [
            {
                "effectiveTime": "2026-11-01T08:00:00.000Z",
                "pricingExpression": {
                    "usageUnit": unit,
                    "tieredRates": [
                        {
                            "startUsageAmount": start,
                            "unitPrice": {"currencyCode": "USD", "units": units, "nanos": nanos},
                        }
                        for start, units, nanos in rates
                    ],
                },
            }
        ],
    }


def test_units_plus_nanos() -> None:
    assert money({"units": "2", "nanos": 933908000}) == Decimal("2.933908")
    assert money({"nanos": 35000000}) == Decimal("0.035")
    assert money({"units": "1"}) == 1
    assert money(None) == 0
    with pytest.raises(ValueError, match="signs"):
        money({"units": "1", "nanos": -5})


def test_sku_fields_and_market() -> None:
    price = sku_from_dict(sku(usage_type="Preemptible", regions=("us-central1", "us-east1")))
    assert price.sku_id == "AB12-CD34-EF56"
    assert price.resource_group == "GPU"
    assert price.regions == ("us-central1", "us-east1")
    assert price.market is MarketKind.SPOT
    assert price.hourly_usd == pytest.approx(2.933908)
    assert price.effective_time is not None and price.effective_time.year == 2026
    assert sku_from_dict(sku()).market is MarketKind.ON_DEMAND
    assert sku_from_dict(sku(usage_type="Commit1Yr")).market is None


def test_tiers_are_marginal() -> None:
    # 0-1 TiB free, then $0.12, and from 10 TiB $0.11: a GCP internet-egress-like shape.
    price = sku_from_dict(
        sku(unit="GiBy", tiers=[(10240, "0", 110000000), (0, "0", 0), (1024, "0", 120000000)])
    )
    assert [t.start for t in price.tiers] == [0, 1024, 10240]
    assert price.cost(500) == 0
    assert price.cost(2048) == pytest.approx(1024 * 0.12)
    assert price.cost(20480) == pytest.approx(9216 * 0.12 + 10240 * 0.11)
    assert price.hourly_usd == pytest.approx(0.12)


@given(st.floats(0, 1e6), st.floats(0, 1e6))
def test_tiered_cost_never_falls_as_usage_grows(a: float, b: float) -> None:
    price = sku_from_dict(
        sku(tiers=[(0, "0", 0), (100, "0", 120000000), (1000, "0", 80000000)], unit="GiBy")
    )
    low, high = sorted((a, b))
    assert price.cost(low) <= price.cost(high) + 1e-9


def test_latest_pricing_info_wins() -> None:
    data = sku()
    old = {
        "effectiveTime": "2025-01-01T00:00:00Z",
        "pricingExpression": {
            "usageUnit": "h",
            "tieredRates": [{"unitPrice": {"currencyCode": "USD", "units": "9"}}],
        },
    }
    data["pricingInfo"].insert(0, old)
    assert sku_from_dict(data).hourly_usd == pytest.approx(2.933908)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(pricingInfo=[]), "pricingInfo is empty"),
        (lambda d: d["pricingInfo"][0]["pricingExpression"].update(tieredRates=[]), "tieredRates"),
        (
            lambda d: d["pricingInfo"][0]["pricingExpression"]["tieredRates"][0][
                "unitPrice"
            ].update(currencyCode="EUR"),
            "EUR",
        ),
    ],
)
def test_unpriceable_sku_is_reported_not_dropped(mutate: Any, message: str) -> None:
    bad = sku(sku_id="BAD-1")
    mutate(bad)
    with pytest.raises(SkuError, match=message):
        sku_from_dict(bad)
    prices, problems = parse_skus([sku(), bad])
    assert len(prices) == 1
    assert len(problems) == 1 and problems[0].startswith("SKU BAD-1:")


def test_fetch_over_rest_follows_pages() -> None:
    pages = {
        "": {"skus": [sku(sku_id="1")], "nextPageToken": "p2"},
        "p2": {"skus": [sku(sku_id="2", usage_type="Preemptible")]},
    }
    with FakeHttpServer() as fake:
        fake.route(
            "GET",
            r"/v1/services/(?P<service>[^/]+)/skus",
            lambda req: pages[req.arg("pageToken", "") or ""],
        )
        prices, problems = fetch_skus(
            GoogleEndpoint(api_endpoint=fake.url, anonymous=True), COMPUTE_SERVICE_ID
        )
        paths = {r.path for r in fake.requests}
    assert problems == []
    assert [p.sku_id for p in prices] == ["1", "2"]
    assert [p.market for p in prices] == [MarketKind.ON_DEMAND, MarketKind.SPOT]
    assert paths == {f"/v1/services/{COMPUTE_SERVICE_ID}/skus"}
