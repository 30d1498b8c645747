"""The price book: layering live over catalog over snapshot, TTL refresh, failures, history.

Feeds here are small in-test PriceFeed implementations handed to the book (dependency
injection); the real AWS/GCP feeds are tested against moto and the Google fake elsewhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from providers.feeds import SpotPricePoint
from providers.offering import (
    InterruptionSource,
    MarketKind,
    OfferedAccelerator,
    Offering,
    PriceSource,
)
from providers.snapshot import SnapshotError, load_snapshot
from providers.spot_buckets import bucket_rate
from scheduler.price_cache import PriceCache
from scheduler.price_query import PriceQuery, PriceQueryError, price_per_device_hour
from scheduler.pricebook import Coverage, FeedEntry, PriceBook, Refresh, merge
from scheduler.store import Store

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def offer(
    zone: str = "us-east-1a",
    itype: str = "p4d.24xlarge",
    price: float = 30.0,
    market: MarketKind = MarketKind.ON_DEMAND,
    source: PriceSource = PriceSource.SNAPSHOT,
    cloud: str = "aws",
    gpu: tuple[str, int] = ("A100", 8),
    as_of: datetime = T0,
) -> Offering:
    return Offering(
        cloud=cloud,
        region=zone.rsplit("-", 1)[0] if cloud == "gcp" else zone[:-1],
        zone=zone,
        instance_type=itype,
        accelerators=OfferedAccelerator(name=gpu[0], count=gpu[1], memory_gb=40),
        vcpus=96,
        memory_gb=1152,
        market=market,
        price_per_hour=price,
        as_of=as_of,
        price_source=source,
    )


class ScriptedFeed:
    """Answers with whatever the test queued; raises when told to."""

    cloud = "aws"

    def __init__(self) -> None:
        self.answers: list[list[Offering] | Exception] = []
        self.calls = 0
        self.history: list[SpotPricePoint] = []

    def fetch(self, regions: Sequence[str], now: datetime) -> list[Offering]:
        self.calls += 1
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def spot_history(
        self, instance_types: Sequence[str], regions: Sequence[str], start: datetime, end: datetime
    ) -> list[SpotPricePoint]:
        return [p for p in self.history if start <= p.at <= end]


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    yield s
    s.close()


def book(store: Store, feed: ScriptedFeed, snapshot: list[Offering], configured: bool = True):
    entry = FeedEntry("aws", "aws", "vm", ("us-east-1",), feed, configured, "no credentials")
    return PriceBook(
        PriceCache(store), [entry], ttl=timedelta(hours=1), load_snapshot=lambda: snapshot
    )


def test_merge_live_replaces_lower_layers_in_covered_regions_only() -> None:
    snap = [offer("us-east-1a"), offer("us-west-2a"), offer("us-east-1a", itype="p3.2xlarge")]
    live = [offer("us-east-1b", price=28.0, source=PriceSource.LIVE)]
    merged = merge(snap, [], [(Coverage(cloud="aws", kind="vm", regions=["us-east-1"]), live)])
    assert {(o.zone, o.instance_type, o.price_source) for o in merged} == {
        ("us-west-2a", "p4d.24xlarge", PriceSource.SNAPSHOT),
        ("us-east-1b", "p4d.24xlarge", PriceSource.LIVE),
    }


def test_merge_tpu_feed_does_not_hide_vm_snapshot() -> None:
    vm = offer("us-central1-a", itype="a2-highgpu-1g", cloud="gcp")
    tpu = offer("us-central1-a", itype="tpu-v5p-8", cloud="gcp", gpu=("tpu-v5p-8", 1))
    live_tpu = tpu.model_copy(update={"price_source": PriceSource.LIVE, "price_per_hour": 15.0})
    cover = Coverage(cloud="gcp", kind="tpu", regions=["us-central1"])
    merged = merge([vm, tpu], [], [(cover, [live_tpu])])
    assert merged == [vm, live_tpu]


def test_merge_catalog_replaces_snapshot_of_its_cloud() -> None:
    snap = [offer(), offer("us-central1-a", itype="a2-highgpu-8g", cloud="gcp")]
    cat = [offer("us-east-1c", price=25.0, source=PriceSource.FILE)]
    merged = merge(snap, cat, [])
    assert [(o.cloud, o.price_source) for o in merged] == [
        ("gcp", PriceSource.SNAPSHOT),
        ("aws", PriceSource.FILE),
    ]


def test_unconfigured_feed_is_not_fetched_on_auto(store: Store) -> None:
    feed = ScriptedFeed()
    pb = book(store, feed, [offer()], configured=False)
    view = pb.view(T0)
    assert feed.calls == 0
    assert [o.price_source for o in view.offerings] == [PriceSource.SNAPSHOT]
    assert view.notes == ["aws: snapshot from 2026-11-22 (1); aws live prices off: no credentials"]


def test_ttl_and_cache_shared_between_books(store: Store) -> None:
    feed = ScriptedFeed()
    live = [offer("us-east-1b", price=27.5, source=PriceSource.LIVE)]
    feed.answers = [live, live]
    first = book(store, feed, [offer()]).view(T0)
    assert feed.calls == 1
    assert [o.price_per_hour for o in first.offerings] == [27.5]
    assert first.reports[0].ok and first.reports[0].offerings == 1
    # A second process (a new book on the same database) within the TTL: no fetch, same prices.
    again = book(store, feed, [offer()]).view(T0 + timedelta(minutes=59))
    assert feed.calls == 1
    assert [o.price_per_hour for o in again.offerings] == [27.5]
    book(store, feed, [offer()]).view(T0 + timedelta(minutes=61))
    assert feed.calls == 2


def test_failed_refresh_keeps_last_good_prices_and_says_why(store: Store) -> None:
    feed = ScriptedFeed()
    feed.answers = [[offer("us-east-1b", price=27.5, source=PriceSource.LIVE)]]
    book(store, feed, [offer()]).view(T0)
    feed.answers = [RuntimeError("Unable to locate credentials\nmore detail")]
    view = book(store, feed, [offer()]).view(T0 + timedelta(hours=2), Refresh.FORCE)
    assert view.reports[0].ok is False
    assert view.reports[0].error == "RuntimeError: Unable to locate credentials"
    assert [o.price_per_hour for o in view.offerings] == [27.5]
    assert "aws live refresh failed: RuntimeError: Unable to locate credentials" in view.notes[0]


def test_never_mode_does_not_fetch_even_when_due(store: Store) -> None:
    feed = ScriptedFeed()
    book(store, feed, [offer()]).view(T0, Refresh.NEVER)
    assert feed.calls == 0


def test_spot_history_recorded_from_api_and_own_fetches(store: Store) -> None:
    feed = ScriptedFeed()
    spot = offer("us-east-1b", price=9.0, market=MarketKind.SPOT, source=PriceSource.LIVE)
    feed.history = [
        SpotPricePoint(
            cloud="aws",
            region="us-east-1",
            zone="us-east-1b",
            instance_type="p4d.24xlarge",
            price_per_hour=p,
            at=T0 - timedelta(hours=h),
        )
        for p, h in ((8.0, 30), (8.5, 5))
    ]
    feed.answers = [[spot], [spot]]
    pb = book(store, feed, [])
    assert pb.view(T0).reports[0].spot_points == 3
    # Refetching the same prices adds nothing: points are unique per pool and time.
    assert pb.view(T0 + timedelta(hours=2)).reports[0].spot_points == 0
    history = pb.cache.spot_history("p4d.24xlarge")
    assert [p.price_per_hour for p in history] == [8.0, 8.5, 9.0]
    assert [p.price_per_hour for p in pb.cache.spot_history("p4d.24xlarge", since=T0)] == [9.0]


def test_shipped_snapshot_covers_both_clouds_markets_and_zones() -> None:
    offerings = load_snapshot()
    a100 = [o for o in offerings if o.accelerators and o.accelerators.name == "A100"]
    assert {o.cloud for o in a100} == {"aws", "gcp"}
    assert {o.market for o in a100} == {MarketKind.SPOT, MarketKind.ON_DEMAND}
    assert len({o.zone for o in a100}) >= 10
    assert all(o.price_source is PriceSource.SNAPSHOT for o in offerings)
    assert all(o.source_detail.startswith("snapshot from 20") for o in offerings)
    tpus = {o.accelerators.name for o in offerings if o.instance_type.startswith("tpu-")}
    assert {"tpu-v5p-8", "tpu-v5litepod-8", "tpu-v6e-8"} <= tpus
    # Every AWS spot offering carries its Spot Advisor bucket as a rate.
    aws_spot = [o for o in offerings if o.cloud == "aws" and o.market is MarketKind.SPOT]
    assert aws_spot
    assert all(o.interruption_source is InterruptionSource.PUBLISHED_BUCKET for o in aws_spot)
    on_demand = [o for o in offerings if o.market is MarketKind.ON_DEMAND]
    assert all(o.interruption_rate == 0 for o in on_demand)


def test_snapshot_errors_name_file_and_entry(tmp_path: Path) -> None:
    path = tmp_path / "snap.yaml"
    path.write_text(
        "assembled: 2026-11-22\ngcp_spot_interruption_rate: 0.05\n"
        "sources: {aws: {as_of: 2026-01-01, detail: x}}\n"
        "offerings:\n  - {cloud: aws, type: p3.2xlarge, accelerator: V100:1, vcpus: 8,"
        " memory_gb: 61, region: us-east-1, zones: [us-east-1a], on_demand: -3, source: aws}\n"
    )
    with pytest.raises(SnapshotError, match=r"snap.yaml: offerings\.0\.on_demand: Input should"):
        load_snapshot(path)
    path.write_text(path.read_text().replace("-3", "3").replace("source: aws}", "source: gcp}"))
    with pytest.raises(SnapshotError, match=r"offerings\.0\.source: unknown source 'gcp'"):
        load_snapshot(path)
    with pytest.raises(SnapshotError, match="cannot read"):
        load_snapshot(tmp_path / "missing.yaml")


def test_bucket_rates_rise_with_the_bucket() -> None:
    rates = [bucket_rate(b) for b in ("<5%", "5-10%", "10-15%", "15-20%", ">20%")]
    assert rates == sorted(rates)
    # 25% of instances interrupted in a 730-hour month: -ln(0.75)/730 per hour.
    assert bucket_rate(">20%") == pytest.approx(0.000394, rel=1e-3)
    with pytest.raises(ValueError, match="unknown interruption bucket"):
        bucket_rate("30%")


def test_price_query_filters_and_validates() -> None:
    a100 = offer()
    h100 = offer(itype="p5.48xlarge", gpu=("H100", 8))
    mega = offer(itype="a3-megagpu-8g", gpu=("H100-MEGA", 8), cloud="gcp", zone="us-east4-a")
    tpu = offer(itype="tpu-v5p-8", gpu=("tpu-v5p-8", 1), cloud="gcp", zone="us-east5-a")
    q = PriceQuery(gpu="h100").normalized()
    assert [o for o in (a100, h100, mega, tpu) if q.matches(o)] == [h100]
    assert PriceQuery(gpu="A100:16").normalized().matches(a100) is False
    assert PriceQuery(tpu="v5p").normalized().matches(tpu)
    assert PriceQuery(tpu="tpu-v5p-16").normalized().matches(tpu) is False
    assert PriceQuery(clouds=["gcp"]).matches(a100) is False
    with pytest.raises(PriceQueryError, match="--gpu: unknown GPU 'H1000'"):
        PriceQuery(gpu="H1000").normalized()
    with pytest.raises(PriceQueryError, match="--tpu: unknown TPU generation 'v9'"):
        PriceQuery(tpu="v9").normalized()
    assert price_per_device_hour(h100) == pytest.approx(30.0 / 8)
    assert price_per_device_hour(tpu) == pytest.approx(30.0 / 4)  # v5p-8 is 4 chips


def test_history_keeps_gpus_attached_to_one_host_type_apart(store: Store) -> None:
    feed = ScriptedFeed()
    feed.cloud = "gcp"
    t4 = offer("us-central1-a", itype="n1-standard-8", cloud="gcp", gpu=("T4", 1), price=0.6)
    spot_t4 = t4.model_copy(update={"market": MarketKind.SPOT, "price_source": PriceSource.LIVE})
    spot_v100 = spot_t4.model_copy(
        update={
            "accelerators": OfferedAccelerator(name="V100", count=1, memory_gb=16),
            "price_per_hour": 1.2,
        }
    )
    feed.answers = [[spot_t4, spot_v100]]
    entry = FeedEntry("gcp", "gcp", "vm", ("us-central1",), feed, True)
    pb = PriceBook(PriceCache(store), [entry], ttl=timedelta(hours=1), load_snapshot=list)
    assert pb.view(T0).reports[0].spot_points == 2
    assert [p.price_per_hour for p in pb.cache.spot_history("n1-standard-8+T4:1")] == [0.6]
    assert [p.price_per_hour for p in pb.cache.spot_history("n1-standard-8+V100:1")] == [1.2]
