"""The network price model: worked examples from published tiers, the shipped table checked
against its sources, bad tables, and the properties any tiered bill must have."""

from __future__ import annotations

import copy
import csv
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from providers.network import (
    DEFAULT_NETWORK_RATES,
    Location,
    NetworkPrices,
    TieredRate,
    UnknownRegionError,
    load_network_prices,
)

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data"
GIB = 2**30 / 1e9  # decimal GB in one GiB
TIB = 1024 * GIB

PRICES = load_network_prices()


def aws(region: str, zone: str | None = None) -> Location:
    return Location(cloud="aws", region=region, zone=zone)


def gcp(region: str, zone: str | None = None) -> Location:
    return Location(cloud="gcp", region=region, zone=zone)


LOCAL = Location(cloud="local", zone="workstation")


# ---- the shipped table ---------------------------------------------------------------------


def test_default_table_is_found_next_to_the_packages() -> None:
    assert DEFAULT_NETWORK_RATES == REPO / "configs" / "network_rates.yaml"
    assert load_network_prices(DEFAULT_NETWORK_RATES) == PRICES
    assert set(PRICES.clouds) == {"aws", "gcp"}
    assert PRICES.clouds["aws"].unit == "GB"
    assert PRICES.clouds["gcp"].unit == "GiB"


def test_regions_map_to_continents() -> None:
    assert PRICES.continent("aws", "us-east-1") == "na"
    assert PRICES.continent("aws", "ca-central-1") == "na"
    assert PRICES.continent("aws", "eu-west-1") == "eu"
    assert PRICES.continent("aws", "ap-northeast-1") == "asia"
    assert PRICES.continent("aws", "ap-southeast-2") == "oc"
    assert PRICES.continent("aws", "sa-east-1") == "sa"
    assert PRICES.continent("aws", "me-south-1") == "me"
    assert PRICES.continent("aws", "af-south-1") == "af"
    assert PRICES.continent("gcp", "us-central2") == "na"
    assert PRICES.continent("gcp", "northamerica-northeast1") == "na"
    assert PRICES.continent("gcp", "southamerica-east1") == "sa"
    assert PRICES.continent("gcp", "europe-west4") == "eu"
    assert PRICES.continent("gcp", "asia-east1") == "asia"
    assert PRICES.continent("gcp", "australia-southeast1") == "oc"
    assert PRICES.continent("gcp", "me-west1") == "me"
    assert PRICES.continent("gcp", "africa-south1") == "af"


# ---- worked examples -----------------------------------------------------------------------


def test_same_zone_is_free() -> None:
    cost = PRICES.transfer_cost(aws("us-east-1", "us-east-1a"), aws("us-east-1", "us-east-1a"), 500)
    assert cost.usd == 0
    assert cost.kind == "same-zone"
    assert cost.meter is None
    assert (
        PRICES.transfer_cost(
            gcp("us-central1", "us-central1-a"), gcp("us-central1", "us-central1-a"), 500
        ).usd
        == 0
    )


def test_regional_bucket_is_free_from_any_zone_of_its_region() -> None:
    for bucket, vm in (
        (aws("us-east-1"), aws("us-east-1", "us-east-1c")),
        (gcp("europe-west4"), gcp("europe-west4", "europe-west4-b")),
    ):
        cost = PRICES.transfer_cost(bucket, vm, 1000)
        assert cost.usd == 0
        assert cost.kind == "same-region"


def test_aws_cross_zone_bills_both_sides() -> None:
    # $0.01/GB out of one AZ plus $0.01/GB into the other, both on our bill.
    cost = PRICES.transfer_cost(aws("us-east-1", "us-east-1a"), aws("us-east-1", "us-east-1b"), 100)
    assert cost.kind == "cross-zone"
    assert cost.usd == pytest.approx(100 * 0.02)
    assert cost.meter == "aws us-east-1 cross-zone"


def test_gcp_cross_zone_is_a_cent_per_gib() -> None:
    cost = PRICES.transfer_cost(
        gcp("us-central1", "us-central1-a"), gcp("us-central1", "us-central1-f"), 100 * GIB
    )
    assert cost.kind == "cross-zone"
    assert cost.usd == pytest.approx(100 * 0.01)


