"""Cloud TPU: SKU matching and slice prices (pure), and the feed and nodes over a local fake
of the TPU API v2 and the Billing Catalog."""

from __future__ import annotations

import csv
import re
import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from providers.gcp_clients import GoogleEndpoint
from providers.gcp_skus import parse_skus
from providers.gcp_tpu import (
    GcpTpuPriceFeed,
    TpuSkuRole,
    ZoneSlices,
    build_tpu_offerings,
    slice_host,
    slice_rate,
    tpu_rate_book,
    tpu_sku_role,
    tpu_slice,
)
from providers.gcp_tpu_compute import (
    DEFAULT_RUNTIME_VERSIONS,
    GcpTpuCompute,
    TpuOperationError,
    instance_from_node,
    node_body,
    node_ids,
)
from providers.instances import InstanceState, LaunchRequest
from providers.offering import InterruptionSource, MarketKind, Offering, PriceSource
from tests.fakes.google_tpu import COMPUTE_SERVICE, FakeTpu, sku, tpu_skus

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
PROJECT = "test-project"
DATA = Path(__file__).resolve().parent.parent / ".." / "shared" / "data"
VMS_CSV = DATA / "gcp-catalog-anycloud" / "gcp" / "vms.csv"


def rate_book():
    prices, problems = parse_skus(tpu_skus())
    assert problems == []
    return tpu_rate_book(prices)


def offering(
    instance_type: str = "tpu-v5p-8",
    market: MarketKind = MarketKind.SPOT,
    zone: str = "us-central1-a",
    cloud: str = "gcp",
) -> Offering:
    return Offering(
        cloud=cloud,
        region=zone.rsplit("-", 1)[0],
        zone=zone,
        instance_type=instance_type,
        vcpus=208,
        memory_gb=448,
        market=market,
        price_per_hour=3.31,
        as_of=NOW,
        price_source=PriceSource.LIVE,
    )


def request(key: str, **kw: object) -> LaunchRequest:
    args: dict[str, object] = {"offering": offering(), "idempotency_key": key, "name": "train"}
    args.update(kw)
    return LaunchRequest(**args)


# ---- pure: SKUs, slices, prices ------------------------------------------------------------


@pytest.mark.parametrize(
    ("description", "role"),
    [
        ("TpuV5p running in Sao Paulo", TpuSkuRole("v5p")),
        ("TpuV6e running in Dallas", TpuSkuRole("v6e")),
        (
            "TpuV5e attached to Spot Preemptible VMs running in Singapore",
            TpuSkuRole("v5litepod", spot=True),
        ),
        ("Tpu-v4 Pod running in Americas", TpuSkuRole("v4", pod=True)),
        ("Preemptible Tpu-v2 running in Americas", TpuSkuRole("v2", spot=True)),
        ("Tpu-v3 Pod running in Americas", TpuSkuRole("v3", pod=True)),
        ("Reserved TpuV5p in Delhi in Calendar Mode", None),
        ("Commitment v1: TpuV5p running in Netherlands for 3 Years", None),
        ("TPU7x running in Americas", None),  # a generation we have no slice names for
        ("Nvidia H100 80GB GPU running in Americas", None),
    ],
)
def test_sku_descriptions(description: str, role: TpuSkuRole | None) -> None:
    assert tpu_sku_role(description) == role


def test_rate_book_is_per_chip() -> None:
    book = rate_book()
    # Per-chip SKUs stay as they are; v2/v3/v4 board SKUs (8 cores = 4 chips) are divided.
    assert book[("us-central1", "v5p", MarketKind.ON_DEMAND, False)].usd_per_chip_hour == 4.2
    assert book[("us-central1", "v2", MarketKind.ON_DEMAND, False)].usd_per_chip_hour == 1.125
    assert book[("us-central2", "v4", MarketKind.ON_DEMAND, True)].usd_per_chip_hour == 3.22
    # Spot from the Preemptible usage type, and from the description when the type says
    # OnDemand (the legacy Cloud TPU SKUs do that).
    spot = book[("us-central1", "v5p", MarketKind.SPOT, False)]
    assert (spot.sku_id, spot.usd_per_chip_hour) == ("V5P-S", 0.827568)
    assert book[("us-central1", "v2", MarketKind.SPOT, False)].sku_id == "V2-PRE"
    # The reservation, the commitment and TPU7x price nothing.
    assert {r.sku_id for r in book.values()}.isdisjoint({"V5P-RES", "V5P-3Y", "TPU7X"})


