"""The GCP Compute Engine provider against a local Compute + Billing fake, over HTTP."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jobs.accelerators import GPUS
from providers.gcp import GcpPriceFeed, gcp_feed
from providers.gcp_clients import GoogleEndpoint
from providers.gcp_prices import (
    GPU_NAMES,
    MachineShape,
    SkuComponent,
    SkuRole,
    billing_family,
    canonical_accelerator,
    gcp_accelerator_type,
    machine_shape,
    machine_type_filter,
    n1_host,
    price_vm,
    rate_book,
    sku_role,
)
from providers.gcp_skus import SkuPrice, parse_skus, sku_from_dict
from providers.offering import (
    InterruptionSource,
    MarketKind,
    OfferedAccelerator,
    Offering,
    PriceSource,
)
from tests.fakes.gcp_env import NOW, PROJECT, gcp_fake, offering_of
from tests.fakes.google_compute import FakeCompute, sku, us_central1_skus

SHARED = Path(__file__).resolve().parent.parent / ".." / "shared" / "data"
LABEL_RE = re.compile(r"[a-z][a-z0-9_-]{0,62}")
VALUE_RE = re.compile(r"[a-z0-9_-]{0,63}")
GCE_NAME_RE = re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?")


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeCompute]:
    yield from gcp_fake()


@pytest.fixture(scope="module")
def endpoint(fake: FakeCompute) -> GoogleEndpoint:
    return GoogleEndpoint(api_endpoint=fake.url, anonymous=True)


@pytest.fixture(scope="module")
def offerings(endpoint: GoogleEndpoint) -> list[Offering]:
    return GcpPriceFeed(PROJECT, endpoint, spot_interruption_rate=0.07).fetch(["us-central1"], NOW)


@pytest.fixture(scope="module")
def book() -> dict[Any, SkuPrice]:
    prices, problems = parse_skus(us_central1_skus())
    assert problems == []
    return rate_book(prices)


# ---- names and SKU descriptions ------------------------------------------------------------


def test_canonical_accelerator_names() -> None:
    expected = {
        "nvidia-tesla-a100": "A100",
        "nvidia-a100-80gb": "A100-80GB",
        "nvidia-h100-80gb": "H100",
        "nvidia-h100-mega-80gb": "H100-MEGA",
        "nvidia-l4": "L4",
        "nvidia-tesla-t4": "T4",
        "nvidia-tesla-v100": "V100",
        "nvidia-tesla-p100": "P100",
        "nvidia-h200-141gb": "H200",
        "nvidia-b200": "B200",
    }
    for gcp, ours in expected.items():
        assert canonical_accelerator(gcp) == ours
        assert canonical_accelerator(f"zones/us-central1-a/acceleratorTypes/{gcp}") == ours
        assert gcp_accelerator_type(ours) == gcp
    assert all(name.lower() in GPUS for name in GPU_NAMES.values())
    assert canonical_accelerator("nvidia-rtx-pro-6000") is None


@pytest.mark.parametrize(
    ("description", "role"),
    [
        ("A2 Instance Core running in Americas", SkuRole(SkuComponent.CORE, "a2")),
        ("A2 Instance Ram running in Americas", SkuRole(SkuComponent.RAM, "a2")),
        (
            "Spot Preemptible A2 Instance Core running in Belgium",
            SkuRole(SkuComponent.CORE, "a2", spot=True),
        ),
        ("A3 Instance Core running in Americas", SkuRole(SkuComponent.CORE, "a3")),
        ("A3Plus Instance Ram running in Americas", SkuRole(SkuComponent.RAM, "a3plus")),
        ("G2 Instance Core running in Frankfurt", SkuRole(SkuComponent.CORE, "g2")),
        ("N1 Predefined Instance Core running in Americas", SkuRole(SkuComponent.CORE, "n1")),
        ("N1 Predefined Instance Ram running in Virginia", SkuRole(SkuComponent.RAM, "n1")),
        ("Nvidia Tesla A100 GPU running in Americas", SkuRole(SkuComponent.GPU, "A100")),
        ("Nvidia Tesla A100 80GB GPU running in Americas", SkuRole(SkuComponent.GPU, "A100-80GB")),
        ("Nvidia H100 80GB GPU running in Americas", SkuRole(SkuComponent.GPU, "H100")),
        ("Nvidia H100 80GB Mega GPU running in Tokyo", SkuRole(SkuComponent.GPU, "H100-MEGA")),
        ("H200 141GB GPU running in Belgium", SkuRole(SkuComponent.GPU, "H200")),
        ("A4 Nvidia B200 (1 gpu slice) running in Americas", SkuRole(SkuComponent.GPU, "B200")),
        ("A3Ultra Instance Core running in Americas", SkuRole(SkuComponent.CORE, "a3ultra")),
        ("A4 Instance Ram running in Americas", SkuRole(SkuComponent.RAM, "a4")),
        ("Nvidia L4 GPU running in Netherlands", SkuRole(SkuComponent.GPU, "L4")),
        ("Nvidia Tesla T4 GPU running in Americas", SkuRole(SkuComponent.GPU, "T4")),
        ("Nvidia Tesla V100 GPU running in Americas", SkuRole(SkuComponent.GPU, "V100")),
        (
            "Nvidia Tesla T4 GPU attached to Spot Preemptible VMs running in Warsaw",
            SkuRole(SkuComponent.GPU, "T4", spot=True),
        ),
        (
            "Spot Preemptible Nvidia Tesla T4 GPU running in Americas",
            SkuRole(SkuComponent.GPU, "T4", spot=True),
        ),
        ("SSD backed Local Storage", SkuRole(SkuComponent.LOCAL_SSD, "")),
        # Not the price of a plain VM part:
        ("Commitment v1: A2 Cpu in Americas for 1 Year", None),
        ("Commitment v1: Nvidia Tesla A100 GPU running in Americas for 1 Year", None),
        ("Reserved A2 Instance Core in Americas", None),
        ("DWS Defined Duration A3 Core running in Americas", None),
        ("N2 Custom Instance Core running in Americas", None),
        ("A2 Custom Instance Core running in Americas", None),
        ("C3 Sole Tenancy Instance Core running in Americas", None),
        ("Nvidia Tesla T4 Virtual Workstation GPU running in Americas", None),
        ("Nvidia Tesla T4 GPU attached to Sole Tenancy VMs running in Americas", None),
        ("Nvidia L40 GPU running in Netherlands", None),
        ("N2 Instance Core running in Americas", None),
    ],
)
def test_sku_role_reads_descriptions(description: str, role: SkuRole | None) -> None:
    assert sku_role(description) == role


def test_billing_family_per_machine_type() -> None:
    assert billing_family("a2-highgpu-1g") == "a2"
    assert billing_family("a2-ultragpu-8g") == "a2"
    assert billing_family("a3-highgpu-8g") == "a3"
    assert billing_family("a3-megagpu-8g") == "a3plus"
    assert billing_family("a3-ultragpu-8g") == "a3ultra"
    assert billing_family("g2-standard-48") == "g2"
    assert billing_family("n1-standard-8") == "n1"
    assert billing_family("e2-standard-4") is None


def test_machine_shape_from_rest() -> None:
    shape = machine_shape(
        {
            "name": "a3-highgpu-8g",
            "guestCpus": 208,
            "memoryMb": 1916928,
            "accelerators": [
                {"guestAcceleratorType": "nvidia-h100-80gb", "guestAcceleratorCount": 8}
            ],
            "bundledLocalSsds": {"partitionCount": 16},
        }
    )
    assert shape == MachineShape("a3-highgpu-8g", 208, 1872.0, "H100", 8, 6000)
    plain = machine_shape({"name": "n1-standard-8", "guestCpus": 8, "memoryMb": 30720})
    assert (plain.gpu, plain.gpu_count, plain.memory_gib) == (None, 0, 30.0)


# ---- composing prices ----------------------------------------------------------------------


def test_price_composition_worked_example(book: dict[Any, SkuPrice]) -> None:
    region = "us-central1"
    a2 = MachineShape("a2-highgpu-1g", 12, 85.0, "A100", 1)
    on_demand = price_vm(book, region, MarketKind.ON_DEMAND, a2, "A100", 1)
    assert on_demand is not None
    assert on_demand.usd_per_hour == pytest.approx(12 * 0.031611 + 85 * 0.004237 + 2.933908)
    assert on_demand.sku_ids == ("A2-CORE", "A2-RAM", "A100")
    spot = price_vm(book, region, MarketKind.SPOT, a2, "A100", 1)
    assert spot is not None
    assert spot.usd_per_hour == pytest.approx(12 * 0.0123 + 85 * 0.00165 + 1.64017)
    assert spot.sku_ids == ("A2-CORE-S", "A2-RAM-S", "A100-S")

    host = MachineShape("n1-standard-16", 16, 60.0)
    t4 = price_vm(book, region, MarketKind.SPOT, host, "T4", 2)
    assert t4 is not None
    assert t4.usd_per_hour == pytest.approx(16 * 0.0107 + 60 * 0.001614 + 2 * 0.14)

    ultra = MachineShape("a2-ultragpu-1g", 12, 170.0, "A100-80GB", 1, local_ssd_gib=375)
    with_ssd = price_vm(book, region, MarketKind.ON_DEMAND, ultra, "A100-80GB", 1)
    assert with_ssd is not None
    parts = 12 * 0.031611 + 170 * 0.004237 + 3.92808 + 375 * 0.08 / 730
    assert with_ssd.usd_per_hour == pytest.approx(parts)


def test_a_missing_part_means_no_price(book: dict[Any, SkuPrice]) -> None:
    a3 = MachineShape("a3-highgpu-1g", 26, 234.0, "H100", 1)
    assert price_vm(book, "us-central1", MarketKind.ON_DEMAND, a3, "H100", 1) is not None
    # No spot A3 core/RAM or spot H100 SKU in the fake: no spot price at all, not a cheap one.
    assert price_vm(book, "us-central1", MarketKind.SPOT, a3, "H100", 1) is None
    a2 = MachineShape("a2-highgpu-1g", 12, 85.0, "A100", 1)
    assert price_vm(book, "europe-west4", MarketKind.ON_DEMAND, a2, "A100", 1) is None


def test_rate_book_skips_other_units_and_keeps_newest() -> None:
    old = sku("OLD", "Nvidia Tesla T4 GPU running in Americas", "OnDemand", "h", 0.40)
    new = sku("NEW", "Nvidia Tesla T4 GPU running in Americas", "OnDemand", "h", 0.35)
    new["pricingInfo"][0]["effectiveTime"] = "2026-09-01T00:00:00Z"
    monthly = sku("MO", "A2 Instance Core running in Americas", "OnDemand", "h.mo", 20.0)
    book = rate_book(sku_from_dict(d) for d in (new, old, monthly))
    assert book[("us-central1", MarketKind.ON_DEMAND, SkuComponent.GPU, "T4")].sku_id == "NEW"
    assert ("us-central1", MarketKind.ON_DEMAND, SkuComponent.CORE, "a2") not in book


def test_composition_matches_published_totals(book: dict[Any, SkuPrice]) -> None:
    """Google's published machine prices (via the Cloud Billing Catalog, compiled by
    gcloud-compute.com) are exactly these sums, local SSD included."""
    path = SHARED / "gcp-pricing-cyclenerd" / "gcp_instance_prices_by_region_2026-07-30.csv"
    if not path.exists():
        pytest.skip(f"{path} not present")
    with path.open() as fh:
        published = {
            r["machine_type"]: float(r["hour_ondemand_usd"])
            for r in csv.DictReader(fh)
            if r["region"] == "us-central1"
        }
    shapes = [
        (MachineShape("a2-highgpu-1g", 12, 85.0, "A100", 1), "A100", 1),
        (MachineShape("a2-ultragpu-1g", 12, 170.0, "A100-80GB", 1, 375), "A100-80GB", 1),
        (MachineShape("g2-standard-4", 4, 16.0, "L4", 1), "L4", 1),
    ]
    for shape, gpu, n in shapes:
        price = price_vm(book, "us-central1", MarketKind.ON_DEMAND, shape, gpu, n)
        assert price is not None
        assert price.usd_per_hour == pytest.approx(published[shape.name], abs=1e-4), shape.name


# ---- the feed against the fake -------------------------------------------------------------


def test_feed_offers_gpu_shapes_per_zone_and_market(offerings: list[Offering]) -> None:
    shapes = {
        (o.zone, o.instance_type, o.accelerators.name, o.accelerators.count, o.market)
        for o in offerings
        if o.accelerators
    }
    od, spot = MarketKind.ON_DEMAND, MarketKind.SPOT
    a = "us-central1-a"
    assert shapes == {
        (a, "a2-highgpu-1g", "A100", 1, od),
        (a, "a2-highgpu-1g", "A100", 1, spot),
        (a, "a2-ultragpu-1g", "A100-80GB", 1, od),
        (a, "a3-highgpu-1g", "H100", 1, od),
        (a, "g2-standard-4", "L4", 1, od),
        ("us-central1-b", "g2-standard-4", "L4", 1, od),
        *((a, n1_host(n), "T4", n, m) for n in (1, 2, 4) for m in (od, spot)),
        *((a, n1_host(n), "V100", n, od) for n in (1, 2, 4, 8)),
    }
    assert len(shapes) == len(offerings)
    assert {o.cloud for o in offerings} == {"gcp"}
    assert {o.region for o in offerings} == {"us-central1"}


def test_feed_offering_fields(offerings: list[Offering]) -> None:
    a2 = offering_of(offerings, "a2-highgpu-1g", "on_demand")
    assert a2.accelerators == OfferedAccelerator(name="A100", count=1, memory_gb=40)
    assert (a2.vcpus, a2.memory_gb) == (12, 85)
    assert a2.price_per_hour == pytest.approx(3.673385)
    assert (a2.price_source, a2.as_of) == (PriceSource.LIVE, NOW)
    assert a2.source_detail.startswith("cloudbilling.googleapis.com")
    assert "A2-CORE" in a2.source_detail and "A100" in a2.source_detail
    assert (a2.interruption_rate, a2.interruption_source) == (0, InterruptionSource.NONE)

    spot = offering_of(offerings, "a2-highgpu-1g", "spot")
    assert spot.price_per_hour == pytest.approx(1.92802)
    assert spot.interruption_rate == 0.07
    assert spot.interruption_source is InterruptionSource.CONFIGURED

    t4 = offering_of(offerings, "n1-standard-32", "on_demand", "T4", 4)
    assert (t4.vcpus, t4.memory_gb) == (32, 120)
    assert t4.price_per_hour == pytest.approx(32 * 0.031611 + 120 * 0.004237 + 4 * 0.35)


def test_feed_requests(fake: FakeCompute, offerings: list[Offering]) -> None:
    assert offerings
    paths = {r.path for r in fake.requests if r.method == "GET"}
    base = f"/compute/v1/projects/{PROJECT}"
    assert f"{base}/zones" in paths
    assert f"{base}/zones/us-central1-a/machineTypes" in paths
    assert f"{base}/zones/us-central1-a/acceleratorTypes" in paths
    assert not any("europe-west4" in p or "us-central1-c" in p for p in paths)
    filters = {r.arg("filter") for r in fake.requests if r.path.endswith("/machineTypes")}
    assert filters == {machine_type_filter()}
    sku_pages = [r for r in fake.requests if r.path == "/v1/services/6F81-5844-456A/skus"]
    assert len(sku_pages) >= len(fake.skus) // fake.page_size


def test_spot_history_is_empty(endpoint: GoogleEndpoint) -> None:
    assert (
        gcp_feed(PROJECT, endpoint.api_endpoint, True).spot_history(
            ["a2-highgpu-1g"], ["us-central1"], NOW, NOW
        )
        == []
    )
