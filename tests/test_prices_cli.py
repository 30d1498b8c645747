"""`sched prices` end to end through the installed command: offline, bad input, history."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cli
from tests.fakes.aws_pricing import FakePriceList, SpotPriceEc2, ec2_product
from tests.fakes.google import FakeGoogle
from tests.fakes.google_compute import us_central1_skus
from tests.fakes.google_tpu import tpu_skus


@pytest.fixture
def offline_cli(cli: Cli, home: Path) -> Cli:
    """No cloud credentials anywhere: prices must come from the shipped snapshot."""
    env = {k: v for k, v in cli.env.items() if not k.startswith(("AWS_", "GOOGLE_"))}
    env["HOME"] = str(home)
    return Cli(env)


def test_offline_a100_prices_from_both_clouds(offline_cli: Cli) -> None:
    out = offline_cli("prices", "--gpu", "A100", "--json", "--limit", "1000")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    offerings = data["offerings"]
    assert data["matched"] == len(offerings) > 0
    assert {o["cloud"] for o in offerings} == {"aws", "gcp"}
    assert {o["market"] for o in offerings} == {"spot", "on_demand"}
    assert len({o["zone"] for o in offerings}) >= 10
    assert all(o["accelerators"]["name"] == "A100" for o in offerings)
    assert all(o["as_of"] and o["price_source"] == "snapshot" for o in offerings)
    prices = [o["price_per_hour"] for o in offerings]
    assert prices == sorted(prices)
    per_gpu = offerings[0]["price_per_device_hour"]
    assert per_gpu == pytest.approx(prices[0] / offerings[0]["accelerators"]["count"])
    assert data["refreshed"] == []
    assert any(n.startswith("aws: snapshot from 2025-11-30") for n in data["notes"])


def test_offline_table_says_where_prices_come_from(offline_cli: Cli) -> None:
    out = offline_cli("prices", "--tpu", "v5p", "--spot", "--limit", "3")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split()[:4] == ["CLOUD", "REGION", "ZONE", "TYPE"]
    rows = lines[1:4]
    assert all("tpu-v5p-8" in r and " spot " in r and "snapshot" in r for r in rows)
    assert "gcp: snapshot from" in out.stderr
    assert "gcp live prices off: no GCP project (set SCHED_GCP_PROJECT)" in out.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--gpu", "H1000"], "error: --gpu: unknown GPU 'H1000'"),
        (["--gpu", "A100:x"], "error: --gpu: count 'x' must be a positive integer"),
        (["--tpu", "v9"], "error: --tpu: unknown TPU generation 'v9'"),
        (["--spot", "--on-demand"], "error: --spot and --on-demand exclude each other"),
        (["--cloud", "azure"], "error: --cloud: unknown cloud 'azure' (known: aws, gcp)"),
        (["--catalog", "nope.csv"], "error: nope.csv: --catalog: no such file"),
    ],
)
def test_bad_price_queries(offline_cli: Cli, args: list[str], message: str) -> None:
    out = offline_cli("prices", *args)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), out.stderr
    assert "Traceback" not in out.stderr


def test_history_without_records_says_how_to_get_them(offline_cli: Cli) -> None:
    out = offline_cli("prices", "--history", "p4d.24xlarge")
    assert out.returncode == 0
    assert "no spot prices recorded for p4d.24xlarge" in out.stderr
    out = offline_cli("prices", "--history", "p4d.24xlarge", "--json")
    assert json.loads(out.stdout) == []


@pytest.fixture(scope="module")
def aws_endpoints() -> Iterator[dict[str, Any]]:
    """moto (EC2) behind a spot-price front, and the Price List fake, all over HTTP."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    try:
        with SpotPriceEc2(f"http://{host}:{port}") as front, FakePriceList() as price_list:
            yield {"moto": f"http://{host}:{port}", "front": front, "price_list": price_list}
    finally:
        moto.stop()


