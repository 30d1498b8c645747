"""Budgets acting on real jobs: the brake stops a running development job on the local Ray
cluster, pause holds the queue for that team, production still runs, alerts are raised
once. The clock is injected: an hour passes when the test says so."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from jobs.lifecycle import JobState
from scheduler.api import Scheduler
from scheduler.config import load_settings
from tests.conftest import RayTestCluster

BUDGETS = """\
budgets:
  - {tag: team, value: a, monthly_usd: 10, alert_at: 0.5, pause_at: 1.0, brake_at: 1.5}
  - {tag: team, value: b, monthly_usd: 1000}
"""


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(day=10, hour=12)

    def __call__(self) -> datetime:
        return self.now


def job(name: str, team: str, environment: str, priority: str = "standard") -> dict[str, object]:
    return {
        "name": name,
        "run": "python -c 'import time; time.sleep(120)'",
        "priority": priority,
        "tags": {"team": team, "environment": environment},
    }


def test_brake_stops_development_work_and_pause_holds_the_queue(
    ray_cluster: RayTestCluster, tmp_path: Path
) -> None:
    budgets = tmp_path / "budgets.yaml"
    budgets.write_text(BUDGETS)
    settings = load_settings(
        {
            "SCHED_HOME": str(tmp_path / "home"),
            "SCHED_REQUIRED_TAGS": "team",
            "SCHED_BUDGETS": str(budgets),
            "SCHED_LOCAL_PRICE_PER_HOUR": "10",
            "SCHED_POLL_INTERVAL": "0.2",
            **ray_cluster.env(),
        }
    )
    clock = Clock()
    s = Scheduler(settings, clock=clock)
    dev = s.submit(job("dev-a", "a", "development"))
    other = s.submit(job("dev-b", "b", "development"))
    assert s.get(dev.id).state is JobState.RUNNING
    assert s.reconcile() == []  # $0 spent: nothing to say

    clock.now += timedelta(minutes=36)  # $6 of $10: past the 50% alert
    said = s.reconcile()
    assert said[0].startswith("budget: alert: team=a: $6.00 of $10.00 this month (60%, alert)")
    # Nine and a half days in, $6 a month is on course for about $19: past pause and brake.
    assert sorted(w.split(": team=")[0] for w in said[1:]) == [
        "budget-forecast: forecast brake",
        "budget-forecast: forecast pause",
    ]
    assert s.reconcile() == []  # raised once, not every tick

    clock.now += timedelta(minutes=60)  # $16: past the 150% brake
    said = s.reconcile()
    assert any("budget brake stopped job" in w and str(dev.id) in w for w in said), said
    stopped = s.get(dev.id)
    assert stopped.state is JobState.CANCELLED
    assert (stopped.message or "").startswith("stopped by budget brake: team=a: $16.00 of $10.00")
    assert s.get(other.id).state is JobState.RUNNING  # team b is within its budget

    held = s.submit(job("more-a", "a", "research"))
    assert s.get(held.id).state is JobState.PENDING
    assert (s.get(held.id).message or "").startswith("held: budget team=a")
    urgent = s.submit(job("prod-a", "a", "production", priority="production"))
    assert s.get(urgent.id).state is JobState.RUNNING  # production is never held

    kinds = sorted(a.key.rsplit(":", 1)[1] for a in s.store.alerts() if a.kind == "budget")
    assert kinds == ["alert", "brake", "pause"]
    for j in (other, urgent):
        s.cancel(j.id)
    s.close()
