"""The AWS provider against moto's server, a Price List fake and a metadata fake, over HTTP."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from providers.aws import (
    AwsPriceFeed,
    aws_feed,
)
from providers.aws_prices import (
    DEFAULT_SPOT_ADVISOR,
    RegionPrices,
    SpotAdvisorTable,
    accelerator_of,
    build_offerings,
    canonical_gpu,
    instance_type_info,
    latest_spot,
    load_spot_advisor,
    parse_price_list_item,
)
from providers.feeds import SpotPricePoint
from providers.offering import InterruptionSource, MarketKind, Offering, PriceSource
from providers.spot_buckets import bucket_rate
from tests.fakes.aws_env import ADVISOR_YAML, REGION, aws_environment, raw_ec2
from tests.fakes.aws_pricing import FakePriceList, SpotPriceEc2, ec2_product

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def aws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    yield from aws_environment(tmp_path_factory)


# ---- prices through the APIs ----------------------------------------------------------------

SPOT_TYPES = ("p4d.24xlarge", "p4de.24xlarge", "p3dn.24xlarge", "g5.xlarge", "g4dn.xlarge")


@pytest.fixture(scope="module")
def priced(aws: dict[str, Any]) -> dict[str, Any]:
    """One fetch over two regions with injected spot prices and Price List products."""
    front: SpotPriceEc2 = aws["ec2_front"]
    prices: FakePriceList = aws["price_list"]
    # p4d in us-east-1a changed price within the window; the newest one is in force.
    front.add("us-east-1a", "p4d.24xlarge", 9.10, NOW - timedelta(hours=3))
    front.add("us-east-1a", "p4d.24xlarge", 8.59, NOW - timedelta(hours=1))
    # In us-east-1b it last changed two days ago: still the price in force at the start.
    front.add("us-east-1b", "p4d.24xlarge", 8.70, NOW - timedelta(days=2))
    front.add("us-east-1b", "p4de.24xlarge", 13.35, NOW - timedelta(hours=2))
    front.add("us-east-1a", "p4de.24xlarge", 12.00, NOW - timedelta(hours=2))  # not offered there
    front.add("us-east-1c", "p3dn.24xlarge", 9.33, NOW - timedelta(hours=2))
    front.add("us-east-1a", "g5.xlarge", 0.394, NOW - timedelta(minutes=30))
    front.add("us-east-1a", "g5.xlarge", 0.55, NOW - timedelta(minutes=30), product="Windows")
    front.add("us-west-2a", "g4dn.xlarge", 0.2497, NOW - timedelta(hours=4))
    front.add("us-east-1a", "g4dn.xlarge", 0.30, NOW + timedelta(hours=1))  # after `now`
    front.add("us-east-1a", "m5.large", 0.04, NOW - timedelta(hours=1))  # no GPU
    for itype, usd in (("p4d.24xlarge", 21.9576), ("g5.xlarge", 1.006), ("p5.48xlarge", 55.04)):
        prices.add(ec2_product(itype, REGION, usd))
    prices.add(ec2_product("g4dn.xlarge", "us-west-2", 0.526))
    prices.add(ec2_product("m5.large", REGION, 0.096))
    # Rows the filters must exclude: other OS, tenancy, reservations, region.
    prices.add(ec2_product("p4d.24xlarge", REGION, 25.0, operating_system="Windows"))
    prices.add(ec2_product("p4d.24xlarge", REGION, 24.0, tenancy="Dedicated"))
    prices.add(
        ec2_product("p4d.24xlarge", REGION, 20.0, capacity_status="UnusedCapacityReservation")
    )
    prices.add(ec2_product("p4d.24xlarge", REGION, 1.0, pre_installed_sw="SQL Web"))
    prices.add(ec2_product("p4d.24xlarge", "us-west-2", 22.5))
    offerings = AwsPriceFeed(aws["advisor"], clients=aws["clients"]).fetch(
        [REGION, "us-west-2"], NOW
    )
    by_key = {(o.zone, o.instance_type, o.market): o for o in offerings}
    return {"offerings": offerings, "by_key": by_key}


def offered_zones(aws: dict[str, Any], region: str, itype: str) -> set[str]:
    pages = (
        raw_ec2(aws, region)
        .get_paginator("describe_instance_type_offerings")
        .paginate(
            LocationType="availability-zone", Filters=[{"Name": "instance-type", "Values": [itype]}]
        )
    )
    return {o["Location"] for p in pages for o in p["InstanceTypeOfferings"]}


def test_spot_price_is_the_latest_per_zone(priced: dict[str, Any], aws: dict[str, Any]) -> None:
    by_key = priced["by_key"]
    a = by_key[("us-east-1a", "p4d.24xlarge", MarketKind.SPOT)]
    b = by_key[("us-east-1b", "p4d.24xlarge", MarketKind.SPOT)]
    assert (a.price_per_hour, a.as_of) == (8.59, NOW - timedelta(hours=1))
    assert (b.price_per_hour, b.as_of) == (8.70, NOW - timedelta(days=2))
    assert a.price_source is PriceSource.LIVE and "DescribeSpotPriceHistory" in a.source_detail
    # Linux prices only; a price stamped after `now` is not in force yet.
    assert by_key[("us-east-1a", "g5.xlarge", MarketKind.SPOT)].price_per_hour == 0.394
    assert ("us-east-1a", "g4dn.xlarge", MarketKind.SPOT) not in by_key
    assert by_key[("us-west-2a", "g4dn.xlarge", MarketKind.SPOT)].region == "us-west-2"
    # Only zones that offer the type (DescribeInstanceTypeOfferings) and have a spot price.
    assert offered_zones(aws, REGION, "p4de.24xlarge") == {"us-east-1b", "us-east-1c"}
    p4de_spot = {o.zone for o in priced["offerings"] if o.instance_type == "p4de.24xlarge"}
    assert p4de_spot == {"us-east-1b"}


def test_spot_interruption_rate_from_the_advisor_table(priced: dict[str, Any]) -> None:
    by_key = priced["by_key"]
    p4d = by_key[("us-east-1a", "p4d.24xlarge", MarketKind.SPOT)]
    assert p4d.interruption_rate == pytest.approx(bucket_rate("5-10%"))
    assert p4d.interruption_source is InterruptionSource.PUBLISHED_BUCKET
    assert "5-10%" in p4d.source_detail and "2025-11-30" in p4d.source_detail
    g5 = by_key[("us-east-1a", "g5.xlarge", MarketKind.SPOT)]
    assert g5.interruption_rate == pytest.approx(bucket_rate("<5%"))
    # Not in the table: the default bucket, and the offering says it was configured.
    p4de = by_key[("us-east-1b", "p4de.24xlarge", MarketKind.SPOT)]
    assert p4de.interruption_rate == pytest.approx(bucket_rate(">20%"))
    assert p4de.interruption_source is InterruptionSource.CONFIGURED


def test_on_demand_from_the_price_list_in_every_offered_zone(
    priced: dict[str, Any], aws: dict[str, Any]
) -> None:
    od = [o for o in priced["offerings"] if o.market is MarketKind.ON_DEMAND]
    p4d = {o.zone: o for o in od if o.instance_type == "p4d.24xlarge" and o.region == REGION}
    assert set(p4d) == offered_zones(aws, REGION, "p4d.24xlarge")
    assert len(p4d) >= 2
    for o in p4d.values():
        assert o.price_per_hour == 21.9576  # not the Windows, dedicated or reserved rows
        assert (o.interruption_rate, o.interruption_source) == (0.0, InterruptionSource.NONE)
        assert o.as_of == NOW and o.price_source is PriceSource.LIVE
        assert "Price List" in o.source_detail
    west = {o.zone: o.price_per_hour for o in od if o.instance_type == "p4d.24xlarge"}
    west = {z: p for z, p in west.items() if z.startswith("us-west-2")}
    assert set(west) == offered_zones(aws, "us-west-2", "p4d.24xlarge")
    assert set(west.values()) == {22.5}  # priced per region
    assert {o.zone for o in od if o.instance_type == "p5.48xlarge"} == offered_zones(
        aws, REGION, "p5.48xlarge"
    )
    # Not priced by the Price List: no on-demand offering (the spot one stands alone).
    assert not [o for o in od if o.instance_type == "p4de.24xlarge"]
    # What the feed asked: one TERM_MATCH set per (region, type).
    call = next(
        c
        for c in aws["price_list"].calls
        if {"Field": "instanceType", "Type": "TERM_MATCH", "Value": "p4d.24xlarge"} in c["Filters"]
    )
    terms = {f["Field"]: f["Value"] for f in call["Filters"]}
    assert call["ServiceCode"] == "AmazonEC2"
    assert {
        k: terms[k] for k in ("operatingSystem", "tenancy", "preInstalledSw", "capacitystatus")
    } == {
        "operatingSystem": "Linux",
        "tenancy": "Shared",
        "preInstalledSw": "NA",
        "capacitystatus": "Used",
    }


def test_on_demand_price_reads_every_page(aws: dict[str, Any]) -> None:
    prices: FakePriceList = aws["price_list"]
    for i, usd in enumerate((2.0, 1.861, 1.9)):  # page size 2: the cheapest is on page 1
        prices.add(ec2_product("g6e.2xlarge", "eu-west-1", usd, sku=f"G6E{i}"))
    before = len(prices.calls)
    feed = AwsPriceFeed(aws["advisor"], clients=aws["clients"])
    assert feed.on_demand_price("eu-west-1", "g6e.2xlarge") == 1.861
    assert len(prices.calls) - before == 2
    assert feed.on_demand_price("eu-west-1", "g6e.4xlarge") is None


def test_only_known_gpus_with_canonical_names(priced: dict[str, Any]) -> None:
    offerings: list[Offering] = priced["offerings"]
    names = {o.instance_type: o.accelerators for o in offerings}
    assert names["p4d.24xlarge"] is not None and names["p4d.24xlarge"].name == "A100"
    assert names["p4de.24xlarge"] is not None and names["p4de.24xlarge"].name == "A100-80GB"
    assert names["p3dn.24xlarge"] is not None and names["p3dn.24xlarge"].name == "V100-32GB"
    assert names["g5.xlarge"] is not None and names["g5.xlarge"].name == "A10G"
    assert names["p5.48xlarge"] is not None and names["p5.48xlarge"].name == "H100"
    assert "m5.large" not in names  # priced and spot-priced, but no GPU
    assert all(o.accelerators is not None and o.cloud == "aws" for o in offerings)
    assert all(o.zone.startswith(o.region) for o in offerings)
    p4d = next(o for o in offerings if o.instance_type == "p4d.24xlarge")
    assert (p4d.accelerators and p4d.accelerators.count, p4d.vcpus, p4d.memory_gb) == (8, 96, 1152)


def test_spot_history_returns_every_point_in_the_window(aws: dict[str, Any]) -> None:
    front: SpotPriceEc2 = aws["ec2_front"]
    start, end = NOW - timedelta(days=7), NOW
    front.add("us-east-1c", "g6.xlarge", 0.36, NOW - timedelta(days=3))
    front.add("us-east-1c", "g6.xlarge", 0.35, NOW - timedelta(days=1))
    front.add("us-east-1c", "g6.xlarge", 0.30, NOW - timedelta(days=9))  # in force at start
    front.add("us-east-1c", "g6.xlarge", 0.31, NOW - timedelta(days=10))  # superseded
    front.add("us-west-2b", "g6.xlarge", 0.41, NOW - timedelta(hours=5))
    feed = aws_feed(aws["advisor"], aws["clients"])
    points = feed.spot_history(["g6.xlarge"], [REGION, "us-west-2"], start, end)
    got = sorted((p.region, p.zone, p.price_per_hour, p.at) for p in points)
    assert got == [
        (REGION, "us-east-1c", 0.30, NOW - timedelta(days=9)),
        (REGION, "us-east-1c", 0.35, NOW - timedelta(days=1)),
        (REGION, "us-east-1c", 0.36, NOW - timedelta(days=3)),
        ("us-west-2", "us-west-2b", 0.41, NOW - timedelta(hours=5)),
    ]
    assert all(p.cloud == "aws" and p.instance_type == "g6.xlarge" for p in points)
    assert feed.spot_history([], [REGION], start, end) == []


def test_spot_history_follows_next_token(aws: dict[str, Any]) -> None:
    front: SpotPriceEc2 = aws["ec2_front"]
    for hour in range(1, 8):
        front.add("us-east-1d", "g6e.xlarge", 0.8 + hour / 100, NOW - timedelta(hours=hour))
    front.page_size = 3
    try:
        points = aws_feed(aws["advisor"], aws["clients"]).spot_history(
            ["g6e.xlarge"], [REGION], NOW - timedelta(days=1), NOW
        )
    finally:
        front.page_size = 1000
    assert len(points) == 7 and len({p.at for p in points}) == 7


def test_instance_type_info_from_describe_instance_types(aws: dict[str, Any]) -> None:
    names = ["p4de.24xlarge", "g6.xlarge", "m5.large", "inf2.xlarge"]
    infos = AwsPriceFeed(aws["advisor"], clients=aws["clients"]).instance_types(REGION, names)
    assert set(infos) == {"p4de.24xlarge", "g6.xlarge"}  # no GPU, or none we name
    raw = raw_ec2(aws).describe_instance_types(InstanceTypes=["g6.xlarge"])["InstanceTypes"][0]
    g6 = infos["g6.xlarge"]
    assert g6.accelerator.name == "L4"
    assert g6.accelerator.count == raw["GpuInfo"]["Gpus"][0]["Count"]
    assert g6.vcpus == raw["VCpuInfo"]["DefaultVCpus"]
    assert g6.memory_gb == raw["MemoryInfo"]["SizeInMiB"] / 1024


# ---- pure parsing --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "mib", "canonical"),
    [
        ("A100", 40960, "A100"),
        ("A100", 81920, "A100-80GB"),
        ("V100", 16384, "V100"),
        ("V100", 32768, "V100-32GB"),
        ("H100", 81920, "H100"),
        ("H200", 144384, "H200"),
        ("B200", 183359, "B200"),
        ("A10G", 22888, "A10G"),
        ("T4", 16384, "T4"),
        ("L4", 22888, "L4"),
        ("L40S", 45776, "L40S"),
        ("K80", 12288, "K80"),
        ("NVIDIA Tesla V100", 16384, "V100"),
        ("T4g", 16384, None),  # Graviton host: not interchangeable with a T4 node
        ("Radeon Pro V520", 8192, None),
        ("B300", 275040, None),
    ],
)
def test_canonical_gpu_names(name: str, mib: int, canonical: str | None) -> None:
    assert canonical_gpu(name, mib) == canonical


def gpu_type(name: str, mib: int, count: int = 1, part: float = 1.0) -> dict[str, Any]:
    gpu = {"Name": name, "Manufacturer": "NVIDIA", "Count": count, "MemoryInfo": {"SizeInMiB": mib}}
    return {
        "InstanceType": "x.large",
        "VCpuInfo": {"DefaultVCpus": 8},
        "MemoryInfo": {"SizeInMiB": 32768},
        "GpuInfo": {"Gpus": [{**gpu, "GpuPartitionSize": part}]},
    }


def test_accelerator_of_a_type() -> None:
    accel = accelerator_of(gpu_type("A10G", 22888, count=4))
    assert accel is not None
    assert (accel.name, accel.count, accel.memory_gb) == ("A10G", 4, 24)  # our table's GB
    assert accelerator_of(gpu_type("L4", 2861, part=0.125)) is None  # an eighth of an L4
    assert accelerator_of({"InstanceType": "m5.large"}) is None
    info = instance_type_info(gpu_type("H100", 81920, count=8))
    assert info is not None and (info.vcpus, info.memory_gb) == (8, 32)


def test_parse_price_list_item() -> None:
    item = json.dumps(ec2_product("p5.48xlarge", "us-east-2", 55.04))
    price = parse_price_list_item(item)
    assert price is not None
    assert (price.instance_type, price.region, price.usd_per_hour) == (
        "p5.48xlarge",
        "us-east-2",
        55.04,
    )
    assert parse_price_list_item(ec2_product("p5.48xlarge", "us-east-2", 0.0)) is None
    no_terms = ec2_product("g5.xlarge", "us-east-1", 1.0)
    no_terms["terms"] = {"Reserved": no_terms["terms"]["OnDemand"]}
    assert parse_price_list_item(no_terms) is None
    no_type = ec2_product("g5.xlarge", "us-east-1", 1.0)
    del no_type["product"]["attributes"]["instanceType"]
    assert parse_price_list_item(no_type) is None
    other_unit = ec2_product("g5.xlarge", "us-east-1", 1.0)
    [term] = other_unit["terms"]["OnDemand"].values()
    [dim] = term["priceDimensions"].values()
    dim["unit"] = "Quantity"
    assert parse_price_list_item(other_unit) is None


def test_latest_spot_per_zone_and_type() -> None:
    def point(zone: str, price: float, hours_ago: int) -> SpotPricePoint:
        at = NOW - timedelta(hours=hours_ago)
        return SpotPricePoint(
            cloud="aws",
            region=REGION,
            zone=zone,
            instance_type="g5.xlarge",
            price_per_hour=price,
            at=at,
        )

    latest = latest_spot(
        [point("us-east-1a", 1.0, 5), point("us-east-1a", 2.0, 1), point("us-east-1b", 3.0, 9)]
    )
    assert {k: v.price_per_hour for k, v in latest.items()} == {
        ("us-east-1a", "g5.xlarge"): 2.0,
        ("us-east-1b", "g5.xlarge"): 3.0,
    }


def test_bucket_to_rate_through_the_table() -> None:
    table = SpotAdvisorTable.model_validate(
        {
            "as_of": "2025-11-30",
            "source": "t",
            "default_bucket": "10-15%",
            "buckets": {"us-east-2": {"p5.48xlarge": "<5%", "g5.xlarge": ">20%"}},
        }
    )
    rate, why, bucket = table.rate("us-east-2", "p5.48xlarge")
    # 2.5% of a 730-hour month as a constant hazard.
    assert rate == pytest.approx(-math.log(1 - 0.025) / 730)
    assert (why, bucket) == (InterruptionSource.PUBLISHED_BUCKET, "<5%")
    assert table.rate("us-east-2", "g5.xlarge")[0] == pytest.approx(-math.log(1 - 0.25) / 730)
    rate, why, bucket = table.rate("eu-west-1", "p5.48xlarge")
    assert (why, bucket) == (InterruptionSource.CONFIGURED, "10-15%")
    assert rate == pytest.approx(-math.log(1 - 0.125) / 730)


def test_advisor_table_rejects_unknown_buckets(tmp_path: Path) -> None:
    bad = tmp_path / "advisor.yaml"
    bad.write_text(ADVISOR_YAML.replace('"<5%"', '"3%"'))
    with pytest.raises(ValueError, match=r"advisor.yaml: buckets.*3%"):
        load_spot_advisor(bad)
    with pytest.raises(ValueError, match="cannot read"):
        load_spot_advisor(tmp_path / "missing.yaml")


def test_shipped_advisor_table_is_dated_and_covers_the_default_regions() -> None:
    from scheduler.config import DEFAULT_AWS_REGIONS

    table = load_spot_advisor(DEFAULT_SPOT_ADVISOR)
    assert table.as_of.year >= 2025 and table.source
    assert set(DEFAULT_AWS_REGIONS) <= set(table.buckets)
    for region in DEFAULT_AWS_REGIONS:
        assert "g5.xlarge" in table.buckets[region]


def test_build_offerings_pairs_zones_with_prices() -> None:
    table = load_spot_advisor(DEFAULT_SPOT_ADVISOR)
    info = instance_type_info({**gpu_type("L4", 22888), "InstanceType": "g6.xlarge"})
    assert info is not None
    spot = [
        SpotPricePoint(
            cloud="aws",
            region="us-east-2",
            zone=z,
            instance_type="g6.xlarge",
            price_per_hour=0.28,
            at=NOW,
        )
        for z in ("us-east-2a", "us-east-2z")  # 2z does not offer g6 per the offerings
    ]
    prices = RegionPrices(
        region="us-east-2",
        types={"g6.xlarge": info},
        zones={"g6.xlarge": ["us-east-2a", "us-east-2b"]},
        spot=spot,
        on_demand={"g6.xlarge": 0.8048},
    )
    got = {(o.zone, o.market): o.price_per_hour for o in build_offerings(prices, table, NOW)}
    assert got == {
        ("us-east-2a", MarketKind.ON_DEMAND): 0.8048,
        ("us-east-2a", MarketKind.SPOT): 0.28,
        ("us-east-2b", MarketKind.ON_DEMAND): 0.8048,
    }
