"""Budgets: the three levels at their thresholds, the month's bounds, the burn-rate forecast,
what a level holds or stops, and the alert keys. Every expected figure is worked by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from jobs.spec import Priority
from scheduler.budgets import (
    Budget,
    BudgetLevel,
    BudgetStatus,
    alerts,
    braking,
    evaluate,
    holding,
    month_end,
    month_start,
)

# 10 days into April (30 days): a third of the month has gone.
APRIL_11 = datetime(2026, 4, 11, tzinfo=UTC)

A = Budget(tag="team", value="a", monthly_usd=1000)


def status(budget: Budget, spent: float, now: datetime = APRIL_11) -> BudgetStatus:
    [s] = evaluate([budget], {budget.key: spent}, now)
    return s


# -- levels -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spent", "level"),
    [
        (0.0, BudgetLevel.OK),
        (799.99, BudgetLevel.OK),
        (800.0, BudgetLevel.ALERT),  # 80% exactly
        (999.99, BudgetLevel.ALERT),
        (1000.0, BudgetLevel.PAUSE),  # 100% exactly
        (1199.99, BudgetLevel.PAUSE),
        (1200.0, BudgetLevel.BRAKE),  # 120% exactly
        (5000.0, BudgetLevel.BRAKE),
    ],
)
def test_default_levels_start_at_exactly_their_thresholds(spent: float, level: BudgetLevel) -> None:
    assert status(A, spent).level is level


def test_custom_levels() -> None:
    b = Budget(tag="project", value="x", monthly_usd=10, alert_at=0.5, pause_at=0.9, brake_at=1.0)
    assert b.key == "project=x"
    assert [status(b, usd).level for usd in (4.99, 5.0, 8.99, 9.0, 9.99, 10.0)] == [
        BudgetLevel.OK,
        BudgetLevel.ALERT,
        BudgetLevel.ALERT,
        BudgetLevel.PAUSE,
        BudgetLevel.PAUSE,
        BudgetLevel.BRAKE,
    ]
    # Levels may coincide: the highest one wins.
    flat = Budget(tag="team", value="a", monthly_usd=10, alert_at=1.0, pause_at=1.0, brake_at=1.0)
    assert flat.level(0.99) is BudgetLevel.OK
    assert flat.level(1.0) is BudgetLevel.BRAKE


@pytest.mark.parametrize(
    "levels",
    [
        {"alert_at": 0.9, "pause_at": 0.8},  # alert above pause
        {"pause_at": 1.3},  # pause above the default brake (1.2)
        {"alert_at": 1.5},  # alert above the default pause and brake
        {"brake_at": 0.7},  # brake below the default alert (0.8)
    ],
)
def test_a_budget_whose_levels_do_not_rise_is_refused(levels: dict[str, float]) -> None:
    with pytest.raises(ValidationError, match="levels must rise"):
        Budget(tag="team", value="a", monthly_usd=100, **levels)


def test_other_bad_budgets_are_refused() -> None:
    with pytest.raises(ValidationError, match="greater than 0"):
        Budget(tag="team", value="a", monthly_usd=0)
    with pytest.raises(ValidationError, match="at least 1 character"):
        Budget(tag="team", value="", monthly_usd=10)
    with pytest.raises(ValidationError, match="Extra inputs"):
        Budget.model_validate({"tag": "team", "value": "a", "monthly_usd": 10, "limit": 5})


def test_level_ranks_rise() -> None:
    assert [lv.rank for lv in BudgetLevel] == [0, 1, 2, 3]
    assert BudgetLevel.BRAKE.rank > BudgetLevel.PAUSE.rank > BudgetLevel.ALERT.rank


# -- the month ----------------------------------------------------------------------------------


def test_month_start_and_end() -> None:
    now = datetime(2026, 3, 17, 15, 30, 5, 123, tzinfo=UTC)
    assert month_start(now) == datetime(2026, 3, 1, tzinfo=UTC)
    assert month_end(now) == datetime(2026, 4, 1, tzinfo=UTC)
    # The very first instant of a month is in that month.
    assert month_start(datetime(2026, 3, 1, tzinfo=UTC)) == datetime(2026, 3, 1, tzinfo=UTC)


def test_december_ends_in_january_of_the_next_year() -> None:
    now = datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert month_start(now) == datetime(2026, 12, 1, tzinfo=UTC)
    assert month_end(now) == datetime(2027, 1, 1, tzinfo=UTC)


def test_the_month_is_the_utc_month() -> None:
    # 01:00 on 1 April at UTC+2 is still 23:00 on 31 March in UTC, where clouds bill.
    now = datetime(2026, 4, 1, 1, 0, tzinfo=timezone(timedelta(hours=2)))
    assert month_start(now) == datetime(2026, 3, 1, tzinfo=UTC)
    assert month_end(now) == datetime(2026, 4, 1, tzinfo=UTC)
    # February of a leap year.
    assert month_end(datetime(2028, 2, 29, 12, tzinfo=UTC)) == datetime(2028, 3, 1, tzinfo=UTC)


# -- evaluate: spend and forecast ---------------------------------------------------------------


def test_forecast_is_spend_over_the_fraction_of_the_month_gone() -> None:
    b = Budget(tag="team", value="b", monthly_usd=500)
    sa, sb = evaluate([A, b], {"team=a": 300.0, "team=other": 9999.0}, APRIL_11)
    # $300 10 days into a 30-day month: $300 / (10/30) = $900.
    assert (sa.budget, sa.spent) == (A, 300.0)
    assert sa.forecast == pytest.approx(900.0)
    assert sa.fraction == pytest.approx(0.3)
    assert sa.level is BudgetLevel.OK
    assert sa.forecast_level is BudgetLevel.ALERT  # 90% >= 80%
    # No spend under a budget's key: nothing spent, nothing forecast.
    assert (sb.spent, sb.forecast, sb.level) == (0.0, 0.0, BudgetLevel.OK)


@pytest.mark.parametrize(
    ("now", "spent", "forecast"),
    [
        # 14 of 28 days of February 2026: $100 / 0.5 = $200.
        (datetime(2026, 2, 15, tzinfo=UTC), 100.0, 200.0),
        # 10 of 31 days of December: $310 x 31 / 10 = $961.
        (datetime(2026, 12, 11, tzinfo=UTC), 310.0, 961.0),
        # 12 hours into a 30-day month (1/60 of it): $5 x 60 = $300.
        (datetime(2026, 4, 1, 12, tzinfo=UTC), 5.0, 300.0),
        # The last hour of April: 719/720 of the month; $719 -> $720.
        (datetime(2026, 4, 30, 23, tzinfo=UTC), 719.0, 720.0),
    ],
)
def test_forecast_hand_computed(now: datetime, spent: float, forecast: float) -> None:
    assert status(A, spent, now).forecast == pytest.approx(forecast)


def test_at_the_first_instant_of_the_month_the_forecast_is_the_spend() -> None:
    # No time has passed: there is no burn rate to extrapolate (and no division by zero).
    s = status(A, 42.0, datetime(2026, 4, 1, tzinfo=UTC))
    assert (s.spent, s.forecast) == (42.0, 42.0)


def test_describe_says_spend_budget_level_and_forecast() -> None:
    assert status(A, 300.0).describe() == (
        "team=a: $300.00 of $1,000.00 this month (30%, ok); forecast $900.00 (90%)"
    )


# -- holding: pause and brake hold the queue ----------------------------------------------------


def statuses_abc() -> list[BudgetStatus]:
    """team=a paused (100%), team=b braked (120%), team=c alerted (90%)."""
    budgets = [
        A,
        Budget(tag="team", value="b", monthly_usd=100),
        Budget(tag="team", value="c", monthly_usd=100),
    ]
    out = evaluate(budgets, {"team=a": 1000.0, "team=b": 120.0, "team=c": 90.0}, APRIL_11)
    assert [s.level for s in out] == [BudgetLevel.PAUSE, BudgetLevel.BRAKE, BudgetLevel.ALERT]
    return out


def test_pause_and_brake_hold_non_production_jobs_of_that_tag_value() -> None:
    s = statuses_abc()
    sa, sb = s[0], s[1]
    for priority in (Priority.STANDARD, Priority.SCAVENGER):
        assert holding(s, {"team": "a"}, priority) is sa
        assert holding(s, {"team": "b", "environment": "prod"}, priority) is sb


def test_holding_never_holds_production() -> None:
    for tags in ({"team": "a"}, {"team": "b"}, {}):
        assert holding(statuses_abc(), tags, Priority.PRODUCTION) is None


def test_holding_never_holds_other_tag_values() -> None:
    s = statuses_abc()
    assert holding(s, {"team": "c"}, Priority.STANDARD) is None  # alert only
    assert holding(s, {"team": "d"}, Priority.STANDARD) is None
    assert holding(s, {}, Priority.STANDARD) is None
    assert holding(s, {"project": "a"}, Priority.STANDARD) is None  # same value, other tag
    assert holding(s, {"team": "A"}, Priority.STANDARD) is None  # values are exact


# -- braking: the brake stops running jobs ------------------------------------------------------

REQUIRED = ("team", "project")


def test_brake_stops_development_jobs_of_that_tag_value() -> None:
    s = statuses_abc()
    sb = s[1]
    for env in ("development", "dev", "Development", "DEV"):
        tags = {"team": "b", "project": "p", "environment": env}
        assert braking(s, tags, Priority.STANDARD, REQUIRED) == sb
        assert braking(s, tags, Priority.SCAVENGER, REQUIRED) == sb
        assert braking(s, tags, Priority.PRODUCTION, REQUIRED) is None


def test_brake_spares_other_environments_and_other_tag_values() -> None:
    s = statuses_abc()
    # Braked team, but not development work.
    assert (
        braking(
            s, {"team": "b", "project": "p", "environment": "prod"}, Priority.STANDARD, REQUIRED
        )
        is None
    )
    assert braking(s, {"team": "b", "project": "p"}, Priority.STANDARD, REQUIRED) is None
    # Development work of a team that is only paused, or only alerted, or has no budget.
    for team in ("a", "c", "d"):
        tags = {"team": team, "project": "p", "environment": "dev"}
        assert braking(s, tags, Priority.STANDARD, REQUIRED) is None


def test_under_any_brake_jobs_missing_a_required_tag_are_stopped() -> None:
    s = statuses_abc()
    sb = s[1]
    # team=d has no budget at all: it is stopped because nobody owns the spend of "project".
    assert braking(s, {"team": "d", "environment": "prod"}, Priority.STANDARD, REQUIRED) == sb
    assert braking(s, {"team": "d", "project": "  "}, Priority.STANDARD, REQUIRED) == sb
    assert braking(s, {}, Priority.SCAVENGER, REQUIRED) == sb
    # Production never.
    assert braking(s, {}, Priority.PRODUCTION, REQUIRED) is None
    # All required tags there, not development: left running.
    assert braking(s, {"team": "d", "project": "p"}, Priority.STANDARD, REQUIRED) is None
    # Nothing required: nothing is missing.
    assert braking(s, {}, Priority.STANDARD, ()) is None


def test_pause_alone_stops_nothing() -> None:
    sa, _, sc = statuses_abc()
    paused = [sa, sc]
    assert (
        braking(
            paused, {"team": "a", "project": "p", "environment": "dev"}, Priority.STANDARD, REQUIRED
        )
        is None
    )
    assert braking(paused, {}, Priority.SCAVENGER, REQUIRED) is None


# -- alerts: one key per level, month and budget --------------------------------------------------


def keys(statuses: list[BudgetStatus], now: datetime = APRIL_11) -> list[str]:
    return [k for k, _ in alerts(statuses, now)]


def test_nothing_reached_nothing_forecast_no_alert() -> None:
    # $200 a third into the month: 20% now, 60% forecast.
    assert alerts([status(A, 200.0)], APRIL_11) == []


def test_reached_level_and_forecast_levels_above_it() -> None:
    # $850 a third into April: 85% (alert) now, forecast $2,550 (255%: brake).
    [(k1, m1), (k2, m2), (k3, m3)] = alerts([status(A, 850.0)], APRIL_11)
    described = "team=a: $850.00 of $1,000.00 this month (85%, alert); forecast $2,550.00 (255%)"
    assert (k1, m1) == ("budget:team=a:2026-04:alert", f"alert: {described}")
    assert (k2, m2) == ("budget-forecast:team=a:2026-04:pause", f"forecast pause: {described}")
    assert (k3, m3) == ("budget-forecast:team=a:2026-04:brake", f"forecast brake: {described}")


def test_forecast_keys_only_above_the_present_level() -> None:
    # $300 a third in: OK now, forecast $900 (alert) -> one forecast key.
    assert keys([status(A, 300.0)]) == ["budget-forecast:team=a:2026-04:alert"]
    # $1,000 two thirds in (21 April): pause now, forecast $1,500 (brake).
    april_21 = datetime(2026, 4, 21, tzinfo=UTC)
    assert keys([status(A, 1000.0, april_21)], april_21) == [
        "budget:team=a:2026-04:alert",
        "budget:team=a:2026-04:pause",
        "budget-forecast:team=a:2026-04:brake",
    ]
    # Braked: every level reached, nothing left to forecast.
    assert keys([status(A, 1300.0)]) == [
        "budget:team=a:2026-04:alert",
        "budget:team=a:2026-04:pause",
        "budget:team=a:2026-04:brake",
    ]
    # At the last hour the forecast equals the level reached: no forecast key.
    last_hour = datetime(2026, 4, 30, 23, tzinfo=UTC)
    assert keys([status(A, 810.0, last_hour)], last_hour) == ["budget:team=a:2026-04:alert"]


def test_keys_are_per_budget_and_month_and_stable_within_the_month() -> None:
    b = Budget(tag="project", value="x", monthly_usd=100)
    dec = datetime(2026, 12, 31, tzinfo=UTC)  # 30 of 31 days gone
    statuses = evaluate([A, b], {"team=a": 1000.0, "project=x": 10.0}, dec)
    first = keys(statuses, dec)
    # $1,000 x 31/30 = $1,033.33 forecast: 103%, a pause, already reached: no forecast key;
    # project=x: $10 x 31/30 = $10.33, 10%: nothing.
    assert first == ["budget:team=a:2026-12:alert", "budget:team=a:2026-12:pause"]
    assert keys(statuses, dec) == first  # the same facts give the same keys: raised once
    assert len(set(first)) == len(first)
    # Next month the same levels are new keys.
    jan = datetime(2027, 1, 20, tzinfo=UTC)
    statuses = evaluate([A, b], {"team=a": 1000.0, "project=x": 10.0}, jan)
    assert keys(statuses, jan) == [
        "budget:team=a:2027-01:alert",
        "budget:team=a:2027-01:pause",
        "budget-forecast:team=a:2027-01:brake",  # $1000 x 31/19 = $1,631.58
    ]
