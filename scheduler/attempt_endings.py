"""How an attempt ends, and what is written when it does: the ledger line, the attempt's
outcome, the job's next state, and the cluster given back or terminated.

Every ending is one store transition (so a crash leaves either the old state or the new
one), followed by the cluster step, which is safe to repeat. The controller decides *that*
an attempt ended (Ray said so, the cloud took a machine, a launch was refused); this
module records it the same way whichever path found it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from jobs.lifecycle import AttemptState, JobState
from scheduler.clusters import CloudBusy, ClusterManager, LaunchRefused
from scheduler.launch_faults import FaultKind
from scheduler.ledger import settle
from scheduler.placement import Placement
from scheduler.records import AttemptRecord, JobRecord, LedgerRecord
from scheduler.store import StaleState, Store

ACTIVE = (JobState.PROVISIONING, JobState.RUNNING)


class AttemptEndings:
    def __init__(
        self,
        store: Store,
        clock: Callable[[], datetime],
        clusters: ClusterManager | None,
        cooldown_s: float,
    ) -> None:
        """``cooldown_s``: how long re-planning keeps away from a refused pool (quoted in
        the event that says so)."""
        self.store = store
        self.clock = clock
        self.clusters = clusters
        self.cooldown_s = cooldown_s

    def is_cloud(self, attempt: AttemptRecord) -> bool:
        return self.clusters is not None and attempt.cloud in self.clusters.clouds

    def cloud_busy(self, job: JobRecord, attempt: AttemptRecord, exc: CloudBusy) -> None:
        """Throttled or unavailable past the client's own retries: the job stays where it
        is. Said in the job's events once per error code and attempt, however many passes
        it lasts."""
        prefix = f"cloud busy ({exc.fault.code})"
        assert job.id is not None
        self.store.note_event_once(
            job.id,
            attempt.id,
            job.state,
            prefix,
            f"{prefix}, asking again next pass: {exc}",
            self.clock(),
        )

    def launch_refused(
        self, job: JobRecord, attempt: AttemptRecord, exc: LaunchRefused
    ) -> JobRecord:
        """No capacity (for the pool) or no quota (in the cloud's region): the attempt ends
        saying which, its cluster is already gone, and the job is placed again while
        re-planning blocks the pool or region (migration.py). Not an interruption: nothing
        ran and nothing was taken back, so max_interruptions is not spent."""
        assert job.id is not None
        now = self.clock()
        placement = Placement.model_validate_json(attempt.placement_json)
        o = placement.offering
        capacity = exc.fault.kind is FaultKind.CAPACITY
        outcome = AttemptState.NO_CAPACITY if capacity else AttemptState.NO_QUOTA
        # Billed from the request only if a machine had come up (a head whose workers
        # were refused); a launch refused outright cost nothing.
        line = settle(attempt, now, outcome, attempt.created_at if exc.launched else None)
        what = "no capacity" if capacity else "no quota"
        self.store.transition(
            job.id,
            JobState.PREEMPTED,
            at=now,
            expect=[JobState.PROVISIONING],
            reason=f"{what} for {placement.describe()}: {exc.fault.describe()}",
            job_updates={"cost": job.cost + line.total_usd},
            attempt_updates={
                "state": outcome,
                "ended_at": now,
                "message": exc.fault.describe(),
                "cost": line.total_usd,
            },
            ledger=line,
        )
        self.release(attempt)
        blocked = f"pool {o.pool}" if capacity else f"{o.cloud} region {o.region}"
        cooldown = self.cooldown_s
        return self.store.transition(
            job.id,
            JobState.MIGRATING,
            at=now,
            expect=[JobState.PREEMPTED],
            reason=f"placing again without {blocked} for {cooldown:g} s (not an interruption)",
        )

    def preempted(self, job: JobRecord, attempt: AttemptRecord, ray_message: str) -> None:
        """Record the loss; the next step re-plans without that pool and resumes the job
        from its last checkpoint."""
        placement = Placement.model_validate_json(attempt.placement_json)
        first_line = ray_message.strip().splitlines()[0] if ray_message.strip() else ""
        self._end(
            job,
            attempt,
            AttemptState.PREEMPTED,
            JobState.PREEMPTED,
            reason=f"lost {placement.describe()} (pool {placement.offering.pool}): {first_line}",
            message=first_line or "node lost",
            expect=ACTIVE,
            job_updates={"interruptions": job.interruptions + 1},
        )
        if self.is_cloud(attempt) and attempt.id is not None:
            assert self.clusters is not None
            record = self.clusters.held_by(attempt.id)
            if record is not None:
                self.clusters.terminate(record, f"preempted: {first_line}")

    def settle(self, attempt: AttemptRecord, now: datetime, outcome: AttemptState) -> LedgerRecord:
        """Cloud machines bill from when they were asked for (the attempt's placement), so
        the boot the plan priced is in the ledger too; local ones from the start on Ray."""
        billed_from = attempt.created_at if self.is_cloud(attempt) else None
        return settle(attempt, now, outcome, billed_from)

    def release(self, attempt: AttemptRecord) -> None:
        if self.is_cloud(attempt) and attempt.id is not None:
            assert self.clusters is not None
            self.clusters.release(attempt.id)

    def fail(self, job: JobRecord, attempt: AttemptRecord, why: str) -> JobRecord:
        failed = self._end(
            job,
            attempt,
            AttemptState.FAILED,
            JobState.FAILED,
            reason=why,
            message=why,
            job_updates={"message": why},
        )
        self.release(attempt)
        return failed

    def yielded(self, job: JobRecord, attempt: AttemptRecord, why: str) -> None:
        """A scavenger stepped aside: no interruption counted, no pool blocked, its cluster
        given back; it queues again. Left alone if it ended meanwhile."""
        with contextlib.suppress(StaleState):
            self._end(
                job,
                attempt,
                AttemptState.YIELDED,
                JobState.PREEMPTED,
                reason=f"yielded: {why}",
                message=why,
                expect=ACTIVE,
            )
            self.release(attempt)

    def _end(
        self,
        job: JobRecord,
        attempt: AttemptRecord,
        outcome: AttemptState,
        target: JobState,
        *,
        reason: str,
        message: str,
        expect: Sequence[JobState] | None = None,
        job_updates: dict[str, Any] | None = None,
    ) -> JobRecord:
        """The attempt settled (its ledger line) and ended with ``outcome``, the job moved
        to ``target`` with the cost added: one transition."""
        assert job.id is not None
        now = self.clock()
        line = self.settle(attempt, now, outcome)
        return self.store.transition(
            job.id,
            target,
            at=now,
            expect=expect,
            reason=reason,
            job_updates={**(job_updates or {}), "cost": job.cost + line.total_usd},
            attempt_updates={
                "state": outcome,
                "ended_at": now,
                "message": message,
                "cost": line.total_usd,
            },
            ledger=line,
        )

    def unreadable(self, job: JobRecord, exc: ValidationError) -> str:
        """A stored spec this version no longer accepts (written by an older one, or by
        hand): that job fails with the reason; the others go on."""
        assert job.id is not None
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        why = f"its stored spec is no longer valid: {where}: {first['msg']}"
        current = self.store.get_job(job.id)
        if current.current_attempt_id is not None and JobState(current.state) in ACTIVE:
            self.fail(current, self.store.attempt(current.current_attempt_id), why)
        elif not JobState(current.state).terminal:
            self.store.transition(
                job.id,
                JobState.FAILED,
                at=self.clock(),
                expect=[JobState(current.state)],
                reason=why,
                job_updates={"message": why},
            )
        return f"job {job.id}: {why}"