def test_rate_book_skips_other_groups_units_and_keeps_newest() -> None:
    prices, _ = parse_skus(
        [
            sku(
                "OLD",
                "TpuV6e running in Iowa",
                "OnDemand",
                ["us-central1"],
                3.0,
                effective="2025-01-01T00:00:00Z",
            ),
            sku("NEW", "TpuV6e running in Iowa", "OnDemand", ["us-central1"], 2.7),
            sku(
                "DISK",
                "TpuV6e running in Iowa",
                "OnDemand",
                ["us-central1"],
                9.0,
                resource_group="PDStandard",
            ),
            sku("MONTH", "TpuV6e running in Iowa", "OnDemand", ["us-central1"], 9.0, unit="mo"),
        ]
    )
    book = tpu_rate_book(prices)
    assert list(book) == [("us-central1", "v6e", MarketKind.ON_DEMAND, False)]
    assert book[("us-central1", "v6e", MarketKind.ON_DEMAND, False)].sku_id == "NEW"


def test_slice_names_and_chips() -> None:
    v5p = tpu_slice("v5p-8", "2x2x1")
    assert v5p is not None
    assert (v5p.name, v5p.api_type, v5p.generation, v5p.chips) == ("tpu-v5p-8", "v5p-8", "v5p", 4)
    assert v5p.memory_gb_per_chip == 95
    assert tpu_slice("v5litepod-8").chips == 8  # v5e counts chips, not cores
    assert tpu_slice("v4-32").chips == 16
    assert tpu_slice("v4-32", "2x2x8").chips == 32  # the API's topology wins over arithmetic
    assert tpu_slice("v7x-8") is None
    assert tpu_slice("v5p-7") is None  # not a whole number of chips


def test_slice_price_worked_examples() -> None:
    book = rate_book()
    v5p8 = tpu_slice("v5p-8", "2x2x1")
    # v5p-8 = 4 chips: 4 x $4.20 on demand, 4 x $0.827568 spot.
    zones = [ZoneSlices("us-central1-a", "us-central1", (v5p8,))]
    offers = {o.market: o for o in build_tpu_offerings(zones, book, NOW, 0.07)}
    assert offers[MarketKind.ON_DEMAND].price_per_hour == pytest.approx(16.80)
    assert offers[MarketKind.SPOT].price_per_hour == pytest.approx(3.310272)
    # A v2 board and a v2 pod slice have different per-chip rates: 4.50 vs 4 x 6.00.
    v2_8, v2_32 = tpu_slice("v2-8"), tpu_slice("v2-32")
    assert slice_rate(book, "us-central1", v2_8, MarketKind.ON_DEMAND).sku_id == "V2"
    assert slice_rate(book, "us-central1", v2_32, MarketKind.ON_DEMAND).sku_id == "V2-POD"
    zones = [ZoneSlices("us-central1-b", "us-central1", (v2_8, v2_32))]
    prices = {
        (o.instance_type, o.market): o.price_per_hour for o in build_tpu_offerings(zones, book, NOW)
    }
    assert prices[("tpu-v2-8", MarketKind.ON_DEMAND)] == pytest.approx(4.50)
    assert prices[("tpu-v2-32", MarketKind.ON_DEMAND)] == pytest.approx(24.00)
    # No pod spot SKU: no spot offer rather than a board rate that would undercut it.
    assert ("tpu-v2-32", MarketKind.SPOT) not in prices
    assert slice_rate(book, "europe-west4", v5p8, MarketKind.ON_DEMAND) is None


def test_host_shapes() -> None:
    assert slice_host("v5p", 4) == (208, 448)
    assert slice_host("v5p", 8) == (416, 896)  # two hosts make one node
    assert slice_host("v6e", 8) == (180, 1440)
    assert slice_host("v5litepod", 1) == (24, 48)
    assert slice_host("v5litepod", 16) == (448, 768)


