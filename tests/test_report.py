"""Cost reports: roll-ups by tag and pseudo-key, the since window, CSV/JSON, the FOCUS 1.1
export and the spend chart. Every expected figure below is summed by hand from FIXTURE."""

from __future__ import annotations

import csv
import io
import json
import math
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobs.lifecycle import AttemptState
from providers.offering import MarketKind
from scheduler.data_gravity import DataMove
from scheduler.ledger import settle
from scheduler.placement import CostBreakdown, Placement
from scheduler.records import AttemptRecord, JobRecord
from scheduler.report import (
    FOCUS_COLUMNS,
    FOCUS_MANDATORY,
    FOCUS_VERSION,
    UNTAGGED,
    CostLine,
    Row,
    focus_rows,
    grand_total,
    parse_since,
    resolve_since,
    rollup,
    to_csv,
    to_focus_csv,
    to_json,
)
from scheduler.report_plot import daily_spend, plot
from tests.offerings import offering

NOW = datetime(2026, 4, 1, tzinfo=UTC)
SINCE = NOW - timedelta(days=30)  # 2026-03-02T00:00Z


def line(
    job_id: int,
    name: str,
    attempt: int,
    *,
    tags: dict[str, str],
    cloud: str,
    region: str,
    market: str,
    hours: float,
    nodes: int,
    price: float,
    egress: float,
    ended: datetime,
    egress_gb: float | None = None,
) -> CostLine:
    compute = price * nodes * hours
    return CostLine(
        job_id=job_id,
        job_name=name,
        attempt=attempt,
        cloud=cloud,
        region=region,
        zone=f"{region}a",
        instance_type="m5.xlarge" if cloud == "aws" else "a2-highgpu-1g",
        market=market,
        num_nodes=nodes,
        price_per_hour=price,
        started=ended - timedelta(hours=hours),
        ended=ended,
        hours=hours,
        compute_usd=compute,
        egress_usd=egress,
        total_usd=compute + egress,
        outcome="SUCCEEDED",
        tags=tags,
        egress_gb=egress_gb,
    )


def at(month: int, day: int, hour: int = 12) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


NLP_A = {"team": "nlp", "project": "alpha"}
# compute = price x nodes x hours; total = compute + egress (written out per line)
FIXTURE = [
    # 3 x 2 x 2 = 12.0 + 1.5 = 13.5
    line(1, "bert", 1, tags=NLP_A, cloud="aws", region="us-east-1", market="spot",
         hours=2, nodes=2, price=3.0, egress=1.5, ended=at(3, 10, 12), egress_gb=15.0),
    # 10 x 2 x 1 = 20.0 + 0.5 = 20.5
    line(1, "bert", 2, tags=NLP_A, cloud="aws", region="us-east-1", market="on_demand",
         hours=1, nodes=2, price=10.0, egress=0.5, ended=at(3, 10, 14), egress_gb=5.0),
    # 2.5 x 1 x 4 = 10.0 + 0 = 10.0
    line(2, "resnet", 1, tags={"team": "vision", "project": "alpha"}, cloud="gcp",
         region="us-central1", market="spot", hours=4, nodes=1, price=2.5, egress=0.0,
         ended=at(3, 15)),
    # 4 x 4 x 3 = 48.0 + 2.0 = 50.0
    line(3, "llama", 1, tags={"team": "nlp", "project": "beta"}, cloud="gcp",
         region="europe-west4", market="on_demand", hours=3, nodes=4, price=4.0, egress=2.0,
         ended=at(3, 20), egress_gb=20.0),
    # 1.25 x 1 x 4 = 5.0 + 1.25 = 6.25 (no project tag)
    line(4, "sweep", 1, tags={"team": "rl"}, cloud="aws", region="us-west-2", market="spot",
         hours=4, nodes=1, price=1.25, egress=1.25, ended=at(3, 25), egress_gb=12.5),
    # 8 x 1 x 0.5 = 4.0 + 0 = 4.0 (no tags at all)
    line(5, "adhoc", 1, tags={}, cloud="aws", region="eu-west-1", market="on_demand",
         hours=0.5, nodes=1, price=8.0, egress=0.0, ended=at(3, 28)),
    # 5 x 1 x 10 = 50.0 + 5.0 = 55.0, ended before SINCE
    line(6, "old", 1, tags={"team": "vision", "project": "beta"}, cloud="aws",
         region="us-east-1", market="on_demand", hours=10, nodes=1, price=5.0, egress=5.0,
         ended=at(2, 15), egress_gb=50.0),
]  # fmt: skip


