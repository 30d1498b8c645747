"""Commitments read live: AWS Savings Plans through boto3 against a REST-JSON fake, and
Compute Engine CUDs through google-cloud-compute against the Compute fake."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from providers.aws_commitments import (
    AwsCommitmentError,
    fetch_savings_plans,
    plan_discount_from_rates,
)
from providers.aws_compute import AwsClients
from providers.commitment import Commitment, CommitmentKind
from providers.gcp_clients import GoogleEndpoint
from providers.gcp_commitments import (
    CudOverride,
    GcpCommitmentError,
    ResourcePrice,
    fetch_gcp_commitments,
    machine_series,
    rate_book_prices,
)
from providers.gcp_prices import rate_book
from providers.gcp_skus import COMPUTE_SERVICE_ID, fetch_skus
from tests.fakes.aws_savingsplans import FakeSavingsPlans, plan_rate, savings_plan
from tests.fakes.google_compute import FakeCompute, us_central1_skus

PROJECT = "cud-project"
# Compute Engine list prices in us-central1 (the fake's SKUs add up to these).
A2_HIGHGPU_1G = 3.673385
N1_STANDARD_8_PLUS_T4 = 0.379998 + 0.35


# ---- AWS -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeSavingsPlans]:
    home: Path = tmp_path_factory.mktemp("aws-sp")
    with FakeSavingsPlans(page_size=2) as fake, pytest.MonkeyPatch.context() as mp:
        for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ENDPOINT_URL"):
            mp.delenv(var, raising=False)
        mp.setenv("AWS_ACCESS_KEY_ID", "testing")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
        mp.setenv("AWS_CONFIG_FILE", str(home / "config"))
        mp.setenv("AWS_SHARED_CREDENTIALS_FILE", str(home / "credentials"))
        mp.setenv("AWS_EC2_METADATA_DISABLED", "true")
        mp.setenv("AWS_ENDPOINT_URL_SAVINGSPLANS", fake.url)
        yield fake


@pytest.fixture
def sp(sp_server: FakeSavingsPlans) -> FakeSavingsPlans:
    sp_server.plans.clear()
    sp_server.rates.clear()
    sp_server.requests.clear()
    return sp_server


def _by_id(found: list[Commitment]) -> dict[str, Commitment]:
    return {c.id: c for c in found}


def test_active_plans_paged_typed_and_scoped(
    sp: FakeSavingsPlans, caplog: pytest.LogCaptureFixture
) -> None:
    compute = sp.add_plan(savings_plan("Compute", "12.5"))
    ec2 = sp.add_plan(
        savings_plan("EC2Instance", "30", region="us-east-1", family="p4d", term_seconds=94608000)
    )
    sp.add_plan(savings_plan("Compute", "4", state="retired"))
    sp.add_plan(savings_plan("Compute", "4", state="queued"))
    sage = sp.add_plan(savings_plan("SageMaker", "2"))
    later = sp.add_plan(savings_plan("Compute", "1.25", start="2026-06-01T00:00:00Z"))

    with caplog.at_level(logging.WARNING, logger="providers.aws_commitments"):
        found = _by_id(fetch_savings_plans(AwsClients()))

    assert set(found) == {compute["savingsPlanId"], ec2["savingsPlanId"], later["savingsPlanId"]}
    c, e = found[compute["savingsPlanId"]], found[ec2["savingsPlanId"]]
    assert (c.kind, c.regions, c.family) == (CommitmentKind.AWS_COMPUTE_SP, [], None)
    assert (e.kind, e.regions, e.family) == (
        CommitmentKind.AWS_EC2_INSTANCE_SP,
        ["us-east-1"],
        "p4d",
    )
    assert (c.hourly_commitment, e.hourly_commitment) == (12.5, 30.0)
    assert c.start == datetime(2026, 1, 1, tzinfo=UTC) and c.end == datetime(2027, 1, 1, tzinfo=UTC)
    assert found[later["savingsPlanId"]].start == datetime(2026, 6, 1, tzinfo=UTC)
    # No override and no prices: the documented term defaults (1 year 30%, 3 years 50%).
    assert (c.discount, e.discount) == (0.30, 0.50)
    assert all(x.source.startswith("savingsplans") for x in found.values())
    # SageMaker is skipped, and says so.
    assert any(
        sage["savingsPlanId"] in r.message and "SageMaker" in r.message for r in caplog.records
    )
    # The state filter is sent, and the pages are followed by nextToken.
    calls = sp.calls("DescribeSavingsPlans")
    assert all(r.body["states"] == ["active"] for r in calls)
    assert [r.body.get("nextToken") for r in calls] == [None, "2"]
    assert sp.calls("DescribeSavingsPlanRates") == []


def test_caller_discounts_by_id_or_arn_win(sp: FakeSavingsPlans) -> None:
    a = sp.add_plan(savings_plan("Compute", "5"))
    b = sp.add_plan(savings_plan("EC2Instance", "5", region="us-west-2", family="g5"))
    discounts = {a["savingsPlanId"]: 0.42, b["savingsPlanArn"]: 0.61}
    found = _by_id(fetch_savings_plans(AwsClients(), discounts=discounts))
    assert found[a["savingsPlanId"]].discount == 0.42
    assert found[b["savingsPlanId"]].discount == 0.61


def test_discount_derived_from_the_plans_rates(sp: FakeSavingsPlans) -> None:
    on_demand = {
        ("us-east-1", "p4d.24xlarge"): 40.0,
        ("us-east-1", "p5.48xlarge"): 100.0,
        ("us-west-2", "p4d.24xlarge"): 10.0,
        ("us-west-2", "g5.xlarge"): 1.0,
    }
    asked: list[tuple[str, str]] = []

    def price(region: str, instance_type: str) -> float | None:
        asked.append((region, instance_type))
        return on_demand.get((region, instance_type))

    compute = sp.add_plan(
        savings_plan("Compute", "50"),
        rates=[
            plan_rate("p4d.24xlarge", "us-east-1", 24.0),  # 40% off
            plan_rate("p5.48xlarge", "us-east-1", 30.0),  # 70% off
            plan_rate("p4d.24xlarge", "us-west-2", 7.0),  # 30% off
            plan_rate("g5.xlarge", "us-west-2", 0.1),  # a type the caller does not run
            plan_rate("p4d.24xlarge", "eu-west-1", 1.0),  # a region the caller does not use
            plan_rate("p5.48xlarge", "us-east-1", 1.0, productDescription="Windows"),
        ],
    )
    ec2 = sp.add_plan(
        savings_plan("EC2Instance", "20", region="us-east-1", family="p4d"),
        rates=[plan_rate("p4d.24xlarge", "us-east-1", 18.0)],  # 55% off
    )
    m5 = sp.add_plan(
        savings_plan("EC2Instance", "3", region="us-east-1", family="m5"),
        rates=[plan_rate("m5.xlarge", "us-east-1", 0.1)],
    )
    found = _by_id(
        fetch_savings_plans(
            AwsClients(),
            on_demand=price,
            instance_types=["p4d.24xlarge", "p5.48xlarge"],
            regions=["us-east-1", "us-west-2"],
        )
    )
    # Median of 40%, 70%, 30% (not their mean): the g5, eu-west-1 and Windows rates never count.
    assert found[compute["savingsPlanId"]].discount == pytest.approx(0.40)
    # An EC2 Instance plan is asked only about its own family in its own region.
    assert found[ec2["savingsPlanId"]].discount == pytest.approx(0.55)
    # A family the scheduler does not run gives no rates: the term default.
    assert found[m5["savingsPlanId"]].discount == 0.30
    rate_calls = sp.calls("DescribeSavingsPlanRates")
    assert {r.body["savingsPlanId"] for r in rate_calls} == {
        compute["savingsPlanId"],
        ec2["savingsPlanId"],
    }
    ec2_filters = next(
        {f["name"]: f["values"] for f in r.body["filters"]}
        for r in rate_calls
        if r.body["savingsPlanId"] == ec2["savingsPlanId"]
    )
    assert ec2_filters["instanceType"] == ["p4d.24xlarge"]
    assert ec2_filters["region"] == ["us-east-1"]
    assert ec2_filters["productDescription"] == ["Linux/UNIX"]
    # The Compute plan's 3 matching rates came on two pages.
    compute_calls = [r for r in rate_calls if r.body["savingsPlanId"] == compute["savingsPlanId"]]
    assert [r.body.get("nextToken") for r in compute_calls] == [None, "2"]
    # Each on-demand price is asked once per fetch, even when two plans share it.
    assert len(asked) == len(set(asked)) == 3


def test_rates_above_on_demand_are_ignored() -> None:
    rates = [
        plan_rate("p4d.24xlarge", "us-east-1", 45.0),
        plan_rate("p5.48xlarge", "us-east-1", 60.0),
    ]
    prices = {"p4d.24xlarge": 40.0, "p5.48xlarge": 100.0}
    assert plan_discount_from_rates("sp-1", rates, lambda r, t: prices[t]) == pytest.approx(0.40)
    assert plan_discount_from_rates("sp-1", rates, lambda r, t: None) is None


@pytest.mark.parametrize(
    ("plan", "words"),
    [
        (savings_plan("Compute", "lots", plan_id="sp-bad-amount"), "'lots' is not a $/h"),
        (savings_plan("Compute", plan_id="sp-no-amount", commitment=None), "None is not a $/h"),
        (savings_plan("Compute", "0", plan_id="sp-zero"), "is not > 0"),
        (savings_plan("Compute", plan_id="sp-no-end", end=None), "no end time"),
        (savings_plan("Compute", plan_id="sp-bad-start", start="soon"), "bad start 'soon'"),
        (
            savings_plan("Compute", plan_id="sp-backwards", start="2027-02-01T00:00:00Z"),
            "end must be after start",
        ),
        (
            savings_plan("EC2Instance", plan_id="sp-no-family", region="us-east-1"),
            "without region/ec2InstanceFamily",
        ),
    ],
)
def test_bad_plans_are_errors_naming_the_plan(
    sp: FakeSavingsPlans, plan: dict[str, Any], words: str
) -> None:
    sp.add_plan(savings_plan("Compute", "1"))  # a good plan does not hide a bad one
    sp.add_plan(plan)
    with pytest.raises(AwsCommitmentError) as err:
        fetch_savings_plans(AwsClients())
    assert plan["savingsPlanId"] in str(err.value)
    assert words in str(err.value)


def test_plan_without_id_and_bad_override(sp: FakeSavingsPlans) -> None:
    sp.add_plan(savings_plan("Compute", savingsPlanId=None))
    with pytest.raises(AwsCommitmentError, match="without savingsPlanId"):
        fetch_savings_plans(AwsClients())
    sp.plans.clear()
    good = sp.add_plan(savings_plan("Compute", "1"))
    with pytest.raises(AwsCommitmentError, match=good["savingsPlanId"]):
        fetch_savings_plans(AwsClients(), discounts={good["savingsPlanId"]: 1.5})


def test_non_usd_plans_are_skipped(sp: FakeSavingsPlans, caplog: pytest.LogCaptureFixture) -> None:
    eur = sp.add_plan(savings_plan("Compute", "3", currency="EUR"))
    with caplog.at_level(logging.WARNING, logger="providers.aws_commitments"):
        assert fetch_savings_plans(AwsClients()) == []
    assert any(eur["savingsPlanId"] in r.message and "EUR" in r.message for r in caplog.records)


# ---- GCP -----------------------------------------------------------------------------------


def _res(kind: str, amount: int, accelerator: str | None = None) -> dict[str, Any]:
    res: dict[str, Any] = {"type": kind, "amount": str(amount)}
    if accelerator:
        res["acceleratorType"] = accelerator
    return res


def _cud(name: str, cud_type: str, resources: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": cud_type, "resources": resources, **extra}


A2_1G = [_res("VCPU", 12), _res("MEMORY", 85 * 1024), _res("ACCELERATOR", 1, "nvidia-tesla-a100")]
N1_8_T4 = [_res("VCPU", 8), _res("MEMORY", 30 * 1024), _res("ACCELERATOR", 1, "nvidia-tesla-t4")]


@pytest.fixture(scope="module")
def gce() -> Iterator[FakeCompute]:
    fake = FakeCompute(PROJECT, skus=us_central1_skus())
    for zone in ("us-central1-a", "europe-west4-a", "asia-east1-a"):
        fake.add_zone(zone)
    add = fake.add_commitment
    add("us-central1", {"name": "a2-1y", "type": "ACCELERATOR_OPTIMIZED", "resources": A2_1G})
    add(
        "us-central1",
        {
            "name": "t4-3y",
            "type": "GENERAL_PURPOSE",
            "plan": "THIRTY_SIX_MONTH",
            "resources": N1_8_T4,
            "startTimestamp": "2025-03-01T00:00:00.000-08:00",
            "endTimestamp": "2028-03-01T00:00:00.000-08:00",
        },
    )
    add("us-central1", _cud("gone", "GENERAL_PURPOSE", N1_8_T4, status="EXPIRED"))
    add("us-central1", _cud("soon", "ACCELERATOR_OPTIMIZED", A2_1G, status="NOT_YET_ACTIVE"))
    license_body = {"license": "sles-15", "amount": "2"}
    add(
        "us-central1",
        _cud("sles", "GENERAL_PURPOSE", [], category="LICENSE", licenseResource=license_body),
    )
    add(
        "us-central1",
        _cud("mem", "MEMORY_OPTIMIZED", [_res("VCPU", 40), _res("MEMORY", 961 * 1024)]),
    )
    add(
        "europe-west4",
        _cud("n2-eu", "GENERAL_PURPOSE_N2", [_res("VCPU", 16), _res("MEMORY", 64 * 1024)]),
    )
    with fake:
        yield fake


@pytest.fixture(scope="module")
def endpoint(gce: FakeCompute) -> GoogleEndpoint:
    return GoogleEndpoint(api_endpoint=gce.url, anonymous=True)


@pytest.fixture(scope="module")
def price(endpoint: GoogleEndpoint) -> ResourcePrice:
    skus, _ = fetch_skus(endpoint, COMPUTE_SERVICE_ID)
    return rate_book_prices(rate_book(skus))


def test_gcp_active_resource_cuds_in_asked_regions(
    gce: FakeCompute,
    endpoint: GoogleEndpoint,
    price: ResourcePrice,
    caplog: pytest.LogCaptureFixture,
) -> None:
    gce.requests.clear()
    with caplog.at_level(logging.WARNING, logger="providers.gcp_commitments"):
        found = _by_id(fetch_gcp_commitments(PROJECT, ["us-central1"], endpoint, price=price))
    assert set(found) == {"a2-1y", "t4-3y"}  # not expired, not yet active, not europe
    a2, t4 = found["a2-1y"], found["t4-3y"]
    assert (a2.kind, a2.regions, a2.family) == (
        CommitmentKind.GCP_RESOURCE_CUD,
        ["us-central1"],
        "A100",
    )
    assert (t4.regions, t4.family) == (["us-central1"], "T4")
    assert (a2.discount, t4.discount) == (0.37, 0.55)
    # What it covers is what the committed machine costs on demand.
    assert a2.capacity == pytest.approx(A2_HIGHGPU_1G, rel=1e-5)
    assert t4.capacity == pytest.approx(N1_STANDARD_8_PLUS_T4, rel=1e-5)
    assert a2.hourly_commitment == pytest.approx(0.63 * A2_HIGHGPU_1G, rel=1e-5)
    assert t4.start == datetime(2025, 3, 1, 8, tzinfo=UTC)
    assert t4.end == datetime(2028, 3, 1, 8, tzinfo=UTC)
    skipped = " ".join(r.message for r in caplog.records)
    assert "sles skipped: a license commitment" in skipped
    assert "mem skipped: type 'MEMORY_OPTIMIZED' is not one machine series" in skipped
    listed = [r for r in gce.requests if r.path.endswith("/commitments")]
    assert {r.path for r in listed} == {
        f"/compute/v1/projects/{PROJECT}/regions/us-central1/commitments"
    }
    assert all(r.arg("filter") == 'status = "ACTIVE"' for r in listed)
    assert len(listed) > 1  # four ACTIVE in us-central1, pages of two


def test_gcp_aggregated_when_no_regions(endpoint: GoogleEndpoint, price: ResourcePrice) -> None:
    overrides = {"n2-eu": CudOverride(hourly_commitment=0.5)}
    found = _by_id(fetch_gcp_commitments(PROJECT, None, endpoint, price=price, overrides=overrides))
    assert set(found) == {"a2-1y", "t4-3y", "n2-eu"}
    n2 = found["n2-eu"]
    assert (n2.regions, n2.family, n2.hourly_commitment, n2.discount) == (
        ["europe-west4"],
        "n2",
        0.5,
        0.37,
    )


def test_gcp_without_prices_needs_the_hourly_from_the_caller(endpoint: GoogleEndpoint) -> None:
    with pytest.raises(GcpCommitmentError, match=r"commitment a2-1y in us-central1.*gives no \$/h"):
        fetch_gcp_commitments(PROJECT, ["us-central1"], endpoint)
    overrides: Mapping[str, CudOverride] = {
        "a2-1y": CudOverride(hourly_commitment=2.0, discount=0.4),
        "us-central1/t4-3y": CudOverride(hourly_commitment=0.3),
    }
    found = _by_id(fetch_gcp_commitments(PROJECT, ["us-central1"], endpoint, overrides=overrides))
    assert (found["a2-1y"].hourly_commitment, found["a2-1y"].discount) == (2.0, 0.4)
    assert (found["t4-3y"].hourly_commitment, found["t4-3y"].discount) == (0.3, 0.55)


def test_gcp_unpriceable_resources_are_named(
    gce: FakeCompute, endpoint: GoogleEndpoint, price: ResourcePrice
) -> None:
    odd_gpu = [_res("ACCELERATOR", 2, "nvidia-rtx-pro-6000")]
    gce.add_commitment("asia-east1", _cud("odd-gpu", "GENERAL_PURPOSE", odd_gpu))
    gce.add_commitment(
        "asia-east1", _cud("odd-plan", "GENERAL_PURPOSE", [_res("VCPU", 2)], plan="INVALID")
    )
    try:
        with pytest.raises(GcpCommitmentError, match="odd-gpu: no on-demand price for 2 x nvidia"):
            fetch_gcp_commitments(PROJECT, ["asia-east1"], endpoint, price=price)
        with pytest.raises(GcpCommitmentError, match="odd-plan: no discount for plan 'INVALID'"):
            fetch_gcp_commitments(
                PROJECT,
                ["asia-east1"],
                endpoint,
                overrides={"odd-gpu": CudOverride(hourly_commitment=1.0)},
            )
    finally:
        del gce.commitments["asia-east1"]


@pytest.mark.parametrize(
    ("cud_type", "series"),
    [
        ("GENERAL_PURPOSE", "n1"),
        ("GENERAL_PURPOSE_N2D", "n2d"),
        ("ACCELERATOR_OPTIMIZED", "a2"),
        ("ACCELERATOR_OPTIMIZED_A3_MEGA", "a3"),
        ("GRAPHICS_OPTIMIZED", "g2"),
        ("MEMORY_OPTIMIZED_X4_16TB", "x4"),
        ("MEMORY_OPTIMIZED", None),
        ("TYPE_UNSPECIFIED", None),
    ],
)
def test_machine_series(cud_type: str, series: str | None) -> None:
    assert machine_series(cud_type) == series