@pytest.mark.skipif(not VMS_CSV.exists(), reason="shared catalog data not present")
def test_real_catalog_prices_slices_as_chip_rate_times_chips() -> None:
    """In a published per-zone TPU catalog, price / our chip count is one rate per zone,
    generation and market (v2/v3 boards and pods apart), across every slice size."""
    rates: dict[tuple[str, str, str, bool], list[float]] = defaultdict(list)
    with VMS_CSV.open() as f:
        for row in csv.DictReader(f):
            name = row["AcceleratorName"]
            if row["InstanceType"] or not name.startswith("tpu-"):
                continue
            tpu = tpu_slice(name.removeprefix("tpu-"))
            assert tpu is not None, name
            for col in ("Price", "SpotPrice"):
                if row[col] and float(row[col]) < 700:  # 700: the catalog's "no price"
                    pod = tpu.generation in ("v2", "v3") and tpu.chips > 4
                    key = (row["AvailabilityZone"], tpu.generation, col, pod)
                    rates[key].append(float(row[col]) / tpu.chips)
    assert len(rates) > 50
    for key, values in rates.items():
        assert max(values) == pytest.approx(min(values), rel=1e-3), key


def test_node_ids_are_stable_and_valid() -> None:
    a = node_ids(request("attempt-1", count=2, name="My Job_01"))
    assert a == node_ids(request("attempt-1", count=2, name="My Job_01"))
    assert a != node_ids(request("attempt-2", count=2, name="My Job_01"))
    assert [i.rsplit("-", 1)[1] for i in a] == ["0", "1"]
    long = node_ids(request("k", name="9" + "x" * 100))[0]
    for node_id in [*a, long]:
        assert re.fullmatch(r"[a-z][-a-z0-9]{0,61}[a-z0-9]", node_id), node_id
    assert long.startswith("s-9")


def test_node_body() -> None:
    spot = node_body(request("k", tags={"Team": "ML Research", "sched:job": "J-1"}))
    assert spot["acceleratorType"] == "v5p-8"
    assert spot["runtimeVersion"] == DEFAULT_RUNTIME_VERSIONS["v5p"]
    assert spot["schedulingConfig"] == {"spot": True}
    assert spot["labels"] == {"sched_job": "j-1", "team": "ml_research"}
    assert "metadata" not in spot
    od = node_body(
        request(
            "k",
            offering=offering("tpu-v6e-8", MarketKind.ON_DEMAND),
            image="v2-alpha-tpuv6e-custom",
            user_data="#!/bin/bash\nray start",
        )
    )
    assert "schedulingConfig" not in od
    assert od["runtimeVersion"] == "v2-alpha-tpuv6e-custom"
    assert od["metadata"] == {"startup-script": "#!/bin/bash\nray start"}
    assert node_body(request("k"), runtime_version="tpu-ubuntu2204-base")["runtimeVersion"] == (
        "tpu-ubuntu2204-base"
    )
    with pytest.raises(ValueError, match="not a TPU slice"):
        node_body(request("k", offering=offering("a2-highgpu-1g")))
    with pytest.raises(ValueError, match="'aws'"):
        node_body(request("k", offering=offering(cloud="aws")))


@pytest.mark.parametrize(
    ("state", "ours", "interrupted"),
    [
        ("CREATING", InstanceState.PENDING, False),
        ("READY", InstanceState.RUNNING, False),
        ("REPAIRING", InstanceState.PENDING, False),
        ("DELETING", InstanceState.STOPPING, False),
        ("STOPPED", InstanceState.TERMINATED, False),
        ("TERMINATED", InstanceState.TERMINATED, False),
        ("PREEMPTED", InstanceState.PREEMPTED, True),
    ],
)
def test_node_states(state: str, ours: InstanceState, interrupted: bool) -> None:
    inst = instance_from_node(
        {
            "name": "projects/p/locations/us-central1-a/nodes/n-1",
            "acceleratorType": "v5p-8",
            "state": state,
            "schedulingConfig": {"spot": True},
            "createTime": "2026-11-20T12:00:00Z",
        }
    )
    assert (inst.state, inst.interrupted) == (ours, interrupted)
    where = (inst.zone, inst.instance_id, inst.instance_type)
    assert where == ("us-central1-a", "n-1", "tpu-v5p-8")
    assert inst.spot and inst.launched_at == NOW