def groups(rows: list[Row]) -> list[tuple[str, ...]]:
    return [tuple(r.group.values()) for r in rows]


# -- roll-ups ---------------------------------------------------------------------------------


def test_by_team_since_30_days_sums_each_team_and_keeps_untagged_visible() -> None:
    rows = rollup(FIXTURE, ["team"], SINCE)
    assert groups(rows) == [("nlp",), ("vision",), ("rl",), (UNTAGGED,)]
    nlp, vision, rl, untagged = rows
    assert nlp.total_usd == pytest.approx(84.0)  # 13.5 + 20.5 + 50.0
    assert nlp.compute_usd == pytest.approx(80.0)  # 12 + 20 + 48
    assert nlp.egress_usd == pytest.approx(4.0)  # 1.5 + 0.5 + 2.0
    assert nlp.hours == pytest.approx(6.0)  # 2 + 1 + 3
    assert nlp.node_hours == pytest.approx(18.0)  # 4 + 2 + 12
    assert (nlp.attempts, nlp.jobs) == (3, 2)
    assert vision.total_usd == pytest.approx(10.0)  # the 55.0 line is before since
    assert (vision.attempts, vision.jobs) == (1, 1)
    assert rl.total_usd == pytest.approx(6.25)
    assert untagged.total_usd == pytest.approx(4.0)
    total = grand_total(FIXTURE, SINCE)
    assert total.group == {}
    assert total.total_usd == pytest.approx(104.25)  # 84 + 10 + 6.25 + 4
    assert (total.attempts, total.jobs) == (6, 5)


def test_without_since_everything_counts() -> None:
    rows = rollup(FIXTURE, ["team"])
    assert groups(rows) == [("nlp",), ("vision",), ("rl",), (UNTAGGED,)]
    assert rows[1].total_usd == pytest.approx(65.0)  # 10.0 + 55.0
    assert grand_total(FIXTURE).total_usd == pytest.approx(159.25)  # 104.25 + 55.0


def test_two_keys_group_by_both_and_missing_values_read_untagged() -> None:
    rows = rollup(FIXTURE, ["team", "project"], SINCE)
    assert groups(rows) == [
        ("nlp", "beta"),
        ("nlp", "alpha"),
        ("vision", "alpha"),
        ("rl", UNTAGGED),
        (UNTAGGED, UNTAGGED),
    ]
    assert [r.total_usd for r in rows] == pytest.approx([50.0, 34.0, 10.0, 6.25, 4.0])
    assert rows[1].group == {"team": "nlp", "project": "alpha"}
    assert (rows[1].attempts, rows[1].jobs) == (2, 1)


def test_pseudo_keys_and_distinct_jobs_per_row() -> None:
    rows = rollup(FIXTURE, ["market"], SINCE)
    assert groups(rows) == [("on_demand",), ("spot",)]
    on_demand, spot = rows
    assert on_demand.total_usd == pytest.approx(74.5)  # 20.5 + 50.0 + 4.0
    assert spot.total_usd == pytest.approx(29.75)  # 13.5 + 10.0 + 6.25
    # job 1 ran on both markets: it counts once in each row, once in the total
    assert (on_demand.jobs, spot.jobs, grand_total(FIXTURE, SINCE).jobs) == (3, 3, 5)

    by_cloud = rollup(FIXTURE, ["cloud", "region"], SINCE)
    assert groups(by_cloud)[0] == ("gcp", "europe-west4")
    assert rollup(FIXTURE, ["job"], SINCE)[0].group == {"job": "llama#3"}


def test_a_tag_named_like_a_pseudo_key_is_reachable_with_the_tag_prefix() -> None:
    tagged = [FIXTURE[0].model_copy(update={"tags": {"region": "emea"}})]
    assert rollup(tagged, ["region"])[0].group == {"region": "us-east-1"}
    assert rollup(tagged, ["tag:region"])[0].group == {"tag:region": "emea"}


