"""What the controller asks of commitments, budgets and anomalies, read from the database.

The decisions are the pure modules' (commitments, scavenger, budgets, anomalies); this
class only gathers their inputs: what runs now and at what price, what the ledger says
was spent, and which alerts were already raised.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from jobs.spec import Priority
from providers.commitment import Commitment
from scheduler.anomalies import Spend, hourly_burn, week_over_week
from scheduler.budgets import Budget, BudgetStatus, alerts, evaluate, month_start
from scheduler.commitments import Headroom, allocate, attempt_usage
from scheduler.ledger import hours_run
from scheduler.records import JobRecord
from scheduler.scavenger import Running
from scheduler.store import Store

Clock = Callable[[], datetime]


def job_tags(job: JobRecord) -> dict[str, str]:
    return {str(k): str(v) for k, v in json.loads(job.tags_json).items()}


class FinOps:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        commitments: Callable[[], Sequence[Commitment]] = tuple,
        budgets: Sequence[Budget] = (),
        anomaly_keys: Sequence[str] = ("team", "project", "cost_center"),
    ) -> None:
        self.store = store
        self.clock = clock
        self._commitments = commitments
        self.budgets = list(budgets)
        self.anomaly_keys = list(anomaly_keys)

    @property
    def commitments(self) -> list[Commitment]:
        return list(self._commitments())

    # -- commitments --------------------------------------------------------------------

    def running(self) -> list[Running]:
        """Everything on a cluster now, as the scavenger policy sees it."""
        out = []
        for job, attempt in self.store.active():
            started = attempt.started_at or attempt.created_at
            usage = attempt_usage(attempt)
            out.append(Running(job.id or 0, Priority(job.priority), usage, started))
        return out

    def headroom(self, priority: Priority, placed: Sequence[Running] = ()) -> Headroom:
        """Commitment credit for a job of this priority: scavengers see what is left after
        everything running; other work sees the headroom as if no scavenger ran, since
        scavengers give it back on demand. ``placed``: jobs placed but not yet running
        (earlier in the same placing step), which will use what they were priced with."""
        running = [*self.running(), *placed]
        if priority is not Priority.SCAVENGER:
            running = [r for r in running if r.priority is not Priority.SCAVENGER]
        return Headroom(allocate(self.commitments, [r.usage for r in running], self.clock()))

    # -- budgets and anomalies ----------------------------------------------------------

    def spend(self, since: datetime, *, running: bool = True) -> list[Spend]:
        """Settled spend since ``since``, plus (``running``) what running attempts have cost
        so far, dated just before now so that it falls in windows ending now."""
        now = self.clock()
        out = [
            Spend(line.settled_at, line.total_usd, job_tags(job))
            for line, job in self.store.ledger_since(since)
        ]
        if not running:
            return out
        for job, attempt in self.store.active():
            billed_from = attempt.started_at if attempt.cloud == "local" else attempt.created_at
            hours = hours_run(attempt, now, billed_from)
            usd = attempt.price_per_hour * attempt.num_nodes * hours
            out.append(Spend(now - timedelta(microseconds=1), usd, job_tags(job)))
        return out

    def budget_statuses(self) -> list[BudgetStatus]:
        if not self.budgets:
            return []
        now = self.clock()
        spent: dict[str, float] = {}
        for s in self.spend(month_start(now)):
            for b in self.budgets:
                if b.matches(s.tags):
                    spent[b.key] = spent.get(b.key, 0.0) + s.usd
        return evaluate(self.budgets, spent, now)

    def burn_per_hour(self) -> float:
        return sum(a.price_per_hour * a.num_nodes for _, a in self.store.active())

    def tick(self) -> list[str]:
        """Raise each new budget level, forecast and anomaly once; return their messages."""
        now = self.clock()
        found: list[tuple[str, str, str]] = []
        self._commitments()  # reading them (live, maybe) is what sets the source's warning
        warning = getattr(self._commitments, "warning", None)
        if warning:
            found.append((f"commitments:{now:%Y-%m-%dT%H}:{warning}"[:500], "commitments", warning))
        for key, message in alerts(self.budget_statuses(), now):
            found.append((key, key.split(":", 1)[0], message))
        since = now - timedelta(days=14)
        for a in week_over_week(self.spend(since), self.anomaly_keys, now):
            found.append((a.key, "anomaly", a.message))
        for a in hourly_burn(self.spend(since, running=False), self.burn_per_hour(), now):
            found.append((a.key, "anomaly", a.message))
        return [
            f"{kind}: {message}"
            for key, kind, message in found
            if self.store.raise_alert(key, kind, message, now)
        ]
