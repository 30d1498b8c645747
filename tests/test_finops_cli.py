"""The platform owner's commands end to end through `sched`: report, commitments, budgets,
alerts and audit, on a database whose ledger the test writes through the store's own
transitions, and (audit) on moto's server."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from providers.offering import MarketKind
from scheduler.store import Store
from tests.conftest import Cli
from tests.fakes.aws_env import REGION, aws_environment, raw_ec2, run_tagged
from tests.planted import finish, start

NOW = datetime.now(UTC).replace(minute=30, second=0, microsecond=0)


def ran(
    store: Store,
    tags: dict[str, str],
    *,
    market: str = "on_demand",
    price: float,
    hours: float,
    ended: datetime = NOW,
) -> int:
    """A job that ran one attempt on AWS for ``hours`` at ``price`` $/h and succeeded."""
    begun = ended - timedelta(hours=hours)
    job_id = start(
        store,
        tags,
        price=price,
        created=begun,
        started=begun,
        cloud="aws",
        market=MarketKind(market),
    )
    finish(store, job_id, ended)
    return job_id


@pytest.fixture
def ledger(cli: Cli, home: Path) -> Store:
    store = Store(f"sqlite:///{home / 'sched.db'}")
    ran(store, {"team": "nlp", "project": "llama"}, price=2.0, hours=3)  # $6
    ran(store, {"team": "nlp", "project": "bert"}, price=1.5, hours=2)  # $3
    ran(store, {"team": "vision", "project": "seg"}, price=4.0, hours=1, market="spot")  # $4
    ran(store, {"project": "misc"}, price=1.0, hours=0.5)  # $0.50, no team
    old = NOW - timedelta(days=45)
    ran(store, {"team": "nlp", "project": "llama"}, price=10.0, hours=1, ended=old)  # $10
    return store


def test_report_by_team_and_since(cli: Cli, ledger: Store) -> None:
    out = cli("report", "--by", "team", "--since", "30d", "--csv")
    assert out.returncode == 0, out.stderr
    rows = {r["team"]: r for r in csv.DictReader(io.StringIO(out.stdout))}
    assert {k: float(v["total_usd"]) for k, v in rows.items()} == {
        "nlp": 9.0,
        "vision": 4.0,
        "(untagged)": 0.5,
    }
    everything = json.loads(cli("report", "--by", "team,project", "--json").stdout)
    assert everything["total"]["total_usd"] == pytest.approx(23.5)  # with the $10 of 45 days ago
    table = cli("report", "--by", "team", "--since", "30d").stdout
    assert "nlp" in table and "$9.00" in table and "$13.50" in table  # the total row


def test_report_focus_and_plot(cli: Cli, ledger: Store, tmp_path: Path) -> None:
    out = cli("report", "--since", "30d", "--focus")
    assert out.returncode == 0, out.stderr
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    for column in ("BilledCost", "EffectiveCost", "ChargePeriodStart", "ProviderName", "Tags"):
        assert column in rows[0]
    assert sum(float(r["BilledCost"]) for r in rows) == pytest.approx(13.5)
    png = tmp_path / "spend.png"
    plotted = cli("report", "--by", "team", "--plot", str(png))
    assert plotted.returncode == 0, plotted.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bad = cli("report", "--plot", str(tmp_path / "nope" / "x.png"))
    assert bad.returncode == 2 and bad.stderr.startswith("error: --plot: directory")
    both = cli("report", "--csv", "--json")
    assert both.returncode == 2


COMMITMENTS = """\
commitments:
  - id: sp-compute
    kind: aws_compute_savings_plan
    hourly_commitment: 6
    discount: 0.4
    start: 2026-01-01
    end: 2030-01-01