def test_no_keys_is_one_row_and_bad_keys_are_refused() -> None:
    (row,) = rollup(FIXTURE, [], SINCE)
    assert row.total_usd == pytest.approx(104.25)
    with pytest.raises(ValueError, match="repeat"):
        rollup(FIXTURE, ["team", "team"])
    with pytest.raises(ValueError, match="group key"):
        rollup(FIXTURE, [""])
    with pytest.raises(ValueError, match="timezone"):
        rollup(FIXTURE, ["team"], datetime(2026, 3, 1))


# -- since ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30d", timedelta(days=30)),
        ("12h", timedelta(hours=12)),
        ("2w", timedelta(days=14)),
        (" 7D ", timedelta(days=7)),
        ("2026-03-01", datetime(2026, 3, 1, tzinfo=UTC)),
        ("2026-03-01T06:30:00+02:00", datetime(2026, 3, 1, 4, 30, tzinfo=UTC)),
    ],
)
def test_parse_since(text: str, expected: timedelta | datetime) -> None:
    assert parse_since(text) == expected


@pytest.mark.parametrize("text", ["", "30", "d", "3 months", "-1d", "1.5d", "12m", "2026-13-01"])
def test_parse_since_rejects_with_a_message_that_shows_the_forms(text: str) -> None:
    with pytest.raises(ValueError, match=r"30d, 12h or 2w.*ISO date"):
        parse_since(text)


def test_zero_duration_is_refused_and_resolve_since_counts_back_from_now() -> None:
    with pytest.raises(ValueError, match="zero"):
        parse_since("0d")
    assert resolve_since("30d", NOW) == SINCE
    assert resolve_since("2026-03-02", NOW) == SINCE
    assert resolve_since(None, NOW) is None
    with pytest.raises(ValueError, match="aware"):
        resolve_since("1d", datetime(2026, 4, 1))


# -- CSV and JSON -----------------------------------------------------------------------------


def test_csv_parses_back_to_the_same_numbers() -> None:
    rows = rollup(FIXTURE, ["team", "project"], SINCE)
    parsed = list(csv.DictReader(io.StringIO(to_csv(rows))))
    assert list(parsed[0]) == [
        "team",
        "project",
        "total_usd",
        "compute_usd",
        "egress_usd",
        "hours",
        "node_hours",
        "attempts",
        "jobs",
    ]
    assert [(p["team"], p["project"]) for p in parsed] == groups(rows)
    assert [float(p["total_usd"]) for p in parsed] == [50.0, 34.0, 10.0, 6.25, 4.0]
    assert [float(p["egress_usd"]) for p in parsed] == [2.0, 2.0, 0.0, 1.25, 0.0]
    assert [int(p["attempts"]) for p in parsed] == [1, 2, 1, 1, 1]
    assert math.fsum(float(p["total_usd"]) for p in parsed) == 104.25
    assert to_csv([], by=["team"]).splitlines() == [
        "team,total_usd,compute_usd,egress_usd,hours,node_hours,attempts,jobs"
    ]


def test_json_names_its_window_and_round_trips_through_json() -> None:
    rows = rollup(FIXTURE, ["team"], SINCE)
    doc = json.loads(
        json.dumps(to_json(rows, grand_total(FIXTURE, SINCE), by=["team"], since=SINCE))
    )
    assert doc["by"] == ["team"]
    assert doc["since"] == "2026-03-02T00:00:00Z"
    assert doc["currency"] == "USD"
    assert doc["rows"][0] == {
        "group": {"team": "nlp"},
        "total_usd": 84.0,
        "compute_usd": 80.0,
        "egress_usd": 4.0,
        "hours": 6.0,
        "node_hours": 18.0,
        "attempts": 3,
        "jobs": 2,
    }
    assert doc["total"]["total_usd"] == 104.25


# -- from the store's records -----------------------------------------------------------------


