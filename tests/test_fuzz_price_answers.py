"""Fuzzing the clouds' price answers (issue 8, bad input): AWS price list products,
instance types and spot history; GCP billing SKUs and machine types.

Each is read item by item: an item in a shape we cannot read fails with one line naming the
API item (never a KeyError, TypeError or a float() traceback), and a feed skips and counts
it (one warning per fetch), so the rest of a region's prices still count.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from providers.aws_prices import (
    AwsFormatError,
    AwsPriceFeed,
    OnDemandPrice,
    instance_type_info,
    parse_price_list_item,
    spot_point,
)
from providers.gcp_prices import (
    GcpFormatError,
    MachineShape,
    ZoneCatalog,
    build_offerings,
    machine_shape,
    rate_book,
)
from providers.gcp_skus import SkuError, SkuPrice, parse_skus, sku_from_dict
from tests.damage import damaged, fuzz, one_line
from tests.fakes.aws_pricing import ec2_product
from tests.fakes.google_compute import us_central1_skus
from tests.fakes.google_tpu import tpu_skus

NOW = datetime(2026, 6, 1, tzinfo=UTC)


# ---- AWS answers ----------------------------------------------------------------------------

GPU_TYPE = {
    "InstanceType": "p4d.24xlarge",
    "VCpuInfo": {"DefaultVCpus": 96},
    "MemoryInfo": {"SizeInMiB": 1179648},
    "GpuInfo": {
        "Gpus": [
            {
                "Name": "A100",
                "Manufacturer": "NVIDIA",
                "Count": 8,
                "MemoryInfo": {"SizeInMiB": 40960},
            }
        ]
    },
}
SPOT_ITEM = {
    "AvailabilityZone": "us-east-1a",
    "InstanceType": "p4d.24xlarge",
    "ProductDescription": "Linux/UNIX",
    "SpotPrice": "9.100000",
    "Timestamp": datetime(2026, 5, 1, tzinfo=UTC),
}


def _reads_or_names_the_item(parse: Callable[[], Any], api: str) -> Any:
    try:
        return parse()
    except AwsFormatError as exc:
        one_line(str(exc), api)
        return exc


@fuzz(300)
@given(item=damaged(ec2_product("p4d.24xlarge", "us-east-1", 32.77)))
@example(item={**ec2_product("g5.xlarge", "us-east-1", 1.0), "terms": {"OnDemand": []}})
def test_price_list_products(item: dict[str, Any]) -> None:
    for given_as in (item, json.dumps(item)):
        got = _reads_or_names_the_item(lambda g=given_as: parse_price_list_item(g), "GetProducts")
        if isinstance(got, OnDemandPrice):
            assert math.isfinite(got.usd_per_hour) and got.usd_per_hour > 0


@fuzz(200)
@given(entry=damaged(GPU_TYPE))
def test_describe_instance_types_entries(entry: dict[str, Any]) -> None:
    info = _reads_or_names_the_item(lambda: instance_type_info(entry), "DescribeInstanceTypes")
    if info is not None and not isinstance(info, AwsFormatError):
        assert info.vcpus > 0 and info.memory_gb > 0 and info.accelerator.count >= 1


@fuzz(200)
@given(item=damaged(SPOT_ITEM))
def test_spot_price_history_items(item: dict[str, Any]) -> None:
    point = _reads_or_names_the_item(
        lambda: spot_point("us-east-1", item), "DescribeSpotPriceHistory"
    )
    if not isinstance(point, AwsFormatError):
        assert math.isfinite(point.price_per_hour) and point.at.tzinfo is not None


class _Pages:
    """A boto3 client with one paginator answering fixed pages."""

    def __init__(self, pages: list[dict[str, Any]]) -> None:
        self.pages = pages

    def client(self, service: str, region: str) -> _Pages:
        return self

    def get_paginator(self, name: str) -> _Pages:
        return self

    def paginate(self, **kwargs: Any) -> list[dict[str, Any]]:
        return self.pages


def test_one_bad_product_is_skipped_counted_and_warned_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Once: one product whose USD price was not a number failed the whole AWS refresh
    (ValueError from float()); now it is skipped and the others still price the type."""
    bad = ec2_product("p4d.24xlarge", "us-east-1", 30.0)
    [term] = bad["terms"]["OnDemand"].values()
    [dim] = term["priceDimensions"].values()
    dim["pricePerUnit"]["USD"] = "n/a"
    good = ec2_product("p4d.24xlarge", "us-east-1", 32.77)
    feed = AwsPriceFeed(clients=_Pages([{"PriceList": [json.dumps(bad), json.dumps(good)]}]))  # type: ignore[arg-type]
    assert feed.on_demand_price("us-east-1", "p4d.24xlarge") == 32.77
    why = "GetProducts: 'p4d.24xlarge': pricePerUnit.USD: 'n/a' is not a non-negative number"
    assert feed.skipped == [why]
    with caplog.at_level(logging.WARNING, logger="providers.aws_prices"):
        feed._warn_skipped()
        feed._warn_skipped()  # nothing new: no second warning
    assert [r.getMessage() for r in caplog.records] == [
        f"aws: 1 API answer item(s) skipped, first: {why}"
    ]
    assert feed.skipped == []


# ---- GCP answers ----------------------------------------------------------------------------

SKUS = [*us_central1_skus()[:6], *tpu_skus()[:3]]


@fuzz(300)
@given(item=st.sampled_from(SKUS).flatmap(damaged))
@example(item={**SKUS[0], "serviceRegions": "us-central1"})  # once: read as 11 regions
def test_billing_skus(item: dict[str, Any]) -> None:
    try:
        price = sku_from_dict(item)
    except SkuError as exc:
        one_line(str(exc), "SKU ")
        prices, problems = parse_skus([item, SKUS[0]])
        assert len(prices) == 1 and problems == [str(exc)]
        return
    assert isinstance(price, SkuPrice)
    assert all(isinstance(r, str) for r in price.regions)
    assert math.isfinite(price.hourly_usd) and price.hourly_usd >= 0
    assert math.isfinite(price.cost(10.0))
    rate_book([price])  # never raises


MACHINE = {
    "name": "a2-highgpu-1g",
    "guestCpus": 12,
    "memoryMb": 87040,
    "accelerators": [{"guestAcceleratorType": "nvidia-tesla-a100", "guestAcceleratorCount": 1}],
    "bundledLocalSsds": {"partitionCount": 0},
}


@fuzz(200)
@given(data=damaged(MACHINE))
def test_machine_types(data: dict[str, Any]) -> None:
    try:
        shape = machine_shape(data)
    except GcpFormatError as exc:
        one_line(str(exc), "MachineType")
        return
    assert isinstance(shape, MachineShape) and shape.vcpus > 0 and shape.memory_gib > 0
    zone = ZoneCatalog("us-central1-a", "us-central1", {shape.name: shape})
    book = rate_book(sku_from_dict(s) for s in us_central1_skus())
    for o in build_offerings([zone], book, NOW):  # an Offering for every priced shape
        assert math.isfinite(o.price_per_hour)