def test_50_tb_from_aws_us_east_1_to_gcp() -> None:
    src, dst = aws("us-east-1", "us-east-1a"), gcp("us-central1", "us-central1-a")
    cost = PRICES.transfer_cost(src, dst, 50 * 1024)
    assert cost.kind == "internet aws us-east-1"
    assert cost.usd == pytest.approx(10 * 1024 * 0.09 + 40 * 1024 * 0.085)
    assert [s.usd_per_gb for s in cost.slices] == [0.09, 0.085]
    assert [s.gb for s in cost.slices] == [10 * 1024, 40 * 1024]
    # The account-wide 100 GB/month free allowance, when the caller says it is unused, is the
    # first 100 GB of the month at $0; tier boundaries stay where they are.
    free = PRICES.transfer_cost(src, dst, 50 * 1024, include_free_tier=True)
    assert free.usd == pytest.approx(cost.usd - 100 * 0.09)
    assert free.slices[0].usd_per_gb == 0 and free.slices[0].gb == 100


def test_all_four_aws_internet_tiers() -> None:
    cost = PRICES.transfer_cost(aws("us-west-2"), gcp("us-west1"), 200 * 1024)
    expected = 10 * 1024 * 0.09 + 40 * 1024 * 0.085 + 100 * 1024 * 0.07 + 50 * 1024 * 0.05
    assert cost.usd == pytest.approx(expected)
    assert len(cost.slices) == 4


def test_already_used_prices_the_marginal_slice() -> None:
    src, dst = aws("eu-west-1"), gcp("europe-west4")
    assert PRICES.transfer_cost(src, dst, 100, already_used_gb=10 * 1024).usd == pytest.approx(8.5)
    straddling = PRICES.transfer_cost(src, dst, 100, already_used_gb=10 * 1024 - 40)
    assert straddling.usd == pytest.approx(40 * 0.09 + 60 * 0.085)
    assert straddling.slices[0].start_gb == 10 * 1024 - 40


def test_gcp_to_aws_is_premium_tier_internet_egress() -> None:
    cost = PRICES.transfer_cost(
        gcp("us-central1", "us-central1-a"), aws("us-east-1", "us-east-1a"), 2 * TIB
    )
    assert cost.kind == "internet gcp us-central1"
    assert cost.usd == pytest.approx(1024 * 0.12 + 1024 * 0.11)
    big = PRICES.transfer_cost(gcp("us-central1"), aws("us-east-1"), 20 * TIB)
    assert big.usd == pytest.approx(1024 * 0.12 + 9 * 1024 * 0.11 + 10 * 1024 * 0.08)


def test_gcp_to_australia_uses_the_australia_rate() -> None:
    cost = PRICES.transfer_cost(gcp("europe-west4"), aws("ap-southeast-2"), 1 * TIB)
    assert cost.kind == "internet gcp europe-west4 to oc"
    assert cost.usd == pytest.approx(1024 * 0.19)


def test_aws_inter_region() -> None:
    us_west = PRICES.transfer_cost(
        aws("us-east-1", "us-east-1a"), aws("us-west-2", "us-west-2a"), 100
    )
    assert us_west.kind == "inter-region aws na->na"
    assert us_west.usd == pytest.approx(2.0)
    assert us_west.meter == "aws us-east-1 inter-region"
    assert PRICES.transfer_cost(aws("us-east-1"), aws("us-east-2"), 100).usd == pytest.approx(1.0)
    assert PRICES.transfer_cost(aws("us-east-2"), aws("us-east-1"), 100).usd == pytest.approx(1.0)
    to_eu = PRICES.transfer_cost(aws("us-east-1"), aws("eu-west-1"), 100)
    assert to_eu.kind == "inter-region aws na->eu"
    assert to_eu.usd == pytest.approx(2.0)
    # AWS bills by source region: leaving Seoul or Sao Paulo costs more than arriving there.
    assert PRICES.transfer_cost(aws("ap-northeast-2"), aws("us-east-1"), 100).usd == pytest.approx(
        8.0
    )
    assert PRICES.transfer_cost(aws("sa-east-1"), aws("eu-west-1"), 100).usd == pytest.approx(13.8)
    assert PRICES.transfer_cost(aws("us-east-1"), aws("sa-east-1"), 100).usd == pytest.approx(2.0)


def test_gcp_inter_region() -> None:
    def per_gib(src: str, dst: str) -> float:
        return PRICES.transfer_cost(gcp(src), gcp(dst), GIB).usd

    assert per_gib("us-central1", "us-east1") == pytest.approx(0.02)
    assert per_gib("europe-west4", "europe-west1") == pytest.approx(0.02)
    assert per_gib("us-central1", "europe-west4") == pytest.approx(0.05)
    assert per_gib("europe-west4", "us-central1") == pytest.approx(0.05)
    assert per_gib("europe-west4", "asia-east1") == pytest.approx(0.08)
    assert per_gib("asia-east1", "australia-southeast1") == pytest.approx(0.10)
    assert per_gib("southamerica-east1", "us-east1") == pytest.approx(0.14)
    assert PRICES.rate_kind(gcp("us-central1"), gcp("europe-west4")) == "inter-region gcp na->eu"