def test_from_records_joins_a_settled_ledger_line_and_recovers_the_gb_moved() -> None:
    t0 = at(3, 1, 10)
    moves = [
        DataMove(what="input s3://b/in", src="aws/eu-west-1", gb=100, kind="k", usd=5.0),
        DataMove(what="output s3://b/out", src="aws/us-east-1", gb=50, kind="k", usd=3.0),
        DataMove(
            what="checkpoint writes s3://b/ck",
            src="aws/us-east-1",
            gb=200,
            kind="k",
            usd=4.0,
            times=20,
        ),
        DataMove(what="input s3://same-region", src="aws/us-east-1", gb=999, kind="k", usd=0.0),
    ]
    o = offering(price=2.0, market=MarketKind.SPOT, instance_type="p3.2xlarge")
    p = Placement(
        offering=o,
        accelerator=None,
        num_nodes=2,
        expected_hours=5.0,
        cost=CostBreakdown(compute=20.0, egress=12.0),
        data_moves=moves,
    )
    attempt = AttemptRecord(
        id=41,
        job_id=9,
        number=2,
        state=AttemptState.SUCCEEDED,
        cloud=o.cloud,
        region=o.region,
        zone=o.zone,
        instance_type=o.instance_type,
        market=o.market,
        price_per_hour=o.price_per_hour,
        num_nodes=2,
        placement_json=p.model_dump_json(),
        submission_id="sched-9-2",
        created_at=t0,
        started_at=t0,
    )
    job = JobRecord(
        id=9,
        name="train",
        state="SUCCEEDED",
        priority="normal",
        spec_json="{}",
        tags_json='{"team": "nlp"}',
        submitted_at=t0,
        updated_at=t0,
    )
    ledger = settle(attempt, t0 + timedelta(hours=2.5), AttemptState.SUCCEEDED)
    ledger.id = 7

    cl = CostLine.from_records(ledger, job, attempt)
    assert (cl.job_id, cl.job_name, cl.attempt, cl.market) == (9, "train", 2, "spot")
    assert cl.tags == {"team": "nlp"}
    assert cl.compute_usd == pytest.approx(10.0)  # 2.0 x 2 nodes x 2.5 h
    assert cl.egress_usd == pytest.approx(10.0)  # 5 + 3 + 4 x 2.5/5
    # 100 in + 50 out + 200 x 2.5/5 of the writes; the free same-region read is not egress
    assert cl.egress_gb == pytest.approx(250.0)
    (_, egress) = focus_rows([cl])
    assert egress["PricingQuantity"] == pytest.approx(250.0)
    assert egress["ListUnitPrice"] == pytest.approx(0.04)  # 10 / 250

    ledger.attempt_id = 42
    with pytest.raises(ValueError, match="attempt 42, given 41"):
        CostLine.from_records(ledger, job, attempt)


# -- FOCUS ------------------------------------------------------------------------------------

ISO_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
# FOCUS 1.1 columns with feature level Mandatory, and of those the ones that MUST NOT be null
MANDATORY_1_1 = {
    "BilledCost", "BillingAccountId", "BillingAccountName", "BillingCurrency",
    "BillingPeriodEnd", "BillingPeriodStart", "ChargeCategory", "ChargeClass",
    "ChargeDescription", "ChargePeriodEnd", "ChargePeriodStart", "ContractedCost",
    "EffectiveCost", "InvoiceIssuerName", "ListCost", "PricingQuantity", "PricingUnit",
    "ProviderName", "PublisherName", "ServiceCategory", "ServiceName",
}  # fmt: skip
NEVER_NULL = MANDATORY_1_1 - {"BillingAccountName", "ChargeClass", "ChargeDescription"}


def parse_iso(text: str) -> datetime:
    assert ISO_UTC.match(text), text
    return datetime.fromisoformat(text)


def test_focus_rows_have_exactly_the_declared_columns_and_every_mandatory_one() -> None:
    assert FOCUS_VERSION == "1.1"
    assert set(FOCUS_MANDATORY) == MANDATORY_1_1
    assert set(FOCUS_COLUMNS) >= MANDATORY_1_1
    assert len(set(FOCUS_COLUMNS)) == len(FOCUS_COLUMNS)
    customs = [c for c in FOCUS_COLUMNS if not c[0].isupper()]
    assert all(c.startswith("x_") for c in customs)
    assert FOCUS_COLUMNS[-len(customs) :] == tuple(customs)  # custom columns come last
    rows = focus_rows(FIXTURE)
    # one compute row per line, plus an egress row for the 5 lines that moved billed data
    assert len(rows) == 7 + 5
    for row in rows:
        assert tuple(row) == FOCUS_COLUMNS
        assert all(row[c] is not None for c in NEVER_NULL), row