# ---- over the fake -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeTpu]:
    with FakeTpu(PROJECT, polls_to_done=3, page_size=2, skus=tpu_skus()) as f:
        f.add_zone(
            "us-central1-a",
            {
                "v5p-8": "2x2x1",
                "v5p-16": "2x2x2",
                "v5litepod-8": "2x4",
                "v6e-8": "2x4",
                "v2-8": "2x2",
                "v7x-8": "2x2x1",
            },
        )
        f.add_zone("us-central2-b", {"v4-8": "2x2x1", "v4-32": "2x2x4"})
        f.add_zone("europe-west4-a", {"v5p-8": "2x2x1"})
        yield f


@pytest.fixture
def endpoint(fake: FakeTpu) -> GoogleEndpoint:
    return GoogleEndpoint(api_endpoint=fake.url, anonymous=True)


@pytest.fixture
def compute(endpoint: GoogleEndpoint) -> GcpTpuCompute:
    return GcpTpuCompute(PROJECT, endpoint, poll_interval=0.01, launch_wait_s=5)


def test_feed_lists_slices_per_zone_and_prices_them(
    fake: FakeTpu, endpoint: GoogleEndpoint
) -> None:
    start = len(fake.requests)
    feed = GcpTpuPriceFeed(PROJECT, endpoint, spot_interruption_rate=0.08)
    offers = feed.fetch(["us-central1", "us-central2"], NOW)
    paths = [r.path for r in fake.requests[start:]]
    assert {o.zone for o in offers} == {"us-central1-a", "us-central2-b"}  # not europe-west4
    # Accelerator types came page by page (page size 2).
    assert paths.count(f"/v2/projects/{PROJECT}/locations/us-central1-a/acceleratorTypes") == 3
    assert f"/v1/services/{COMPUTE_SERVICE}/skus" in paths
    assert "/v1/services/E000-3F24-B8AA/skus" in paths
    by_key = {(o.zone, o.instance_type, o.market): o for o in offers}
    spot = by_key[("us-central1-a", "tpu-v5p-8", MarketKind.SPOT)]
    assert spot.price_per_hour == pytest.approx(3.310272)
    assert spot.accelerators is not None
    assert (spot.accelerators.name, spot.accelerators.count, spot.accelerators.memory_gb) == (
        "tpu-v5p-8",
        1,
        95,
    )
    assert (spot.vcpus, spot.memory_gb) == (208, 448)
    assert spot.interruption_rate == 0.08
    assert spot.interruption_source is InterruptionSource.CONFIGURED
    assert spot.price_source is PriceSource.LIVE and spot.as_of == NOW
    assert "V5P-S" in spot.source_detail
    assert by_key[("us-central1-a", "tpu-v5p-16", MarketKind.ON_DEMAND)].price_per_hour == (
        pytest.approx(33.6)
    )
    assert by_key[("us-central2-b", "tpu-v4-32", MarketKind.ON_DEMAND)].price_per_hour == (
        pytest.approx(16 * 3.22)
    )
    od = by_key[("us-central1-a", "tpu-v6e-8", MarketKind.ON_DEMAND)]
    assert (od.price_per_hour, od.interruption_rate) == (pytest.approx(21.6), 0.0)
    assert not any("v7x" in o.instance_type for o in offers)
    assert feed.spot_history(["tpu-v5p-8"], ["us-central1"], NOW, NOW) == []


def test_feed_with_given_zones_skips_locations(fake: FakeTpu, endpoint: GoogleEndpoint) -> None:
    start = len(fake.requests)
    feed = GcpTpuPriceFeed(PROJECT, endpoint, zones=["us-central2-b", "europe-west4-a"])
    offers = feed.fetch(["us-central2"], NOW)
    assert {o.instance_type for o in offers} == {"tpu-v4-8", "tpu-v4-32"}
    assert not any(r.path.endswith("/locations") for r in fake.requests[start:])


def test_launch_spot_waits_for_the_operation(fake: FakeTpu, compute: GcpTpuCompute) -> None:
    start = len(fake.requests)
    req = request("spot-1", tags={"Team": "ML Research", "sched:job": "J-1"}, user_data="echo hi")
    [inst] = compute.launch(req)
    sent = fake.requests[start:]
    [create] = [r for r in sent if r.method == "POST"]
    assert create.arg("nodeId") == node_ids(req)[0]
    assert create.body["schedulingConfig"] == {"spot": True}
    assert create.body["labels"] == {"sched_job": "j-1", "team": "ml_research"}
    assert create.body["metadata"] == {"startup-script": "echo hi"}
    assert create.body["runtimeVersion"] == "v2-alpha-tpuv5"
    polls = [r for r in sent if "/operations/" in r.path]
    assert len(polls) == 3  # the fake finishes on the third read
    assert inst.state is InstanceState.RUNNING and inst.spot and not inst.interrupted
    assert inst.instance_type == "tpu-v5p-8" and inst.zone == "us-central1-a"
    assert inst.private_ip and inst.public_ip
    assert inst.tags == {"sched_job": "j-1", "team": "ml_research"}


