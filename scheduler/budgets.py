"""Monthly budgets per tag value, with three levels, and a forecast from the burn rate.

- **alert** (default 80% of the month's budget): an alert is recorded and shown once.
- **pause** (100%): jobs of that tag value that are not production are held in the queue.
- **brake** (120%): on top of the pause, running development jobs of that tag value, and
  running jobs missing a mandatory tag (spend nobody owns), are stopped.

The forecast extrapolates this month's spend at the month's average burn so far; it
raises an alert (never a pause or brake) when the month is heading past a level, so
there is time to act before the money is gone. Pure: spend and time are passed in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

from jobs.spec import Priority
from scheduler.tags import missing_tags

DEVELOPMENT = frozenset({"development", "dev"})


class BudgetLevel(StrEnum):
    OK = "ok"
    ALERT = "alert"
    PAUSE = "pause"
    BRAKE = "brake"

    @property
    def rank(self) -> int:
        return list(BudgetLevel).index(self)


class Budget(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    tag: str = Field(min_length=1, description="The tag key: team, project, cost_center, ...")
    value: str = Field(min_length=1, description="The tag value this budget is for.")
    monthly_usd: float = Field(gt=0)
    alert_at: float = Field(default=0.8, gt=0, description="Fraction of the budget.")
    pause_at: float = Field(default=1.0, gt=0)
    brake_at: float = Field(default=1.2, gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> Budget:
        if not self.alert_at <= self.pause_at <= self.brake_at:
            raise ValueError("levels must rise: alert_at <= pause_at <= brake_at")
        return self

    @property
    def key(self) -> str:
        return f"{self.tag}={self.value}"

    def matches(self, tags: Mapping[str, str]) -> bool:
        return str(tags.get(self.tag, "")) == self.value

    def level(self, fraction: float) -> BudgetLevel:
        if fraction >= self.brake_at:
            return BudgetLevel.BRAKE
        if fraction >= self.pause_at:
            return BudgetLevel.PAUSE
        if fraction >= self.alert_at:
            return BudgetLevel.ALERT
        return BudgetLevel.OK


def month_start(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def month_end(now: datetime) -> datetime:
    start = month_start(now)
    return (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else start.replace(month=start.month + 1)
    )


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    budget: Budget
    spent: float
    forecast: float  # the month's spend if it goes on at this month's average burn

    @property
    def fraction(self) -> float:
        return self.spent / self.budget.monthly_usd

    @property
    def level(self) -> BudgetLevel:
        return self.budget.level(self.fraction)

    @property
    def forecast_level(self) -> BudgetLevel:
        return self.budget.level(self.forecast / self.budget.monthly_usd)

    def describe(self) -> str:
        b = self.budget
        return (
            f"{b.key}: ${self.spent:,.2f} of ${b.monthly_usd:,.2f} this month"
            f" ({self.fraction:.0%}, {self.level}); forecast ${self.forecast:,.2f}"
            f" ({self.forecast / b.monthly_usd:.0%})"
        )


def evaluate(
    budgets: Sequence[Budget], spent: Mapping[str, float], now: datetime
) -> list[BudgetStatus]:
    """``spent``: this month's spend by budget key (``team=nlp``)."""
    start, end = month_start(now), month_end(now)
    elapsed = (now - start).total_seconds() / (end - start).total_seconds()
    out = []
    for b in budgets:
        so_far = spent.get(b.key, 0.0)
        forecast = so_far / elapsed if elapsed > 0 else so_far
        out.append(BudgetStatus(b, so_far, forecast))
    return out


def holding(
    statuses: Sequence[BudgetStatus], tags: Mapping[str, str], priority: Priority
) -> BudgetStatus | None:
    """The paused (or braked) budget that holds a queued job; production is never held."""
    if priority is Priority.PRODUCTION:
        return None
    for s in statuses:
        if s.level.rank >= BudgetLevel.PAUSE.rank and s.budget.matches(tags):
            return s
    return None


def braking(
    statuses: Sequence[BudgetStatus],
    tags: Mapping[str, str],
    priority: Priority,
    required: Sequence[str],
) -> BudgetStatus | None:
    """The braked budget that stops a running job: a development job of that tag value,
    or, under any brake, a job missing a mandatory tag. Production is never braked."""
    if priority is Priority.PRODUCTION:
        return None
    untagged = bool(missing_tags(tags, required))
    development = str(tags.get("environment", "")).lower() in DEVELOPMENT
    for s in statuses:
        if s.level is not BudgetLevel.BRAKE:
            continue
        if untagged or (development and s.budget.matches(tags)):
            return s
    return None


def alerts(statuses: Sequence[BudgetStatus], now: datetime) -> list[tuple[str, str]]:
    """(dedupe key, message) for each level reached this month, and each forecast level
    above the present one: the caller records each key once."""
    month = month_start(now).strftime("%Y-%m")
    out = []
    for s in statuses:
        for level in BudgetLevel:
            if level is BudgetLevel.OK:
                continue
            if s.level.rank >= level.rank:
                out.append((f"budget:{s.budget.key}:{month}:{level}", f"{level}: {s.describe()}"))
            elif s.forecast_level.rank >= level.rank:
                out.append(
                    (
                        f"budget-forecast:{s.budget.key}:{month}:{level}",
                        f"forecast {level}: {s.describe()}",
                    )
                )
    return out