def test_local_cluster() -> None:
    to_local = PRICES.transfer_cost(aws("us-east-1"), LOCAL, 100)
    assert to_local.kind == "internet aws us-east-1"
    assert to_local.usd == pytest.approx(9.0)
    # Nothing on-premises has a continent, so GCP's worldwide (not Australia) rate applies.
    assert PRICES.transfer_cost(gcp("australia-southeast1"), LOCAL, GIB).usd == pytest.approx(0.19)
    ingress = PRICES.transfer_cost(LOCAL, gcp("us-central1"), 100)
    assert (ingress.usd, ingress.kind, ingress.meter) == (0, "ingress gcp", None)
    assert PRICES.transfer_cost(LOCAL, Location(cloud="local", zone="other-host"), 100).usd == 0


# ---- the table against its sources (skips without the shared data) -------------------------

GCP_EGRESS = DATA / "gcp-pricing-cyclenerd" / "gcp_internet_egress_prices_2026-07-30.csv"
AWS_TRANSFER = DATA / "skyplane-network" / "skyplane" / "data" / "aws_transfer_costs.csv"


@pytest.mark.skipif(not GCP_EGRESS.exists(), reason=f"{GCP_EGRESS} absent")
def test_gcp_internet_tiers_match_the_billing_catalog() -> None:
    # A destination in each of the catalog's classes we can reach: AWS Virginia, AWS Sydney.
    destinations = {
        "worldwide_excl_china_australia": aws("us-east-1"),
        "australia": aws("ap-southeast-2"),
    }
    inside_tier = {"0-1": 0.5, "1-10": 5, "10n": 50}  # TiB already used this month
    checked = 0
    with GCP_EGRESS.open() as f:
        for row in csv.DictReader(f):
            dst = destinations.get(row["destination"])
            if dst is None:
                continue
            used = inside_tier[row["tier_tib_per_month"]] * TIB
            one_gib = PRICES.transfer_cost(
                gcp(row["source_region"]), dst, GIB, already_used_gb=used
            )
            assert one_gib.usd == pytest.approx(float(row["usd_per_gib"])), row
            checked += 1
    assert checked == 43 * 3 * 2


@pytest.mark.skipif(not AWS_TRANSFER.exists(), reason=f"{AWS_TRANSFER} absent")
def test_aws_first_tier_and_inter_region_rates_match_skyplane() -> None:
    known = {r for names in PRICES.clouds["aws"].regions.values() for r in names}
    checked = 0
    with AWS_TRANSFER.open() as f:
        for row in csv.DictReader(f):
            if row["src"] not in known or (row["dst"] != "internet" and row["dst"] not in known):
                continue
            dst = gcp("us-central1") if row["dst"] == "internet" else aws(row["dst"])
            one_gb = PRICES.transfer_cost(aws(row["src"]), dst, 1)
            assert one_gb.usd == pytest.approx(float(row["cost"])), row
            checked += 1
    assert checked > 500


# ---- unknown places and bad tables ---------------------------------------------------------


def test_unknown_regions_are_a_clear_error() -> None:
    with pytest.raises(UnknownRegionError, match="aws region 'xx-nowhere-1'"):
        PRICES.transfer_cost(aws("xx-nowhere-1"), aws("us-east-1"), 1)
    with pytest.raises(UnknownRegionError, match="gcp region 'mars-central1'"):
        PRICES.transfer_cost(aws("us-east-1"), gcp("mars-central1"), 1)
    with pytest.raises(UnknownRegionError, match="xx-nowhere-1"):
        PRICES.rate_kind(LOCAL, aws("xx-nowhere-1"))
    assert issubclass(UnknownRegionError, ValueError)


def test_locations_are_checked() -> None:
    with pytest.raises(ValidationError, match="not in region"):
        aws("us-east-1", "us-west-2a")
    with pytest.raises(ValidationError, match="needs its region"):
        Location(cloud="gcp")
    with pytest.raises(ValueError, match="non-negative"):
        PRICES.transfer_cost(aws("us-east-1"), gcp("us-east1"), -1)
    with pytest.raises(ValueError, match="non-negative"):
        PRICES.transfer_cost(aws("us-east-1"), gcp("us-east1"), 1, already_used_gb=math.nan)