def test_retried_launch_makes_one_node(fake: FakeTpu, compute: GcpTpuCompute) -> None:
    req = request("retry-1", offering=offering("tpu-v6e-8", MarketKind.ON_DEMAND))
    before = len(fake.nodes)
    first = compute.launch(req)
    start = len(fake.requests)
    second = compute.launch(req)
    assert [i.instance_id for i in first] == [i.instance_id for i in second]
    assert len(fake.nodes) == before + 1
    posts = [r for r in fake.requests[start:] if r.method == "POST"]
    assert len(posts) == 1  # it asked, heard ALREADY_EXISTS, and took the node
    assert second[0].state is InstanceState.RUNNING and not second[0].spot


def test_retry_while_first_node_is_still_creating(fake: FakeTpu, endpoint: GoogleEndpoint) -> None:
    req = request("retry-2")
    node_id = node_ids(req)[0]
    # A first try whose caller died before waiting: the node exists, still CREATING.
    impatient = GcpTpuCompute(PROJECT, endpoint, poll_interval=0.01, launch_wait_s=0)
    [creating] = impatient.launch(req)
    assert creating.state is InstanceState.PENDING  # reported as it is, not waited for
    assert fake.nodes[("us-central1-a", node_id)]["state"] == "CREATING"
    patient = GcpTpuCompute(PROJECT, endpoint, poll_interval=0.01, launch_wait_s=5)
    [inst] = patient.launch(req)
    assert inst.instance_id == node_id and inst.state is InstanceState.RUNNING


def test_no_capacity_is_an_operation_error(fake: FakeTpu, compute: GcpTpuCompute) -> None:
    fake.stockout("us-central1-a", "v5litepod-8")
    with pytest.raises(TpuOperationError, match="capacity") as err:
        compute.launch(request("stockout-1", offering=offering("tpu-v5litepod-8")))
    assert err.value.code == 8


def test_waiting_is_bounded(fake: FakeTpu, endpoint: GoogleEndpoint) -> None:
    """A slice that takes long to create holds one launch call for launch_wait_s, then is
    reported as it is; the next call (the controller's next pass) makes nothing more."""
    compute = GcpTpuCompute(PROJECT, endpoint, poll_interval=0.01, launch_wait_s=0.2)
    fake.polls_to_done = 10**6
    try:
        t0 = time.monotonic()
        [slow] = compute.launch(request("slow-1"))
        assert time.monotonic() - t0 < 2
        assert slow.state is InstanceState.PENDING
        before = len(fake.nodes)
        [again] = compute.launch(request("slow-1"))
        assert again.instance_id == slow.instance_id and len(fake.nodes) == before
    finally:
        fake.polls_to_done = 3


def test_preempted_node_is_interrupted(fake: FakeTpu, compute: GcpTpuCompute) -> None:
    [inst] = compute.launch(request("preempt-1"))
    fake.preempt("us-central1-a", inst.instance_id)
    [seen] = compute.describe("us-central1-a", [inst.instance_id, "never-made"])
    assert seen.state is InstanceState.PREEMPTED and seen.interrupted
    assert "preempted" in seen.detail


def test_terminate_deletes(fake: FakeTpu, compute: GcpTpuCompute) -> None:
    [inst] = compute.launch(request("delete-1"))
    zone = inst.zone
    compute.terminate(zone, [inst.instance_id])
    deletes = [r for r in fake.requests if r.method == "DELETE"]
    assert deletes[-1].path.endswith(f"/nodes/{inst.instance_id}")
    [going] = compute.describe(zone, [inst.instance_id])
    assert going.state is InstanceState.STOPPING
    compute.wait_deleted(zone, [inst.instance_id])
    assert compute.describe(zone, [inst.instance_id]) == []
    assert (zone, inst.instance_id) not in fake.nodes
    compute.terminate(zone, [inst.instance_id])  # already gone: fine
