"""The Python API: what pipelines call, and what the CLI is a thin layer over."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from jobs.lifecycle import AttemptState, JobState
from jobs.loading import SpecError, load_spec, parse_spec
from jobs.secrets import Keyring, process_keyring
from jobs.spec import JobSpec
from providers.base import Provider
from providers.commitment import Commitment
from providers.feeds import SpotPricePoint
from providers.local import (
    ExistingRayCluster,
    LocalProvider,
    LocalRayCluster,
    LocalRayConfig,
    RayCluster,
    detect_machine,
)
from providers.offering import MarketKind
from scheduler.audit import Finding, StopResult, audit, metric_window_hours, to_stop
from scheduler.clouds import auditors, build_price_book, cluster_manager, live_commitments
from scheduler.cluster_store import ClusterStore
from scheduler.commitments import HourAllocation, hourly
from scheduler.config import Settings, load_settings
from scheduler.controller import Controller
from scheduler.finops import FinOps
from scheduler.finops_config import load_budgets, load_commitments
from scheduler.placement import Plan
from scheduler.price_query import PriceQuery, select_offerings
from scheduler.pricebook import PriceBook, PriceView, Refresh
from scheduler.ray_jobs import RayJobs, RayUnavailable
from scheduler.records import (
    AttemptRecord,
    ClusterRecord,
    ClusterState,
    EventRecord,
    JobRecord,
    LedgerRecord,
)
from scheduler.report import CostLine
from scheduler.store import Store
from scheduler.tags import missing_tags

_ON_CLUSTER = {JobState.PROVISIONING, JobState.RUNNING}


def utc_now() -> datetime:
    return datetime.now(UTC)


class JobView(BaseModel):
    """A job as shown to people and scripts (``sched status --json``)."""

    id: int
    name: str
    state: JobState
    priority: str
    submitted_at: datetime
    updated_at: datetime
    deadline_at: datetime | None
    cloud: str | None
    region: str | None
    zone: str | None
    instance_type: str | None
    market: str | None
    price_per_hour: float | None
    attempts: int
    submission_id: str | None = None
    interruptions: int
    exit_code: int | None
    message: str | None
    cost: float
    tags: dict[str, str]

    @classmethod
    def of(cls, job: JobRecord, attempts: list[AttemptRecord]) -> JobView:
        current = next((a for a in attempts if a.id == job.current_attempt_id), None)
        return cls(
            id=job.id or 0,
            name=job.name,
            state=JobState(job.state),
            priority=job.priority,
            submitted_at=job.submitted_at,
            updated_at=job.updated_at,
            deadline_at=job.deadline_at,
            cloud=current.cloud if current else None,
            region=current.region if current else None,
            zone=current.zone if current else None,
            instance_type=current.instance_type if current else None,
            market=current.market if current else None,
            price_per_hour=current.price_per_hour * current.num_nodes if current else None,
            attempts=len(attempts),
            submission_id=current.submission_id if current else None,
            interruptions=job.interruptions,
            exit_code=job.exit_code,
            message=job.message,
            cost=job.cost,
            tags=json.loads(job.tags_json),
        )


class LiveCommitments:
    """The declared commitments, plus the clouds' own (SCHED_COMMITMENTS_LIVE) read again
    after the price TTL. A cloud that cannot be read leaves the last list in force and
    says why once (``warning``): commitments are paid for either way."""

    def __init__(
        self, settings: Settings, declared: list[Commitment], clock: Callable[[], datetime]
    ) -> None:
        self.settings = settings
        self.declared = declared
        self.clock = clock
        self._cached: tuple[datetime, list[Commitment]] | None = None
        self.warning: str | None = None

    def __call__(self) -> list[Commitment]:
        if not self.settings.commitments_live:
            return self.declared
        now = self.clock()
        if self._cached and (now - self._cached[0]).total_seconds() < self.settings.price_ttl_s:
            return self._cached[1]
        try:
            found = live_commitments(self.settings, self.declared)
            self.warning = None
        except Exception as exc:
            self.warning = f"commitments: cannot read them live: {' '.join(str(exc).split())}"
            found = self._cached[1] if self._cached else self.declared
        self._cached = (now, found)
        return found


class JobHandle:
    """A submitted job, for ``job = s.submit(spec); job.wait()``."""

    def __init__(self, scheduler: Scheduler, job_id: int) -> None:
        self.scheduler = scheduler
        self.id = job_id

    @property
    def state(self) -> JobState:
        return self.scheduler.get(self.id).state

    def wait(self, timeout: float | None = None) -> JobState:
        return self.scheduler.wait(self.id, timeout=timeout)

    def logs(self) -> str:
        return self.scheduler.logs(self.id)

    def cancel(self) -> JobState:
        return self.scheduler.cancel(self.id)

    def __repr__(self) -> str:
        return f"JobHandle(id={self.id})"


SpecInput = JobSpec | str | Path | Mapping[str, Any]


class Scheduler:
    def __init__(
        self,
        settings: Settings | None = None,
        *,
        clock: Callable[[], datetime] = utc_now,
        providers: dict[str, Provider] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.environ = dict(os.environ if environ is None else environ)
        self.settings = settings or load_settings(self.environ)
        self.clock = clock
        self.store = Store(self.settings.db_url)
        self._providers = providers
        self._controller: Controller | None = None
        self._finops: FinOps | None = None
        self._price_book: PriceBook | None = None
        self._views: dict[Refresh, tuple[datetime, PriceView]] = {}

    # -- wiring -------------------------------------------------------------------------

    @property
    def ray_cluster(self) -> RayCluster:
        s = self.settings
        if s.ray_address:
            return ExistingRayCluster(s.ray_address)
        config = LocalRayConfig(
            gcs_port=s.ray_gcs_port, dashboard_port=s.ray_dashboard_port, num_cpus=s.ray_num_cpus
        )
        if s.ray_temp_dir:
            config = config.model_copy(update={"temp_dir": s.ray_temp_dir})
        return LocalRayCluster(config)

    @property
    def providers(self) -> dict[str, Provider]:
        if self._providers is None:
            local = LocalProvider(
                self.ray_cluster,
                detect_machine(),
                price_per_hour=self.settings.local_price_per_hour,
            )
            self._providers = {"local": local}
        return self._providers

    @property
    def price_book(self) -> PriceBook:
        if self._price_book is None:
            self._price_book = build_price_book(self.settings, self.store, self.environ)
        return self._price_book

    @property
    def finops(self) -> FinOps:
        """Commitments and budgets from their files (read once; ConfigError names the file)."""
        if self._finops is None:
            declared = load_commitments(self.settings.commitments_file)
            budgets = load_budgets(self.settings.budgets_file)
            commitments = LiveCommitments(self.settings, declared, self.clock)
            self._finops = FinOps(self.store, self.clock, commitments=commitments, budgets=budgets)
        return self._finops

    @property
    def controller(self) -> Controller:
        if self._controller is None:
            self._controller = Controller(
                self.store,
                self.providers,
                self.settings,
                self.clock,
                cloud_offerings=lambda: self.price_view(Refresh.AUTO).offerings,
                clusters=cluster_manager(self.settings, self.store, self.clock),
                finops=self.finops,
            )
        return self._controller

    # -- specs --------------------------------------------------------------------------

    def load(self, spec: SpecInput) -> JobSpec:
        """Validate without storing anything; raises SpecError."""
        now = self.clock()
        ring = self._keyring
        if isinstance(spec, JobSpec):
            return parse_spec(spec.model_dump(mode="json"), source="<spec>", now=now, keyring=ring)
        if isinstance(spec, str | Path):
            return load_spec(spec, now=now, keyring=ring)
        if isinstance(spec, Mapping):
            data = dict(spec)
            return parse_spec(data, source="<dict>", now=now, base_dir=Path.cwd(), keyring=ring)
        raise SpecError(f"<spec>: expected a JobSpec, a path or a dict, got {type(spec).__name__}")

    def _keyring(self) -> Keyring:
        """What seals a spec's secrets: SCHED_SECRET_KEY, else the key file beside this
        scheduler's database (its settings' home, not necessarily this process's)."""
        return process_keyring(home=self.settings.home)

    def plan(self, spec: SpecInput, *, refresh: Refresh = Refresh.AUTO) -> Plan:
        """Where the job would run and what it would cost, everywhere prices are known;
        stores nothing. Submitting places it by the same ranking, among the clouds this
        machine can launch on."""
        parsed = self.load(spec)
        cloud = self.price_view(refresh).offerings
        return self.controller.plan(parsed, parsed.deadline_at(self.clock()), cloud=cloud)

    def price_view(self, refresh: Refresh = Refresh.AUTO) -> PriceView:
        """Every priced offering, kept for the price TTL so that placing one job after
        another reads the snapshot and catalogs once (and indexes them once)."""
        now = self.clock()
        cached = self._views.get(refresh)
        fresh = cached is not None and (now - cached[0]).total_seconds() < self.settings.price_ttl_s
        if cached is not None and fresh and refresh is not Refresh.FORCE:
            return cached[1]
        view = self.price_book.view(now, refresh)
        self._views[Refresh.AUTO if refresh is Refresh.FORCE else refresh] = (now, view)
        return view

    # -- prices -------------------------------------------------------------------------

    def prices(
        self, query: PriceQuery | None = None, *, refresh: Refresh = Refresh.AUTO
    ) -> PriceView:
        """Offerings matching ``query``, cheapest first, with a freshness note per cloud.

        Raises PriceQueryError for a filter that names no known accelerator.
        """
        query = (query or PriceQuery()).normalized()
        view = self.price_book.view(self.clock(), refresh, clouds=query.clouds)
        return view.model_copy(update={"offerings": select_offerings(view.offerings, query)})

    def spot_history(self, instance_type: str, *, days: float = 7) -> list[SpotPricePoint]:
        """Recorded spot prices of one instance type (or TPU slice), by zone then time."""
        since = self.clock() - timedelta(days=days)
        return self.price_book.cache.spot_history(instance_type, since=since)

    # -- jobs ---------------------------------------------------------------------------

    def submit(self, spec: SpecInput, *, start: bool = True) -> JobHandle:
        """Store the job (PENDING); with ``start`` also place it and hand it to Ray.

        SpecError when it lacks a tag of SCHED_REQUIRED_TAGS: an untagged bill has no owner,
        so such a job is refused before anything is stored."""
        parsed = self.load(spec)
        missing = missing_tags(parsed.tags, self.settings.required_tags)
        if missing:
            where = f"{spec}: " if isinstance(spec, str | Path) else ""
            required = ",".join(self.settings.required_tags)
            raise SpecError(
                f"{where}tags: missing required tag{'s' if len(missing) > 1 else ''}"
                f" {', '.join(missing)} (SCHED_REQUIRED_TAGS={required})"
            )
        controller = self.controller  # every setting and file checked before anything is stored
        now = self.clock()
        job = self.store.add_job(parsed, submitted_at=now, deadline_at=parsed.deadline_at(now))
        assert job.id is not None
        if start:
            controller.reconcile([job.id])
        return JobHandle(self, job.id)

    def reconcile(self, job_ids: list[int] | None = None) -> list[str]:
        return self.controller.reconcile(job_ids)

    def get(self, job_id: int, *, refresh: bool = True) -> JobView:
        job = self.store.get_job(job_id)
        if refresh and not JobState(job.state).terminal:
            self.controller.reconcile([job_id], place=False)
            job = self.store.get_job(job_id)
        return JobView.of(job, self.store.attempts(job_id))

    def list(self, *, limit: int | None = 50, refresh: bool = True) -> list[JobView]:
        jobs = self.store.list_jobs(limit=limit)
        on_cluster = [j.id for j in jobs if j.id is not None and j.state in _ON_CLUSTER]
        if refresh and on_cluster:
            self.controller.reconcile(on_cluster, place=False)
            jobs = self.store.list_jobs(limit=limit)
        attempts = self.store.attempts_of([j.id for j in jobs if j.id is not None])
        return [JobView.of(j, attempts.get(j.id or 0, [])) for j in jobs]

    def unfinished(self) -> list[int]:
        """Ids of the jobs not yet SUCCEEDED, FAILED or CANCELLED."""
        return [
            j.id
            for j in self.store.list_jobs(states=[s for s in JobState if not s.terminal])
            if j.id is not None
        ]

    def attempts(self, job_id: int) -> list[AttemptRecord]:
        self.store.get_job(job_id)
        return self.store.attempts(job_id)

    def events(self, job_id: int) -> list[EventRecord]:
        self.store.get_job(job_id)
        return self.store.events(job_id)

    def ledger(self, job_id: int) -> list[LedgerRecord]:
        """What each ended attempt cost: compute and data moves, settled when it ended."""
        self.store.get_job(job_id)
        return self.store.ledger(job_id)

    def clusters(self, *, include_terminated: bool = False) -> list[ClusterRecord]:
        """Cloud Ray clusters sched brought up (none unless SCHED_LAUNCH_CLOUDS is set)."""
        store = ClusterStore(self.store)
        return store.all() if include_terminated else store.live()

    def stop_cluster(self, name: str) -> ClusterRecord:
        """Terminate an idle cloud cluster now; one running a job is refused (cancel the
        job instead). LookupError / ValueError say which."""
        manager = self.controller.clusters
        record = ClusterStore(self.store).by_name(name)
        if record is None:
            raise LookupError(f"no cluster {name!r}")
        if record.attempt_id is not None:
            raise ValueError(f"cluster {name} is running attempt {record.attempt_id}")
        if record.state != ClusterState.TERMINATED:
            if manager is None:
                raise ValueError(f"{record.cloud} is not in SCHED_LAUNCH_CLOUDS here")
            manager.terminate(record, "stopped by user")
        return ClusterStore(self.store).get(record.id or 0)

    # -- FinOps -------------------------------------------------------------------------

    def commitment_hours(self, hours: int = 24) -> list[tuple[datetime, HourAllocation]]:
        """The last ``hours`` whole hours (and the current one) of commitment use."""
        now = self.clock()
        start = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=hours - 1)
        attempts = self.store.attempts_overlapping(start, now)
        return hourly(self.finops.commitments, attempts, start, now, now)

    def cost_lines(self) -> list[CostLine]:
        """Every settled attempt with its job's tags: what reports roll up."""
        return [CostLine.from_records(*row) for row in self.store.ledger_lines()]

    def audit(self, *, stop: bool = False) -> tuple[list[Finding], list[StopResult]]:
        """Running machines in the accounts lacking the mandatory tags or idle by their
        metrics, with their hourly cost; with ``stop``, stop them (never the kept ones)."""
        prices = {
            (o.cloud, o.zone, o.instance_type, o.market is MarketKind.SPOT): o.price_per_hour
            for o in self.price_view().offerings
        }

        def price(cloud: str, zone: str, instance_type: str, spot: bool) -> float | None:
            return prices.get((cloud, zone, instance_type, spot))

        s = self.settings
        window = metric_window_hours(s.audit_idle_hours)
        clouds = auditors(s, self.environ, price)
        seen = []
        for cloud, auditor, regions in clouds:
            if cloud == "gcp":
                seen += auditor.instances(regions, window, tag_keys=[*s.required_tags, s.keep_tag])
            else:
                seen += auditor.instances(regions, window)
        findings = audit(seen, s.required_tags, s.audit_idle_hours, s.keep_tag)
        results: list[StopResult] = []
        if stop:
            chosen = to_stop(findings)
            for cloud, auditor, _ in clouds:
                mine = [f.instance for f in chosen if f.instance.cloud == cloud]
                if mine:
                    results += auditor.stop(mine, keep_tag=s.keep_tag)
        return findings, results

    def cancel(self, job_id: int) -> JobState:
        job = self.store.get_job(job_id)
        if JobState(job.state).terminal:
            return JobState(job.state)
        self.store.request_cancel(job_id, self.clock())
        self.controller.reconcile([job_id])
        return self.get(job_id, refresh=False).state

    def wait(
        self,
        job_id: int,
        *,
        timeout: float | None = None,
        on_change: Callable[[JobView], None] | None = None,
    ) -> JobState:
        """Reconcile until the job ends; TimeoutError after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        last: JobState | None = None
        while True:
            self.controller.reconcile([job_id])  # waiting drives the job, queued ones too
            view = self.get(job_id, refresh=False)
            if on_change is not None and view.state != last:
                on_change(view)
            last = view.state
            if view.state.terminal:
                return view.state
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {view.state} after {timeout:g} s")
            time.sleep(self.settings.poll_interval_s)

    def _current_attempt(self, job_id: int) -> AttemptRecord | None:
        job = self.store.get_job(job_id)
        if job.current_attempt_id is None:
            return None
        return self.store.attempt(job.current_attempt_id)

    def logs(self, job_id: int) -> str:
        """Every attempt's output, oldest first, each under a header when there are several."""
        attempts = [a for a in self.attempts(job_id) if a.cluster_address]
        parts: list[str] = []
        for attempt in attempts:
            try:
                text = RayJobs(attempt.cluster_address or "").logs(attempt.submission_id)
            except RayUnavailable:
                if attempt.state != AttemptState.PREEMPTED:
                    raise
                text = "(its output was lost with the node)\n"
            if len(attempts) > 1:
                text = f"--- attempt {attempt.number} on {attempt.cloud} {attempt.zone} ---\n{text}"
            parts.append(text)
        return "".join(parts)

    def follow_logs(self, job_id: int) -> Iterator[str]:
        attempt = self._current_attempt(job_id)
        if attempt is None or not attempt.cluster_address:
            return iter(())
        return self.controller.ray(attempt.cluster_address).follow(attempt.submission_id)

    # -- the local cluster ------------------------------------------------------------------

    def up(self) -> tuple[str, bool]:
        cluster = self.ray_cluster
        started = cluster.start()
        return cluster.address, started

    def down(self) -> bool:
        return self.ray_cluster.stop()

    def close(self) -> None:
        self.store.close()