def test_refresh_shows_live_aws_prices_and_records_history(
    offline_cli: Cli, aws_endpoints: dict[str, Any], home: Path
) -> None:
    now = datetime.now(UTC)
    front: SpotPriceEc2 = aws_endpoints["front"]
    front.add("us-east-1a", "p4d.24xlarge", 9.8765, now - timedelta(hours=3))
    front.add("us-east-1a", "p4d.24xlarge", 8.4321, now - timedelta(hours=1))
    front.add("us-east-1b", "p4d.24xlarge", 8.1234, now - timedelta(minutes=20))
    aws_endpoints["price_list"].add(ec2_product("p4d.24xlarge", "us-east-1", 21.9576))
    env = {
        **offline_cli.env,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(home / "aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ENDPOINT_URL": aws_endpoints["moto"],
        "AWS_ENDPOINT_URL_EC2": front.url,
        "AWS_ENDPOINT_URL_PRICING": aws_endpoints["price_list"].url,
        "SCHED_AWS_REGIONS": "us-east-1",
    }
    aws = Cli(env)
    out = aws("prices", "--refresh", "--cloud", "aws", "--gpu", "A100", "--json", "-n", "500")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["refreshed"][0]["feed"] == "aws" and data["refreshed"][0]["ok"]
    live = {
        (o["zone"], o["market"]): o
        for o in data["offerings"]
        if o["price_source"] == "live" and o["instance_type"] == "p4d.24xlarge"
    }
    assert live[("us-east-1a", "spot")]["price_per_hour"] == pytest.approx(8.4321)
    assert live[("us-east-1b", "spot")]["price_per_hour"] == pytest.approx(8.1234)
    assert live[("us-east-1a", "on_demand")]["price_per_hour"] == pytest.approx(21.9576)
    assert live[("us-east-1a", "spot")]["interruption_source"] == "published_bucket"
    # The live feed answered for us-east-1: the snapshot no longer speaks for that region,
    # but still does for the regions the feed was not asked about.
    by_region = {(o["region"], o["price_source"]) for o in data["offerings"]}
    assert ("us-east-1", "snapshot") not in by_region
    assert ("us-west-2", "snapshot") in by_region
    assert any(n.startswith("aws: live prices") for n in data["notes"])

    # The table shows the live prices without a refresh (cached in the database) ...
    table = aws("prices", "--cloud", "aws", "--gpu", "A100", "--spot", "--region", "us-east-1")
    assert table.returncode == 0, table.stderr
    first = table.stdout.splitlines()[1].split()
    assert first[:3] == ["aws", "us-east-1", "us-east-1b"]
    assert "$8.1234" in first and "live" in first
    # ... and the history by zone includes the change inside the window.
    hist = aws("prices", "--history", "p4d.24xlarge", "--json")
    points = [(p["zone"], p["price_per_hour"]) for p in json.loads(hist.stdout)]
    assert ("us-east-1a", 9.8765) in points and ("us-east-1a", 8.4321) in points
    hist_table = aws("prices", "--history", "p4d.24xlarge")
    row = next(line for line in hist_table.stdout.splitlines() if "us-east-1a" in line)
    assert "$8.4321" in row and "$9.8765" in row


def test_failed_refresh_exits_1_and_keeps_snapshot(offline_cli: Cli, home: Path) -> None:
    env = {
        **offline_cli.env,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",  # nothing listens on the discard port
        "AWS_MAX_ATTEMPTS": "1",
        "SCHED_AWS_REGIONS": "us-east-1",
    }
    out = Cli(env)("prices", "--refresh", "--cloud", "aws", "--gpu", "H100", "--json")
    assert out.returncode == 1
    assert "warning: aws: live prices not fetched: " in out.stderr
    data = json.loads(out.stdout)
    assert data["offerings"] and all(o["price_source"] == "snapshot" for o in data["offerings"])
    assert any("aws live refresh failed" in n for n in data["notes"])


def test_refresh_shows_live_gcp_vm_and_tpu_prices(offline_cli: Cli) -> None:
    with FakeGoogle("sched-test") as google:
        google.compute.skus.extend(us_central1_skus())
        google.compute.add_zone("us-central1-a")
        google.compute.add_machine_type(
            "us-central1-a", "a2-highgpu-1g", 12, 85, {"nvidia-tesla-a100": 1}
        )
        for item in tpu_skus():
            google.tpu.add_sku(item)
        google.tpu.add_zone("us-central1-a", {"v5p-8": "2x2x1"})
        gcp = Cli(
            {
                **offline_cli.env,
                "SCHED_GCP_PROJECT": "sched-test",
                "SCHED_GCP_API_ENDPOINT": google.url,
                "SCHED_GCP_ANONYMOUS": "1",
                "SCHED_GCP_REGIONS": "us-central1",
            }
        )
        out = gcp("prices", "--refresh", "--cloud", "gcp", "--json", "-n", "1000")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert {(r["feed"], r["ok"]) for r in data["refreshed"]} == {("gcp", True), ("gcp-tpu", True)}
    live = {
        (o["instance_type"], o["market"]): o["price_per_hour"]
        for o in data["offerings"]
        if o["price_source"] == "live" and o["zone"] == "us-central1-a"
    }
    # 12 A2 cores + 85 GiB of A2 RAM + one A100, from the fake's SKUs.
    assert live[("a2-highgpu-1g", "on_demand")] == pytest.approx(
        12 * 0.031611 + 85 * 0.004237 + 2.933908
    )
    assert live[("a2-highgpu-1g", "spot")] == pytest.approx(12 * 0.0123 + 85 * 0.00165 + 1.64017)
    assert live[("tpu-v5p-8", "on_demand")] == pytest.approx(4 * 4.2)  # 4 chips
    # us-central1 is now live for both VMs and TPUs; other regions keep the snapshot.
    sources = {(o["region"], o["price_source"]) for o in data["offerings"]}
    assert ("us-central1", "snapshot") not in sources
    assert ("us-east4", "snapshot") in sources