def test_focus_costs_sum_to_the_ledger_per_service_category() -> None:
    rows = focus_rows(FIXTURE)
    assert math.fsum(r["BilledCost"] for r in rows) == pytest.approx(159.25)
    compute = [r for r in rows if r["ServiceCategory"] == "Compute"]
    network = [r for r in rows if r["ServiceCategory"] == "Networking"]
    assert math.fsum(r["BilledCost"] for r in compute) == pytest.approx(149.0)  # 12+20+10+48+5+4+50
    assert math.fsum(r["BilledCost"] for r in network) == pytest.approx(10.25)  # 1.5+.5+2+1.25+5
    for r in rows:
        assert r["EffectiveCost"] == r["ListCost"] == r["ContractedCost"] == r["BilledCost"]
        assert r["BillingCurrency"] == "USD"
        assert r["ChargeCategory"] == "Usage"
        assert r["PricingQuantity"] * r["ListUnitPrice"] == pytest.approx(r["ListCost"])
    first = compute[0]
    assert first["PricingQuantity"] == 4.0  # 2 h x 2 nodes
    assert first["ListUnitPrice"] == 3.0
    assert first["PricingCategory"] == "Dynamic"  # spot
    assert compute[1]["PricingCategory"] == "Standard"  # on-demand
    assert first["ProviderName"] == "AWS"
    assert first["RegionId"] == "us-east-1"
    assert first["AvailabilityZone"] == "us-east-1a"
    assert json.loads(first["Tags"]) == {"team": "nlp", "project": "alpha"}
    assert network[0]["PricingUnit"] == "GB"
    assert network[0]["PricingQuantity"] == 15.0
    assert network[0]["ResourceId"] == first["ResourceId"]  # egress charged to the attempt


def test_focus_periods_are_iso_utc_and_charges_lie_in_their_billing_month() -> None:
    rows = focus_rows(FIXTURE)
    for r in rows:
        cs, ce = parse_iso(r["ChargePeriodStart"]), parse_iso(r["ChargePeriodEnd"])
        bs, be = parse_iso(r["BillingPeriodStart"]), parse_iso(r["BillingPeriodEnd"])
        assert bs <= cs <= ce <= be
        assert bs.day == 1 and be.day == 1 and bs.hour == 0
    first = rows[0]
    assert (first["ChargePeriodStart"], first["ChargePeriodEnd"]) == (
        "2026-03-10T10:00:00Z",
        "2026-03-10T12:00:00Z",
    )
    assert (first["BillingPeriodStart"], first["BillingPeriodEnd"]) == (
        "2026-03-01T00:00:00Z",
        "2026-04-01T00:00:00Z",
    )


def test_a_run_across_a_month_end_is_split_between_the_two_bills() -> None:
    # 22:00 on 28 Feb to 02:00 on 1 Mar, 1 node at $3/h: 6.0 in each month; egress in March
    cl = line(
        7,
        "span",
        1,
        tags={},
        cloud="aws",
        region="us-east-1",
        market="on_demand",
        hours=4,
        nodes=1,
        price=3.0,
        egress=1.0,
        ended=at(3, 1, 2),
        egress_gb=10.0,
    )
    feb, mar, egress = focus_rows([cl])
    assert (feb["BillingPeriodStart"], feb["ChargePeriodEnd"]) == (
        "2026-02-01T00:00:00Z",
        "2026-03-01T00:00:00Z",
    )
    assert (feb["BilledCost"], mar["BilledCost"]) == (6.0, 6.0)
    assert (feb["PricingQuantity"], mar["PricingQuantity"]) == (2.0, 2.0)
    assert mar["BillingPeriodStart"] == egress["BillingPeriodStart"] == "2026-03-01T00:00:00Z"
    assert egress["ChargePeriodStart"] == "2026-03-01T00:00:00Z"


def test_focus_csv_parses_back() -> None:
    text = to_focus_csv(FIXTURE, accounts={"aws": "123456789012"})
    reader = csv.DictReader(io.StringIO(text))
    assert tuple(reader.fieldnames or ()) == FOCUS_COLUMNS
    parsed = list(reader)
    assert len(parsed) == 12
    assert math.fsum(float(r["BilledCost"]) for r in parsed) == pytest.approx(159.25)
    assert {r["BillingAccountId"] for r in parsed} == {"123456789012", "sched/gcp"}
    assert {r["ChargeClass"] for r in parsed} == {""}  # null