RAW = yaml.safe_load(DEFAULT_NETWORK_RATES.read_text())


def _write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "rates.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _mutated(change: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
    data: dict[str, Any] = copy.deepcopy(RAW)
    change(data)
    return data


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        (lambda d: d.pop("as_of"), "as_of", "Field required"),
        (
            lambda d: d["clouds"]["aws"]["internet"][0].update(
                tiers=[[51200, 0.09], [10240, 0.085], [None, 0.05]]
            ),
            "clouds.aws.internet.0.tiers: tier 1",
            "does not exceed",
        ),
        (
            lambda d: d["clouds"]["aws"]["internet"][0].update(
                tiers=[[10240, 0.09], [51200, 0.085]]
            ),
            "clouds.aws.internet.0.tiers",
            "must be null",
        ),
        (
            lambda d: d["clouds"]["gcp"]["inter_region"][0].update(usd=-0.02),
            "clouds.gcp.inter_region.0.usd",
            "greater than or equal to 0",
        ),
        (
            lambda d: d["clouds"]["gcp"]["inter_region"][0].update(tiers=[[None, 0.02]]),
            "clouds.gcp.inter_region.0",
            "exactly one of usd and tiers",
        ),
        (
            lambda d: d["clouds"]["aws"]["inter_region"][0].update({"from": ["us-nowhere-1"]}),
            "clouds.aws",
            "inter_region.0.from: unknown region 'us-nowhere-1'",
        ),
        (
            lambda d: d["clouds"]["gcp"]["internet"][1].update({"to": ["australia-southeast1"]}),
            "clouds.gcp",
            "internet destinations are continent codes",
        ),
        (
            lambda d: d["clouds"]["gcp"]["inter_region"].pop(),
            "clouds.gcp",
            "inter_region: no rule prices",
        ),
        (
            lambda d: d["clouds"]["aws"]["regions"]["eu"].append("us-east-1"),
            "clouds.aws",
            "us-east-1 is in both",
        ),
        (
            lambda d: d["clouds"]["aws"]["regions"].update(us=["us-east-1"]),
            "clouds.aws.regions.us",
            "Input should be",
        ),
        (
            lambda d: d["clouds"]["aws"]["internet"][0].update(tiers="0.09"),
            "clouds.aws.internet.0.tiers",
            "list of [upto, usd] pairs",
        ),
        (lambda d: d["clouds"]["aws"].update(unit="TB"), "clouds.aws.unit", "Input should be"),
        (lambda d: d["clouds"].update(azure=d["clouds"]["aws"]), "clouds.azure", "Input should be"),
    ],
)
def test_bad_tables_name_the_file_and_field(
    tmp_path: Path, change: Callable[[dict[str, Any]], object], field: str, message: str
) -> None:
    path = _write(tmp_path, _mutated(change))
    with pytest.raises(ValueError) as info:
        load_network_prices(path)
    text = str(info.value)
    assert text.startswith(f"{path}: {field}"), text
    assert message in text, text


def test_unreadable_or_malformed_files(tmp_path: Path) -> None:
    missing = tmp_path / "absent.yaml"
    with pytest.raises(ValueError, match=f"{missing}: cannot read"):
        load_network_prices(missing)
    broken = tmp_path / "broken.yaml"
    broken.write_text("as_of: [2026\n")
    with pytest.raises(ValueError, match=f"{broken}: not valid YAML"):
        load_network_prices(broken)
    with pytest.raises(ValueError, match="valid dictionary"):
        load_network_prices(_write(tmp_path, ["not", "a", "table"]))


# ---- properties ----------------------------------------------------------------------------


def _zones(cloud: str, region: str) -> list[str | None]:
    sep = "" if cloud == "aws" else "-"
    return [None, f"{region}{sep}a", f"{region}{sep}b"]


ALL_REGIONS = [
    (cloud, region)
    for cloud, rates in PRICES.clouds.items()
    for names in rates.regions.values()
    for region in names
]


@st.composite
def locations(draw: st.DrawFn) -> Location:
    if draw(st.integers(0, 20)) == 0:
        return LOCAL
    cloud, region = draw(st.sampled_from(ALL_REGIONS))
    return Location(cloud=cloud, region=region, zone=draw(st.sampled_from(_zones(cloud, region))))


volumes = st.floats(min_value=0, max_value=500_000, allow_nan=False)


