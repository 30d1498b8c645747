"""The FinOps files (commitments, budgets) and what FinOps reads from a real SQLite store:
this month's spend per budget, alerts raised once, spend spikes, commitment headroom.
The clock is injected; every expected figure is worked by hand."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from jobs.loading import parse_spec
from jobs.spec import Priority
from providers.commitment import Commitment, CommitmentKind
from providers.offering import MarketKind
from scheduler.budgets import Budget, BudgetLevel
from scheduler.commitments import Usage
from scheduler.config import ConfigError
from scheduler.finops import FinOps
from scheduler.finops_config import load_budgets, load_commitments
from scheduler.scavenger import Running
from scheduler.store import Store
from tests.offerings import offering
from tests.planted import finish, start

# Saturday 11 April 2026, midnight UTC: 10 of April's 30 days gone (a third), ISO week 15.
NOW = datetime(2026, 4, 11, tzinfo=UTC)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)

# -- the files ----------------------------------------------------------------------------------

SP = (
    "{id: sp-1, kind: aws_compute_savings_plan, hourly_commitment: 5, discount: 0.5,"
    " start: 2026-01-01, end: 2027-01-01}"
)


def write(tmp_path: Path, text: str, name: str = "finops.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def config_error(load: Callable[[Path], object], path: Path) -> str:
    """The error, checked to be one line that starts with the file."""
    with pytest.raises(ConfigError) as info:
        load(path)
    message = str(info.value)
    assert "\n" not in message, message
    assert message.startswith(f"{path}: "), message
    return message


def test_commitments_file_loads(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""\
commitments:
  - {SP}
  - id: ec2-p4d
    kind: aws_ec2_instance_savings_plan
    hourly_commitment: 20
    discount: 0.6
    regions: [us-east-1]
    family: p4d
    start: 2026-02-01T06:00:00+02:00
    end: 2029-02-01
  - id: cud-1
    kind: gcp_resource_cud
    hourly_commitment: 3
    discount: 0.37
    regions: [us-central1]
    start: 2026-01-01 12:30:00
    end: 2027-01-01
""",
    )
    sp, ec2, cud = load_commitments(path)
    assert (sp.id, sp.kind, sp.hourly_commitment, sp.discount) == (
        "sp-1",
        CommitmentKind.AWS_COMPUTE_SP,
        5.0,
        0.5,
    )
    # A date without a time is midnight UTC; a time with a zone is moved to UTC; a time
    # without one is taken as UTC.
    assert sp.start == datetime(2026, 1, 1, tzinfo=UTC)
    assert sp.end == datetime(2027, 1, 1, tzinfo=UTC)
    assert ec2.start == datetime(2026, 2, 1, 4, 0, tzinfo=UTC)
    assert (ec2.family, ec2.regions) == ("p4d", ["us-east-1"])
    assert cud.start == datetime(2026, 1, 1, 12, 30, tzinfo=UTC)
    assert sp.capacity == 10.0  # $5/h at 50% off covers $10/h of on-demand usage
    assert load_commitments(None) == []
    assert load_commitments(write(tmp_path, "commitments: []\n", "empty.yaml")) == []


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (
            f"commitments:\n  - {SP}\n  - {SP.replace('sp-1', 'sp-2').replace('0.5', '1.5')}\n",
            "commitments.1.discount: Input should be less than 1",
        ),
        (
            "commitments:\n  - {id: x, kind: aws_ec2_instance_savings_plan, regions: [us-east-1],"
            " hourly_commitment: 5, discount: 0.5, start: 2026-01-01, end: 2027-01-01}\n",
            "commitments.0: an EC2 Instance Savings Plan needs one region and a family",
        ),
        (
            f"commitments:\n  - {SP.replace('}', ', bogus: 1}')}\n",
            "commitments.0.bogus: Extra inputs are not permitted",
        ),
        (
            f"commitments:\n  - {SP.replace('end: 2027-01-01', 'end: 2025-01-01')}\n",
            "commitments.0: end must be after start",
        ),
        (
            f"commitments:\n  - {SP.replace('aws_compute_savings_plan', 'azure_reservation')}\n",
            "commitments.0.kind: Input should be",
        ),
        (
            f"commitments:\n  - {SP.replace('hourly_commitment: 5', 'hourly_commitment: 0')}\n",
            "commitments.0.hourly_commitment: Input should be greater than 0",
        ),
        ("commitments: []\nbudgets: []\n", "budgets: Extra inputs are not permitted"),
    ],
)
def test_bad_commitments_are_one_line_naming_the_entry(
    tmp_path: Path, body: str, where: str
) -> None:
    path = write(tmp_path, body)
    assert config_error(load_commitments, path).startswith(f"{path}: {where}")