# -- daily spend and the chart ----------------------------------------------------------------


def test_daily_spend_spreads_compute_over_the_days_billed() -> None:
    # 20:00 on 9 Mar to 04:00 on 10 Mar, $2/h: 8.0 on the 9th, 8.0 + 1.0 egress on the 10th
    cl = line(
        8,
        "night",
        1,
        tags={"team": "rl"},
        cloud="aws",
        region="us-east-1",
        market="spot",
        hours=8,
        nodes=1,
        price=2.0,
        egress=1.0,
        ended=at(3, 10, 4),
    )
    assert daily_spend([cl], "team") == {
        date(2026, 3, 9): {"rl": 8.0},
        date(2026, 3, 10): {"rl": 9.0},
    }
    spend = daily_spend(FIXTURE, "team")
    assert spend[date(2026, 3, 10)] == {"nlp": 34.0}
    assert math.fsum(v for d in spend.values() for v in d.values()) == pytest.approx(159.25)


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_plot_writes_a_png_with_and_without_commitment_utilization(tmp_path: Path) -> None:
    plain, both = tmp_path / "spend.png", tmp_path / "both.png"
    plot(FIXTURE, "team", plain)
    utilization = [(at(3, 1) + timedelta(hours=6 * i), (i % 5) / 4) for i in range(40)]
    plot(FIXTURE, "team", both, commitment_utilization=utilization)
    for path in (plain, both):
        data = path.read_bytes()
        assert data[:8] == PNG_SIGNATURE
        assert len(data) > 10_000
    assert both.read_bytes() != plain.read_bytes()
    empty = tmp_path / "empty.png"
    plot([], "team", empty)
    assert empty.read_bytes()[:8] == PNG_SIGNATURE
    with pytest.raises(ValueError, match=r"0\.\.1"):
        plot(FIXTURE, "team", tmp_path / "bad.png", commitment_utilization=[(NOW, 85.0)])


# -- property ---------------------------------------------------------------------------------

KEYS = ["team", "project", "cloud", "region", "market", "job", "zone"]
money = st.floats(min_value=0, max_value=1e5, allow_nan=False, allow_infinity=False)


@st.composite
def cost_lines(draw: st.DrawFn) -> CostLine:
    tags = draw(
        st.dictionaries(
            st.sampled_from(["team", "project"]), st.sampled_from(["a", "b", "c"]), max_size=2
        )
    )
    compute, egress = draw(money), draw(money)
    hours = draw(st.floats(min_value=0, max_value=100))
    return CostLine(
        job_id=draw(st.integers(1, 6)),
        job_name="j",
        attempt=draw(st.integers(1, 3)),
        cloud=draw(st.sampled_from(["aws", "gcp"])),
        region=draw(st.sampled_from(["r1", "r2"])),
        zone="z",
        instance_type="t",
        market=draw(st.sampled_from(["spot", "on_demand"])),
        num_nodes=draw(st.integers(1, 4)),
        price_per_hour=1.0,
        started=None,
        ended=at(3, 1) + timedelta(hours=draw(st.integers(0, 24 * 60))),
        hours=hours,
        compute_usd=compute,
        egress_usd=egress,
        total_usd=compute + egress,
        outcome="SUCCEEDED",
        tags=tags,
    )


@settings(max_examples=60, deadline=None)
@given(
    lines=st.lists(cost_lines(), max_size=25),
    by=st.lists(st.sampled_from(KEYS), unique=True, max_size=3),
    since_days=st.none() | st.integers(0, 60),
)
def test_grand_total_equals_the_sum_of_row_totals(
    lines: list[CostLine], by: list[str], since_days: int | None
) -> None:
    since = None if since_days is None else at(3, 1) + timedelta(days=since_days)
    rows = rollup(lines, by, since)
    total = grand_total(lines, since)
    assert math.fsum(r.total_usd for r in rows) == pytest.approx(total.total_usd, abs=1e-6)
    assert math.fsum(r.compute_usd for r in rows) == pytest.approx(total.compute_usd, abs=1e-6)
    assert sum(r.attempts for r in rows) == total.attempts
    assert sum(r.jobs for r in rows) >= total.jobs
    assert [r.total_usd for r in rows] == sorted((r.total_usd for r in rows), reverse=True)
    assert len({tuple(r.group.values()) for r in rows}) == len(rows)
