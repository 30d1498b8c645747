"""`sched plan` through the installed command: snapshot, catalog, infeasible, bad input."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from tests.conftest import Cli

TRAIN = """
run: python train.py
resources:
  accelerators: {any_of: ["A100:8", "H100:8"]}
market: auto
constraints: {clouds: [aws, gcp]}
data:
  inputs:
    - {uri: "s3://corpus/tokens", region: us-east-1, size_gb: 5000}
checkpoint: {uri: "s3://ckpt/run", region: us-east-1, size_gb: 50, write_seconds: 120}
estimated_hours: 24
"""


@pytest.fixture
def offline_cli(cli: Cli, home: Path) -> Cli:
    env = {k: v for k, v in cli.env.items() if not k.startswith(("AWS_", "GOOGLE_"))}
    env["HOME"] = str(home)
    return Cli(env)


def spec_file(tmp_path: Path, text: str, name: str = "job.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_plan_on_the_shipped_snapshot_ranks_by_expected_total(
    offline_cli: Cli, tmp_path: Path
) -> None:
    out = offline_cli("plan", str(spec_file(tmp_path, TRAIN)), "--offline", "--json", "-n", "8")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    placements = data["placements"]
    assert len(placements) == 8 and data["feasible"] >= 8
    totals = [p["total"] for p in placements]
    assert totals[0] == min(totals)
    for p in placements:
        cost = p["cost"]
        assert cost["total"] == pytest.approx(
            cost["compute"] + cost["preemption"] + cost["egress"] - cost["credit"]
        )
        assert p["offering"]["accelerators"]["name"] in ("A100", "H100")
        assert p["offering"]["price_source"] == "snapshot"
        assert p["launchable"] is False  # no cloud provider can launch from a test machine
        if p["offering"]["region"] != "us-east-1":  # the 5 TB dataset must come over
            assert any(m["what"].startswith("input s3://corpus") for m in p["data_moves"])
            assert cost["egress"] > 50
    best = placements[0]
    assert best["offering"]["region"] == "us-east-1", "5 TB of data pulls the job to us-east-1"
    assert data["why"].startswith("#1 ")
    assert data["funnel"][0]["stage"] == "accelerators"


def test_plan_table_explains_the_winner(offline_cli: Cli, tmp_path: Path) -> None:
    out = offline_cli("plan", str(spec_file(tmp_path, TRAIN)), "--offline")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split()[:6] == ["#", "CLOUD", "REGION/ZONE", "TYPE", "MARKET", "$/H"]
    assert lines[0].split()[-4:] == ["COMPUTE", "PREEMPT", "EGRESS", "TOTAL"]
    assert any(line.startswith("#1 ") and " beats #2 " in line for line in lines)
    assert any("offerings | accelerators -" in line for line in lines)
    assert "sched cannot launch on" in out.stderr


def aws_catalog(path: Path) -> Path:
    """A SkyPilot-format AWS vms.csv with two A100 machines in two regions."""
    header = ["InstanceType", "AcceleratorName", "AcceleratorCount", "vCPUs", "MemoryGiB"]
    header += ["GpuInfo", "Price", "SpotPrice", "Region", "AvailabilityZone", "Arch"]
    info = repr({"Gpus": [{"Name": "A100", "Count": 8, "MemoryInfo": {"SizeInMiB": 40960}}]})
    rows = [
        [
            "p4d.24xlarge",
            "A100",
            "8",
            "96",
            "1152",
            info,
            "30.00",
            "",
            "us-east-1",
            "use1-az1",
            "x86_64",
        ],
        [
            "p4d.24xlarge",
            "A100",
            "8",
            "96",
            "1152",
            info,
            "20.00",
            "",
            "eu-west-1",
            "euw1-az1",
            "x86_64",
        ],
    ]
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_plan_on_a_skypilot_catalog(offline_cli: Cli, tmp_path: Path) -> None:
    catalog = aws_catalog(tmp_path / "vms.csv")
    job = """
run: python train.py
resources: {accelerators: "A100:8"}
market: on_demand
constraints: {clouds: [aws]}
data:
  inputs: [{uri: "s3://d/x", region: us-east-1, size_gb: SIZE}]
estimated_hours: 10
"""
    small = spec_file(tmp_path, job.replace("SIZE", "100"), "small.yaml")
    out = offline_cli("plan", str(small), "--offline", "--catalog", str(catalog), "--json")
    assert out.returncode == 0, out.stderr
    placements = json.loads(out.stdout)["placements"]
    assert [(p["offering"]["region"], p["offering"]["price_source"]) for p in placements] == [
        ("eu-west-1", "file"),
        ("us-east-1", "file"),
    ]
    # 100 GB at $0.02/GB is $2: far less than the $10/h difference.
    assert placements[0]["cost"]["egress"] == pytest.approx(2.0)
    big = spec_file(tmp_path, job.replace("SIZE", "20000"), "big.yaml")
    out = offline_cli("plan", str(big), "--offline", "--catalog", str(catalog), "--json")
    placements = json.loads(out.stdout)["placements"]
    # 20 TB x $0.02 = $400 > $10/h x 10.12 h = $101.20: the data wins.
    assert placements[0]["offering"]["region"] == "us-east-1"
    assert placements[1]["cost"]["egress"] == pytest.approx(400.0)


def test_infeasible_plan_names_the_constraint_and_the_nearest_miss(
    offline_cli: Cli, tmp_path: Path
) -> None:
    job = spec_file(
        tmp_path,
        'run: x\nresources: {accelerators: "A100:8"}\nconstraints: {max_price_per_hour: 2}\n',
    )
    out = offline_cli("plan", str(job), "--offline")
    assert out.returncode == 2
    first = out.stderr.splitlines()[0]
    assert first.startswith(
        "error: no feasible placement: nothing satisfies max_price_per_hour=2 for A100:8;"
        " the cheapest is $"
    )
    assert "Traceback" not in out.stderr
    as_json = offline_cli("plan", str(job), "--offline", "--json")
    assert as_json.returncode == 2
    assert json.loads(as_json.stdout)["error"].startswith("no feasible placement: nothing")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.yaml"], "error: missing.yaml"),
        (["JOB", "--refresh", "--offline"], "error: --refresh and --offline exclude each other"),
        (["JOB", "--catalog", "nope.csv"], "error: nope.csv: --catalog: no such file"),
    ],
)
def test_bad_plan_input(offline_cli: Cli, tmp_path: Path, args: list[str], message: str) -> None:
    job = str(spec_file(tmp_path, "run: x\n"))
    out = offline_cli("plan", *[job if a == "JOB" else a for a in args])
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), out.stderr


def test_submitting_a_job_only_a_cloud_can_run_fails_with_the_reason(
    offline_cli: Cli, tmp_path: Path
) -> None:
    job = spec_file(tmp_path, 'run: x\nresources: {accelerators: "tpu-v5p-8"}\n')
    out = offline_cli("submit", str(job))
    assert out.returncode == 0, out.stderr
    status = offline_cli("status", out.stdout.strip())
    assert "FAILED" in status.stdout
    assert "nothing satisfies launchable for tpu-v5p-8" in status.stdout