@given(locations(), locations(), volumes, volumes, volumes, st.booleans())
def test_cost_never_falls_as_volume_grows(
    src: Location, dst: Location, a: float, b: float, used: float, free: bool
) -> None:
    lo, hi = sorted((a, b))
    low = PRICES.transfer_cost(src, dst, lo, already_used_gb=used, include_free_tier=free)
    high = PRICES.transfer_cost(src, dst, hi, already_used_gb=used, include_free_tier=free)
    assert 0 <= low.usd <= high.usd


@given(locations(), locations(), volumes, volumes, volumes, st.booleans())
def test_cost_is_additive_across_the_months_usage(
    src: Location, dst: Location, a: float, b: float, used: float, free: bool
) -> None:
    def cost(gb: float, already: float) -> float:
        return PRICES.transfer_cost(
            src, dst, gb, already_used_gb=already, include_free_tier=free
        ).usd

    assert cost(a, used) + cost(b, used + a) == pytest.approx(cost(a + b, used), rel=1e-9, abs=1e-9)


@given(locations(), locations(), volumes)
def test_nothing_moved_costs_nothing(src: Location, dst: Location, used: float) -> None:
    cost = PRICES.transfer_cost(src, dst, 0, already_used_gb=used)
    assert cost.usd == 0
    assert cost.slices == ()


@given(locations(), locations(), volumes, st.floats(min_value=0, max_value=10))
def test_cost_is_continuous(src: Location, dst: Location, gb: float, step: float) -> None:
    # No jump anywhere, tier boundaries included: a little more data costs at most the
    # dearest tier's rate times that little.
    rate = PRICES.route(src, dst).rate
    dearest = max(r for _, r in rate.tiers)
    base = PRICES.transfer_cost(src, dst, gb).usd
    more = PRICES.transfer_cost(src, dst, gb + step).usd
    assert 0 <= more - base <= dearest * step + 1e-9


@given(locations(), locations(), volumes)
def test_free_tier_saves_at_most_the_allowance(src: Location, dst: Location, gb: float) -> None:
    route = PRICES.route(src, dst)
    paid = PRICES.transfer_cost(src, dst, gb).usd
    free = PRICES.transfer_cost(src, dst, gb, include_free_tier=True).usd
    first_rate = route.rate.tiers[0][1]
    assert 0 <= paid - free <= route.free_allowance_gb * first_rate + 1e-9


@st.composite
def tiered_rates(draw: st.DrawFn) -> TieredRate:
    bounds = sorted(set(draw(st.lists(st.floats(min_value=0.001, max_value=1e6), max_size=5))))
    rates = draw(
        st.lists(
            st.floats(min_value=0, max_value=1), min_size=len(bounds) + 1, max_size=len(bounds) + 1
        )
    )
    return TieredRate(tiers=(*zip(bounds, rates, strict=False), (None, rates[-1])))


@given(tiered_rates(), volumes, volumes, volumes)
def test_any_tier_table_is_monotone_additive_and_jump_free(
    rate: TieredRate, a: float, b: float, used: float
) -> None:
    lo, hi = sorted((a, b))
    assert rate.cost(lo, used) <= rate.cost(hi, used)
    assert rate.cost(a, used) + rate.cost(b, used + a) == pytest.approx(
        rate.cost(a + b, used), rel=1e-9, abs=1e-9
    )
    dearest = max(r for _, r in rate.tiers)
    for upto, _ in rate.tiers[:-1]:
        assert upto is not None
        below, above = max(upto - 1e-3, 0), upto + 1e-3
        assert rate.cost(above) - rate.cost(below) <= dearest * (above - below) + 1e-9


@given(tiered_rates(), st.floats(min_value=0, max_value=2e6), volumes)
def test_free_allowance_zeroes_exactly_the_first_slice(
    rate: TieredRate, free: float, gb: float
) -> None:
    with_free = rate.with_free_allowance(free)
    assert with_free.cost(gb) == pytest.approx(
        rate.cost(gb) - rate.cost(min(gb, free)), rel=1e-9, abs=1e-9
    )


def test_tier_tables_reject_nonsense() -> None:
    for tiers in (
        (),
        ((None, -1.0),),
        ((10.0, 0.1),),
        ((10.0, 0.1), (5.0, 0.1), (None, 0.1)),
        ((None, 0.1), (None, 0.1)),
    ):
        with pytest.raises(ValidationError):
            TieredRate(tiers=tiers)


def test_network_prices_round_trip_through_a_dump() -> None:
    assert NetworkPrices.model_validate(PRICES.model_dump(by_alias=True)) == PRICES