"""


def test_commitments_utilization_per_hour(cli: Cli, home: Path, tmp_path: Path) -> None:
    """$6/h at 40% off covers $10/h of on-demand use. One whole hour with $5/h of
    on-demand running uses half: fees $6, nothing beyond, worth $5: effective -20%."""
    store = Store(f"sqlite:///{home / 'sched.db'}")
    hour = NOW.replace(minute=0) - timedelta(hours=1)
    ran(store, {"team": "a"}, price=5.0, hours=1, ended=hour + timedelta(hours=1))
    path = tmp_path / "commitments.yaml"
    path.write_text(COMMITMENTS)
    cli.env["SCHED_COMMITMENTS"] = str(path)
    out = cli("commitments", "--hours", "2", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    full = next(h for h in data["hours"] if h["hour"] == hour.isoformat())
    used = full["by_commitment"]["sp-compute"]
    assert used["covered"] == pytest.approx(5.0)
    assert used["utilization"] == pytest.approx(0.5)  # $3 of the $6 fee
    assert used["headroom"] == pytest.approx(5.0)
    assert full["effective_discount"] == pytest.approx(-0.2)
    table = cli("commitments", "--hours", "2").stdout
    assert "sp-compute" in table and "40%" in table
    cli.env["SCHED_COMMITMENTS"] = str(tmp_path / "missing.yaml")
    missing = cli("commitments")
    assert missing.returncode == 2 and "missing.yaml" in missing.stderr


def test_budgets_and_alerts_commands(cli: Cli, ledger: Store, tmp_path: Path) -> None:
    path = tmp_path / "budgets.yaml"
    path.write_text("budgets:\n  - {tag: team, value: nlp, monthly_usd: 10}\n")
    cli.env["SCHED_BUDGETS"] = str(path)
    statuses = json.loads(cli("budgets", "--json").stdout)
    [nlp] = statuses
    # The two nlp lines settled this month ($6 + $3); the $10 one of 45 days ago did not.
    assert (nlp["spent"], nlp["level"]) == (pytest.approx(9.0), "alert")
    assert "team=nlp" in cli("budgets").stdout
    assert cli("reconcile").returncode == 0
    raised = json.loads(cli("alerts", "--json").stdout)
    month = NOW.strftime("%Y-%m")
    assert f"budget:team=nlp:{month}:alert" in {a["key"] for a in raised}
    assert cli("reconcile").returncode == 0
    assert json.loads(cli("alerts", "--json").stdout) == raised  # once, not every pass
    assert "alert: team=nlp: $9.00 of $10.00 this month (90%, alert)" in cli("alerts").stdout


@pytest.fixture(scope="module")
def aws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    yield from aws_environment(tmp_path_factory)


def test_audit_from_the_command_line(aws: dict[str, Any], cli: Cli) -> None:
    import os

    ec2 = raw_ec2(aws)
    untagged = run_tagged(aws, {"Name": "scratch"})
    kept = run_tagged(aws, {"Name": "bastion", "sched:keep": "yes"})
    owned = run_tagged(aws, {"team": "a", "project": "p", "environment": "e", "cost_center": "c"})
    env = {k: v for k, v in os.environ.items() if k.startswith("AWS_")}
    cli.env.update({**env, "SCHED_REQUIRED_TAGS": "team,project", "SCHED_AWS_REGIONS": REGION})
    out = cli("audit", "--json")
    assert out.returncode == 0, out.stderr
    found = {f["instance"]["instance_id"]: f for f in json.loads(out.stdout)["findings"]}
    assert untagged in found and kept in found and owned not in found
    assert found[kept]["kept"] is True
    stopped = cli("audit", "--stop")
    assert stopped.returncode == 0, stopped.stderr
    states = {
        i["InstanceId"]: i["State"]["Name"]
        for r in ec2.describe_instances(InstanceIds=[untagged, kept, owned])["Reservations"]
        for i in r["Instances"]
    }
    assert states[untagged] in ("stopping", "stopped")
    assert states[kept] == "running" and states[owned] == "running"


def test_commitments_read_live_from_the_savings_plans_api(
    cli: Cli, home: Path, tmp_path: Path
) -> None:
    """SCHED_COMMITMENTS_LIVE=aws reads the account's plans through boto3 (from the local
    Savings Plans fake); a declared entry with the same id gives the discount the API
    does not, and a declared one the API does not know is kept."""
    from tests.fakes.aws_savingsplans import FakeSavingsPlans, savings_plan

    declared = tmp_path / "commitments.yaml"
    declared.write_text(
        COMMITMENTS + "  - {id: sp-live, kind: aws_compute_savings_plan, hourly_commitment: 1,"
        " discount: 0.25, start: 2026-01-01, end: 2030-01-01}\n"
    )
    with FakeSavingsPlans() as fake:
        fake.add_plan(savings_plan("Compute", "12.5", plan_id="sp-live"))
        fake.add_plan(savings_plan("EC2Instance", "3.0", region="us-east-1", family="p4d"))
        cli.env.update(
            {
                "SCHED_COMMITMENTS": str(declared),
                "SCHED_COMMITMENTS_LIVE": "aws",
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_ENDPOINT_URL_SAVINGSPLANS": fake.url,
                "AWS_EC2_METADATA_DISABLED": "true",
            }
        )
        out = cli("commitments", "--json")
    assert out.returncode == 0, out.stderr
    found = {c["id"]: c for c in json.loads(out.stdout)["commitments"]}
    assert found["sp-live"]["hourly_commitment"] == 12.5  # the API's figure
    assert found["sp-live"]["discount"] == 0.25  # the declared one: the API has none
    assert found["sp-compute"]["source"] == "config"
    ec2 = next(c for c in found.values() if c["kind"] == "aws_ec2_instance_savings_plan")
    assert (ec2["regions"], ec2["family"], ec2["hourly_commitment"]) == (["us-east-1"], "p4d", 3.0)
    # The API gone: the declared commitments stay in force and the controller says why.
    cli.env["AWS_ENDPOINT_URL_SAVINGSPLANS"] = "http://127.0.0.1:9"
    said = cli("reconcile")
    assert said.returncode == 0
    assert "commitments: cannot read them live" in said.stderr