def test_duplicate_commitment_ids_are_refused(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"commitments:\n  - {SP}\n  - {SP.replace('discount: 0.5', 'discount: 0.6')}\n",
    )
    assert config_error(load_commitments, path) == (
        f"{path}: commitments: id 'sp-1' is declared twice"
    )


def test_a_missing_file_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.yaml"
    assert config_error(load_commitments, path).startswith(f"{path}: cannot read")
    assert config_error(load_budgets, path).startswith(f"{path}: cannot read")


def test_a_file_that_is_not_yaml_is_one_line(tmp_path: Path) -> None:
    """BUG (providers/config_files.py:25, read_yaml): the YAML parser's message spans
    several lines ('while parsing a flow node\\ndid not find expected node content\\n  in
    "<unicode string>", line 3, column 1'), so the error is not the one line naming the
    file that finops_config.py and config_files.py promise."""
    path = write(tmp_path, "commitments:\n  - id: [\n")
    message = config_error(load_commitments, path)
    assert message.startswith(f"{path}: not valid YAML")


def test_budgets_file_loads(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
budgets:
  - {tag: team, value: a, monthly_usd: 1000}
  - {tag: team, value: b, monthly_usd: 10, alert_at: 0.5, pause_at: 1.0, brake_at: 1.5}
  - {tag: project, value: a, monthly_usd: 250.5}
""",
    )
    a, b, p = load_budgets(path)
    assert (a.key, a.monthly_usd, a.alert_at, a.pause_at, a.brake_at) == (
        "team=a",
        1000.0,
        0.8,
        1.0,
        1.2,
    )
    assert (b.key, b.alert_at, b.pause_at, b.brake_at) == ("team=b", 0.5, 1.0, 1.5)
    assert (p.key, p.monthly_usd) == ("project=a", 250.5)  # same value, another tag: allowed
    assert load_budgets(None) == []


@pytest.mark.parametrize(
    ("entry", "where"),
    [
        (
            "{tag: team, value: a, monthly_usd: 10, alert_at: 0.9, pause_at: 0.8}",
            "budgets.1: levels must rise: alert_at <= pause_at <= brake_at",
        ),
        (
            "{tag: team, value: a, monthly_usd: 10, limit: 5}",
            "budgets.1.limit: Extra inputs are not permitted",
        ),
        (
            "{tag: team, value: a, monthly_usd: 0}",
            "budgets.1.monthly_usd: Input should be greater than 0",
        ),
        ("{tag: team, monthly_usd: 10}", "budgets.1.value: Field required"),
    ],
)
def test_bad_budgets_are_one_line_naming_the_entry(tmp_path: Path, entry: str, where: str) -> None:
    path = write(tmp_path, f"budgets:\n  - {{tag: team, value: z, monthly_usd: 1}}\n  - {entry}\n")
    assert config_error(load_budgets, path) == f"{path}: {where}"


def test_two_budgets_for_one_tag_value_are_refused(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "budgets:\n  - {tag: team, value: a, monthly_usd: 10}\n"
        "  - {tag: team, value: a, monthly_usd: 20}\n",
    )
    assert config_error(load_budgets, path) == f"{path}: budgets: team=a has two budgets"


# -- a real store with planted jobs --------------------------------------------------------------


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(f"sqlite:///{tmp_path}/s.db")
    yield s
    s.close()


def settled(store: Store, tags: dict[str, str], usd: float, at: datetime) -> None:
    """A ledger line of ``usd`` settled at ``at``: one local node for the hour before it."""
    job_id = start(store, tags, price=usd, created=at - HOUR, started=at - HOUR)
    assert finish(store, job_id, at) == usd


# -- (a) this month's spend per budget ------------------------------------------------------------

A = Budget(tag="team", value="a", monthly_usd=1000)
B = Budget(tag="team", value="b", monthly_usd=500)


def test_budget_spend_is_this_months_ledger_plus_what_runs(store: Store) -> None:
    clock = Clock(NOW)
    settled(store, {"team": "a"}, 400.0, datetime(2026, 3, 31, 23, tzinfo=UTC))  # last month
    settled(store, {"team": "a"}, 20.0, datetime(2026, 4, 1, tzinfo=UTC))  # first instant
    settled(store, {"team": "a"}, 300.0, datetime(2026, 4, 2, 12, tzinfo=UTC))
    settled(store, {"team": "b"}, 700.0, datetime(2026, 4, 3, tzinfo=UTC))
    settled(store, {"project": "a"}, 50.0, datetime(2026, 4, 4, tzinfo=UTC))  # no team
    # Local: billed from the start. $2/h x 2 nodes x 25 h = $100 (the 5 h before: not billed).
    local = start(
        store, {"team": "a"}, price=2.0, nodes=2, created=NOW - 30 * HOUR, started=NOW - 25 * HOUR
    )
    # Cloud: billed from the ask. $1.50/h x 2 nodes x 4 h = $12.
    start(
        store,
        {"team": "a"},
        cloud="aws",
        price=1.5,
        nodes=2,
        created=NOW - 4 * HOUR,
        started=NOW - 2 * HOUR,
    )
    # Still provisioning: local costs nothing yet, cloud $1/h x 3 h = $3 already.
    start(store, {"team": "a"}, price=9.0, created=NOW - 5 * HOUR, started=None)
    start(store, {"team": "a"}, cloud="aws", price=1.0, created=NOW - 3 * HOUR, started=None)
    # Queued, no attempt: nothing.
    store.add_job(
        parse_spec({"run": "true", "tags": {"team": "a"}}, source="t", now=NOW),
        submitted_at=NOW,
        deadline_at=None,
    )

    finops = FinOps(store, clock, budgets=[A, B])
    sa, sb = finops.budget_statuses()
    # team=a: 20 + 300 + 100 + 12 + 3 = $435; forecast x3 (a third of April gone) = $1,305.
    assert sa.budget == A
    assert sa.spent == pytest.approx(435.0)
    assert sa.forecast == pytest.approx(1305.0)
    assert (sa.level, sa.forecast_level) == (BudgetLevel.OK, BudgetLevel.BRAKE)
    # team=b: $700 of $500, 140%: braked; forecast $2,100.
    assert sb.spent == pytest.approx(700.0)
    assert sb.forecast == pytest.approx(2100.0)
    assert sb.level is BudgetLevel.BRAKE

    # The local job ends now: its $100 moves from "running" to the ledger, not counted twice.
    assert finish(store, local, NOW) == pytest.approx(100.0)
    assert finops.budget_statuses()[0].spent == pytest.approx(435.0)

    # An hour later the cloud job has cost $3 more ($1.50 x 2), the provisioning one $1.
    clock.now = NOW + HOUR
    assert finops.budget_statuses()[0].spent == pytest.approx(439.0)


def test_no_budgets_no_statuses(store: Store) -> None:
    settled(store, {"team": "a"}, 10.0, NOW - DAY)
    assert FinOps(store, Clock(NOW)).budget_statuses() == []


# -- (b) tick: alerts raised once -----------------------------------------------------------------


def alert_keys(store: Store) -> list[str]:
    return [a.key for a in store.alerts()]


def test_tick_raises_each_budget_alert_once(store: Store) -> None:
    clock = Clock(NOW)
    settled(store, {"team": "a"}, 750.0, datetime(2026, 4, 5, 12, tzinfo=UTC))
    # $2/h x 2 nodes for 25 h: $100. Total $850 (85%: alert); forecast $2,550 (255%: brake).
    start(
        store, {"team": "a"}, price=2.0, nodes=2, created=NOW - 25 * HOUR, started=NOW - 25 * HOUR
    )
    finops = FinOps(store, clock, budgets=[A])

    described = "team=a: $850.00 of $1,000.00 this month (85%, alert); forecast $2,550.00 (255%)"
    assert finops.tick() == [
        f"budget: alert: {described}",
        f"budget-forecast: forecast pause: {described}",
        f"budget-forecast: forecast brake: {described}",
    ]
    assert [(a.key, a.kind, a.at) for a in store.alerts()] == [
        ("budget:team=a:2026-04:alert", "budget", NOW),
        ("budget-forecast:team=a:2026-04:pause", "budget-forecast", NOW),
        ("budget-forecast:team=a:2026-04:brake", "budget-forecast", NOW),
    ]

    # A minute later nothing new has happened: nothing is raised again.
    clock.now = NOW + timedelta(minutes=1)
    assert finops.tick() == []
    assert len(store.alerts()) == 3

    # An hour later a $200 line has settled: 750 + 200 + 2 x 2 x 26 = $1,054, 105%: pause.
    settled(store, {"team": "a"}, 200.0, NOW + timedelta(minutes=30))
    clock.now = NOW + HOUR
    [message] = finops.tick()
    assert message.startswith(
        "budget: pause: team=a: $1,054.00 of $1,000.00 this month (105%, pause); forecast $"
    )
    assert alert_keys(store) == [
        "budget:team=a:2026-04:alert",
        "budget-forecast:team=a:2026-04:pause",
        "budget-forecast:team=a:2026-04:brake",
        "budget:team=a:2026-04:pause",
    ]
    assert finops.tick() == []


def test_a_spend_spike_raises_one_anomaly(store: Store) -> None:
    # The week before (28 March to 4 April): team=a $100, team=b $100.
    settled(store, {"team": "a"}, 100.0, datetime(2026, 4, 1, tzinfo=UTC))
    settled(store, {"team": "b"}, 100.0, datetime(2026, 4, 1, tzinfo=UTC))
    # This week: team=a $300 (+200%), team=b $100 (steady).
    settled(store, {"team": "a"}, 300.0, datetime(2026, 4, 8, tzinfo=UTC))
    settled(store, {"team": "b"}, 100.0, datetime(2026, 4, 8, tzinfo=UTC))
    finops = FinOps(store, Clock(NOW))
    assert finops.tick() == [
        "anomaly: team=a spent $300.00 in the last 7 days, +200% on the $100.00 of the 7 days"
        " before (threshold +50%)"
    ]
    assert [(a.key, a.kind) for a in store.alerts()] == [("anomaly:wow:team=a:2026-W15", "anomaly")]
    assert finops.tick() == []
    assert len(store.alerts()) == 1


def test_steady_spend_raises_nothing(store: Store) -> None:
    for team, usd in (("a", 100.0), ("b", 50.0)):
        settled(store, {"team": team, "project": "p"}, usd, datetime(2026, 3, 30, tzinfo=UTC))
        settled(store, {"team": team, "project": "p"}, usd, datetime(2026, 4, 6, tzinfo=UTC))
    # Three weeks ago: outside both weeks, however big.
    settled(store, {"team": "a"}, 5000.0, datetime(2026, 3, 20, tzinfo=UTC))
    assert FinOps(store, Clock(NOW)).tick() == []
    assert store.alerts() == []


def test_what_runs_now_counts_as_this_weeks_spend(store: Store) -> None:
    settled(store, {"team": "c"}, 100.0, datetime(2026, 4, 1, tzinfo=UTC))
    # Nothing settled this week, but a cloud job asked for 50 h ago at $3/h: $150, +50%.
    start(
        store,
        {"team": "c"},
        cloud="aws",
        price=3.0,
        created=NOW - 50 * HOUR,
        started=NOW - 49 * HOUR,
    )
    [message] = FinOps(store, Clock(NOW)).tick()
    assert message == (
        "anomaly: team=c spent $150.00 in the last 7 days, +50% on the $100.00 of the 7 days"
        " before (threshold +50%)"
    )


def test_an_hourly_burn_spike_raises_one_anomaly(store: Store) -> None:
    # $336 in each of the last two weeks: steady; $2.00/h on average over the last 7 days.
    for at in (datetime(2026, 3, 30, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC)):
        settled(store, {"team": "a"}, 168.0, at)
    for at in (datetime(2026, 4, 6, tzinfo=UTC), datetime(2026, 4, 9, tzinfo=UTC)):
        settled(store, {"team": "a"}, 168.0, at)
    # Now: $3/h x 2 nodes = $6/h, 3x. (Its $6 so far makes this week +1.8%: no weekly spike.)
    start(
        store,
        {"team": "a"},
        cloud="aws",
        price=3.0,
        nodes=2,
        created=NOW - HOUR,
        started=NOW - HOUR,
    )
    finops = FinOps(store, Clock(NOW))
    assert finops.burn_per_hour() == 6.0
    assert finops.tick() == [
        "anomaly: burning $6.00/h now, 3.0x the $2.00/h average of the last 7 days (threshold 3x)"
    ]
    assert alert_keys(store) == ["anomaly:burn:2026-04-11T00"]


# -- (c) commitment headroom ----------------------------------------------------------------------

PLAN = Commitment(
    id="sp-1",
    kind=CommitmentKind.AWS_COMPUTE_SP,
    hourly_commitment=5.0,
    discount=0.5,
    start=datetime(2026, 1, 1, tzinfo=UTC),
    end=datetime(2027, 1, 1, tzinfo=UTC),
)


def test_headroom_ignores_scavengers_except_for_scavengers(store: Store) -> None:
    assert PLAN.capacity == 10.0  # $5/h / (1 - 0.5): $10/h of on-demand usage
    ago = NOW - HOUR
    # Standard, on-demand AWS: $3/h of the plan.
    start(store, {"team": "a"}, cloud="aws", price=3.0, created=ago, started=ago)
    # Scavenger, on-demand AWS: $2/h x 2 nodes = $4/h of the plan.
    start(
        store,
        {"team": "a"},
        cloud="aws",
        price=2.0,
        nodes=2,
        created=ago,
        started=ago,
        priority=Priority.SCAVENGER,
    )
    # Neither uses the plan: a spot scavenger, and a production job on the local cluster.
    start(
        store,
        {"team": "a"},
        cloud="aws",
        price=5.0,
        created=ago,
        started=ago,
        priority=Priority.SCAVENGER,
        market=MarketKind.SPOT,
    )
    start(store, {"team": "a"}, price=1.0, created=ago, started=ago, priority=Priority.PRODUCTION)
    clock = Clock(NOW)
    finops = FinOps(store, clock, commitments=lambda: [PLAN])
    assert sorted((r.priority, r.usage.on_demand_per_hour) for r in finops.running()) == sorted(
        [
            (Priority.STANDARD, 3.0),
            (Priority.SCAVENGER, 4.0),
            (Priority.SCAVENGER, 5.0),
            (Priority.PRODUCTION, 1.0),
        ]
    )

    big = offering(price=9.0)  # on-demand AWS, $9/h
    # Standard and production work: $10 - $3 = $7/h free (the scavenger would yield).
    assert finops.headroom(Priority.STANDARD).covered_per_hour(big, 1) == pytest.approx(7.0)
    assert finops.headroom(Priority.PRODUCTION).covered_per_hour(big, 1) == pytest.approx(7.0)
    # A scavenger sees what is really left: $10 - $3 - $4 = $3/h.
    assert finops.headroom(Priority.SCAVENGER).covered_per_hour(big, 1) == pytest.approx(3.0)
    # Never more than the placement's own price: $2/h x 2 nodes = $4/h.
    small = offering(price=2.0)
    assert finops.headroom(Priority.STANDARD).covered_per_hour(small, 2) == pytest.approx(4.0)
    assert finops.headroom(Priority.SCAVENGER).covered_per_hour(small, 2) == pytest.approx(3.0)
    # Not covered at all: spot, or another cloud.
    spot = offering(price=9.0, market=MarketKind.SPOT)
    assert finops.headroom(Priority.STANDARD).covered_per_hour(spot, 1) == 0.0
    gcp = offering(cloud="gcp", region="us-central1", instance_type="n2-standard-4", price=9.0)
    assert finops.headroom(Priority.STANDARD).covered_per_hour(gcp, 1) == 0.0
    # After the plan ends there is no headroom for anyone.
    clock.now = datetime(2027, 1, 1, tzinfo=UTC)
    assert finops.headroom(Priority.STANDARD).covered_per_hour(big, 1) == 0.0


def test_headroom_counts_jobs_placed_earlier_in_the_same_step(store: Store) -> None:
    """A placing step decides a batch before any of it runs: a job placed in the headroom
    must leave the next decision less of it, or both would be priced with the same credit."""
    ago = NOW - HOUR
    start(store, {"team": "a"}, cloud="aws", price=3.0, created=ago, started=ago)
    finops = FinOps(store, Clock(NOW), commitments=lambda: [PLAN])
    big = offering(price=9.0)
    assert finops.headroom(Priority.STANDARD).covered_per_hour(big, 1) == pytest.approx(7.0)
    placed = [Running(99, Priority.STANDARD, Usage.of(offering(price=5.0), 1, 5.0), NOW)]
    assert finops.headroom(Priority.STANDARD, placed).covered_per_hour(big, 1) == pytest.approx(2.0)
    scavenger = [Running(98, Priority.SCAVENGER, Usage.of(offering(price=5.0), 1, 5.0), NOW)]
    assert finops.headroom(Priority.STANDARD, scavenger).covered_per_hour(big, 1) == pytest.approx(
        7.0
    )  # production work sees past scavengers, placed or running
