"""The reconcile step: the only code that moves jobs between states.

Each call looks at what the database says and what the cluster says and takes each
job as far forward as it can: first every queued job is placed (planned, and the moves
written a batch at a time, scheduler/placing.py), then each job is advanced (launched,
watched, settled). Every move names the state it expects to find, so two processes
reconciling at once cannot both place or launch the same job: the loser's move is not
written (StaleState, or left out of the batch) and it leaves the job alone.
"""

from __future__ import annotations

import contextlib
import gc
import json
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from jobs.lifecycle import AttemptState, JobState
from jobs.spec import JobSpec, Priority
from providers.base import Provider
from providers.network import NetworkPrices, load_network_prices
from providers.offering import Offering
from scheduler.attempt_endings import ACTIVE, AttemptEndings
from scheduler.budgets import BudgetStatus, braking, holding
from scheduler.cluster_policy import cluster_name
from scheduler.clusters import CloudBusy, ClusterLost, ClusterManager, LaunchRefused
from scheduler.commitments import Usage, attempt_usage
from scheduler.config import Settings
from scheduler.constraints import OfferingIndex
from scheduler.cost_model import CommitmentCredit, CostParams
from scheduler.finops import FinOps, job_tags
from scheduler.job_env import entrypoint_resources, gpus, memory_bytes, runtime_env
from scheduler.launch_faults import classify, retryable
from scheduler.leases import LEASE_S, dead_here, owner_id
from scheduler.migration import replan_context
from scheduler.placement import Placement, Plan, hours_until, plan
from scheduler.placing import PLACE_BATCH, Decision, decide, queued
from scheduler.ray_jobs import RayJobs, RayUnavailable
from scheduler.records import AttemptRecord, ClusterRecord, JobRecord
from scheduler.scavenger import Running, make_room, overflow
from scheduler.store import StaleState, Store

Clock = Callable[[], datetime]

_LEASED = (JobState.PLACED, JobState.PROVISIONING, JobState.RUNNING)
"""States in which advancing a job acts outside the database: one process at a time."""


class Controller:
    def __init__(
        self,
        store: Store,
        providers: dict[str, Provider],
        settings: Settings,
        clock: Clock,
        ray_jobs_factory: Callable[[str], RayJobs] = RayJobs,
        cloud_offerings: Callable[[], Sequence[Offering]] = tuple,
        cost_params: CostParams | None = None,
        clusters: ClusterManager | None = None,
        finops: FinOps | None = None,
        lease_s: float = LEASE_S,
    ) -> None:
        """``cloud_offerings`` gives the price book's offerings (empty: local only);
        ``clusters`` brings Ray clusters up on the clouds it is configured for;
        ``lease_s``: how long a job this controller acts on stays its own (leases.py)."""
        self.store = store
        self.owner = owner_id()
        self.lease_s = lease_s
        self._leased: set[int] = set()
        self.clusters = clusters
        self.ends = AttemptEndings(store, clock, clusters, settings.pool_cooldown_s)
        self.finops = finops
        self._budgets: list[BudgetStatus] | None = None  # this pass's, read once per pass
        self._cloud_offerings = cloud_offerings
        self.cost_params = cost_params or CostParams()
        self._network: NetworkPrices | None = None
        self._index: tuple[Sequence[Offering], OfferingIndex] | None = None
        self.providers = providers
        self.settings = settings
        self.clock = clock
        self._ray_factory = ray_jobs_factory
        self._ray: dict[str, RayJobs] = {}

    def ray(self, address: str) -> RayJobs:
        if address not in self._ray:
            self._ray[address] = self._ray_factory(address)
        return self._ray[address]

    # -- planning -------------------------------------------------------------------------

    @property
    def launchable_clouds(self) -> frozenset[str]:
        clouds = self.clusters.clouds if self.clusters is not None else frozenset()
        return frozenset(self.providers) | clouds

    @property
    def network(self) -> NetworkPrices:
        if self._network is None:
            self._network = load_network_prices()
        return self._network

    def offerings(self, cloud: Sequence[Offering] | None = None) -> OfferingIndex:
        """Priced cloud offerings plus what the providers here (the local machine) offer.

        The cloud part is indexed once per list of offerings (a price view); after that the
        long-lived offerings are frozen out of the garbage collector's way, whose full
        passes over them otherwise cost a plan up to 200 ms."""
        cloud = self._cloud_offerings() if cloud is None else cloud
        if self._index is None or self._index[0] is not cloud:
            self._index = (cloud, OfferingIndex.build(cloud))
            gc.freeze()
        now = self.clock()
        local = [o for p in self.providers.values() for o in p.offerings(now)]
        return self._index[1].extend(local)

    def plan(
        self,
        spec: JobSpec,
        deadline_at: datetime | None,
        *,
        cloud: Sequence[Offering] | None = None,
        launchable_only: bool = False,
        attempts: Sequence[AttemptRecord] = (),
        commitments: CommitmentCredit | None = None,
    ) -> Plan:
        """The same ranking for `sched plan` and for placing a job; placing a job also
        keeps to the clouds this controller can launch on, and to what its earlier
        attempts allow (blocked pools, interruptions used, where its checkpoint is)."""
        ctx = replan_context(
            spec,
            attempts,
            now=self.clock(),
            hours_left=hours_until(deadline_at, self.clock()),
            cooldown_s=self.settings.pool_cooldown_s,
            launchable_clouds=self.launchable_clouds if launchable_only else None,
        )
        return plan(
            spec,
            self.offerings(cloud),
            self.network,
            ctx=ctx,
            params=self.cost_params,
            commitments=commitments,
        )

    # -- the reconcile step ---------------------------------------------------------------

    def reconcile(self, job_ids: list[int] | None = None, *, place: bool = True) -> list[str]:
        """Advance the given jobs (default: every unfinished one); return warnings.

        With ``place=False`` only jobs running on a cluster are refreshed: reading a job's
        status must not be what launches it (or re-drives another process's launch).
        """
        if job_ids is None:
            jobs = self.store.list_jobs(states=[s for s in JobState if not s.terminal])
        else:
            jobs = [self.store.get_job(i) for i in job_ids]
        warnings: list[str] = []
        self._budgets = None
        if job_ids is None and place and self.clusters is not None:
            warnings += self._maintain(jobs)
        if job_ids is None and place and self.finops is not None:
            warnings += self._finops_pass()
        jobs = sorted(jobs, key=lambda j: j.id or 0)
        if place:
            jobs, said = self._placing_step(jobs)
            warnings += said
        for job in jobs:
            if not place and job.state != JobState.RUNNING and not job.cancel_requested:
                continue
            try:
                self._advance(job)
            except StaleState:
                continue  # another process moved it; its move stands
            except RayUnavailable as exc:
                warnings.append(f"job {job.id}: {exc}")
            except ValidationError as exc:
                warnings.append(self.ends.unreadable(job, exc))
            except Exception as exc:
                if not retryable(exc):
                    raise
                # The cloud was busy while a step cleaned up (terminating a preempted
                # cluster): housekeeping finishes it later; the other jobs go on now.
                fault = classify(exc).describe()
                warnings.append(f"job {job.id}: cloud busy, left for a later pass: {fault}")
            finally:
                if job.id in self._leased:
                    self._leased.discard(job.id)
                    self.store.release(job.id, self.owner)
        return warnings

    def place_queued(self, job_ids: Sequence[int] | None = None) -> list[JobRecord]:
        """Place queued jobs (PENDING or MIGRATING) without starting them; their records
        after. The placing step of every reconcile (budget hold, plan against every
        offering with the job's history, attempt and event written), alone: what a long
        queue costs the controller before any launch."""
        if job_ids is None:
            jobs = self.store.list_jobs(states=[JobState.PENDING, JobState.MIGRATING])
        else:
            jobs = [self.store.get_job(i) for i in job_ids]
        self._budgets = None
        waiting = [j for j in sorted(jobs, key=lambda j: j.id or 0) if queued(j)]
        return self._place_all(waiting)[0]

    def _placing_step(self, jobs: list[JobRecord]) -> tuple[list[JobRecord], list[str]]:
        """Preempted jobs to MIGRATING, then every queued job placed; the records after."""
        moved: dict[int, JobRecord] = {}
        for job in jobs:
            assert job.id is not None
            if job.state == JobState.PREEMPTED and not job.cancel_requested:
                with contextlib.suppress(StaleState):  # another process moved it first
                    moved[job.id] = self.store.transition(
                        job.id,
                        JobState.MIGRATING,
                        at=self.clock(),
                        expect=[JobState.PREEMPTED],
                        reason="re-planning without the pool that preempted it",
                    )
        jobs = [moved.get(j.id or 0, j) for j in jobs]
        placed, said = self._place_all([j for j in jobs if queued(j)])
        after = {j.id or 0: j for j in placed}
        return [after.get(j.id or 0, j) for j in jobs], said

    def _place_all(self, jobs: Sequence[JobRecord]) -> tuple[list[JobRecord], list[str]]:
        """Decide each job's placement and write them PLACE_BATCH at a time: one write
        transaction per batch (Store.transition_many). Placing needs no lease: a move
        written only if the job is still queued admits one winner. Warm clusters are
        claimed when a job starts, so one look serves the step, each taken once."""
        idle = self.clusters.idle() if self.clusters is not None else []
        placed: list[Running] = []  # in commitment headroom, not yet running
        out: dict[int, JobRecord] = {}
        said: list[str] = []
        for start in range(0, len(jobs), PLACE_BATCH):
            decided: list[Decision] = []
            for job in jobs[start : start + PLACE_BATCH]:
                try:
                    decision = self._decide(job, idle, placed)
                except ValidationError as exc:
                    said.append(self.ends.unreadable(job, exc))
                    continue
                if decision is not None:
                    decided.append(decision)
            moved = self.store.transition_many([d.move for d in decided], at=self.clock())
            out.update((j.id or 0, j) for j in moved)
            for d in decided:
                if d.job.id in out and d.frees is not None and self.finops is not None:
                    self._make_room(d.job, d.frees)
        return [out.get(j.id or 0, j) for j in jobs], said

    def _take(self, job: JobRecord) -> bool:
        """The job's lease: free, expired, or left by a dead process on this machine.
        Taken before any step that acts outside the database (a launch, a Ray call);
        placing needs none, its transition already admits one winner."""
        assert job.id is not None
        if job.id in self._leased:
            return True
        now = datetime.now(UTC)  # leases are about real processes, not the job's clock
        holder = self.store.lease(job.id, self.owner, now, self.lease_s)
        if holder is not None and dead_here(holder):
            holder = self.store.lease(job.id, self.owner, now, self.lease_s, replacing=holder)
        if holder is None:
            self._leased.add(job.id)
        return holder is None

    def _maintain(self, unfinished: Sequence[JobRecord]) -> list[str]:
        """Cluster housekeeping once per full pass; what it did is reported, not raised."""
        assert self.clusters is not None
        active = {j.current_attempt_id for j in unfinished if j.current_attempt_id is not None}
        return [f"clusters: {line}" for line in self.clusters.maintain(active)]

    def _advance(self, job: JobRecord) -> None:
        assert job.id is not None
        state = JobState(job.state)
        if job.cancel_requested and not state.terminal:
            if state not in _LEASED or self._take(job):
                self._cancel(job)  # else its holder sees the request on its next step
            return
        if state in _LEASED and not self._take(job):
            return  # another live process is launching or watching it
        if state is JobState.PLACED:
            job = self._start_provisioning(job)
            state = JobState(job.state)
        if state is JobState.PROVISIONING:
            # Also where a process that died mid-launch is picked up: every step below
            # is idempotent (the cluster is reused, the submission id is fixed).
            job = self._provision(job)
            state = JobState(job.state)
        if state is JobState.RUNNING:
            self._refresh(job)

    def _decide(
        self, job: JobRecord, idle: list[ClusterRecord], placed: list[Running]
    ) -> Decision | None:
        """Plan the job and decide its move (placing.decide), or None when it waits (a
        budget hold, a scavenger without headroom: noted now). ``placed`` gains what a
        decision puts in commitment headroom, so the next one does not count it again."""
        assert job.id is not None
        spec = JobSpec.model_validate_json(job.spec_json)
        priority = Priority(job.priority)
        held = holding(self.budget_statuses(), job_tags(job), priority)
        if held is not None:
            self.store.note(job.id, f"held: budget {held.describe()}")
            return None
        credit = (
            self.finops.headroom(priority, placed)
            if self.finops is not None and self.finops.commitments
            else None
        )
        history = self.store.attempts(job.id) if job.current_attempt_id is not None else []
        result = self.plan(
            spec, job.deadline_at, launchable_only=True, attempts=history, commitments=credit
        )
        now = self.clock()
        decision = decide(
            job,
            spec,
            result,
            attempts_so_far=len(history),
            idle=idle,
            now=now,
            scavenger_on_demand=self.settings.scavenger_on_demand,
        )
        if isinstance(decision, str):
            self.store.note(job.id, decision)
            return None
        if credit is not None and decision.attempt is not None:
            placed.append(Running(job.id, priority, attempt_usage(decision.attempt), now))
        return decision

    def _start_provisioning(self, job: JobRecord) -> JobRecord:
        assert job.id is not None and job.current_attempt_id is not None
        attempt = self.store.attempt(job.current_attempt_id)
        placement = Placement.model_validate_json(attempt.placement_json)
        return self.store.transition(
            job.id,
            JobState.PROVISIONING,
            at=self.clock(),
            expect=[JobState.PLACED],
            reason=f"bringing up a Ray cluster on {placement.describe()}",
        )

    def _provision(self, job: JobRecord) -> JobRecord:
        assert job.id is not None and job.current_attempt_id is not None
        attempt = self.store.attempt(job.current_attempt_id)
        placement = Placement.model_validate_json(attempt.placement_json)
        provider = self.providers.get(placement.offering.cloud)
        try:
            if self.ends.is_cloud(attempt):
                assert self.clusters is not None
                name = cluster_name(job.uid, attempt.number)
                tags = json.loads(job.tags_json)
                found = self.clusters.ensure(attempt, placement, name, tags)
                if found is None:
                    return job  # still booting; the next pass looks again
                address = found
            elif provider is not None:
                address = provider.ensure_cluster(placement.offering, placement.num_nodes)
            else:
                raise RuntimeError(f"no provider for {placement.offering.cloud}")
        except ClusterLost as exc:
            self.ends.preempted(job, attempt, str(exc))
            return self.store.get_job(job.id)
        except CloudBusy as exc:
            self.ends.cloud_busy(job, attempt, exc)
            return job  # still PROVISIONING: the next pass asks the cloud again
        except LaunchRefused as exc:
            return self.ends.launch_refused(job, attempt, exc)
        except RuntimeError as exc:
            return self.ends.fail(job, attempt, f"cluster bring-up failed: {exc}")
        self.store.update_attempt(attempt.id or 0, cluster_address=address)
        spec = JobSpec.model_validate_json(job.spec_json)
        try:
            self.ray(address).submit(
                attempt.submission_id,
                spec.run,
                runtime_env=runtime_env(self.settings, job, attempt, spec),
                num_cpus=spec.resources.cpus,
                num_gpus=gpus(placement),
                memory_bytes=memory_bytes(spec),
                resources=entrypoint_resources(provider, placement),
                metadata={"sched_job_id": str(job.id), "sched_attempt": str(attempt.number)},
            )
        except RayUnavailable as exc:
            return self.ends.fail(job, attempt, f"could not submit to Ray: {exc}")
        started = self.clock()
        return self.store.transition(
            job.id,
            JobState.RUNNING,
            at=started,
            expect=[JobState.PROVISIONING],
            reason=f"submitted to Ray at {address} as {attempt.submission_id}",
            attempt_updates={"state": AttemptState.RUNNING, "started_at": started},
        )

    def _refresh(self, job: JobRecord) -> None:
        assert job.id is not None and job.current_attempt_id is not None
        attempt = self.store.attempt(job.current_attempt_id)
        if attempt.cluster_address is None:
            return
        if self.ends.is_cloud(attempt):
            assert self.clusters is not None and attempt.id is not None
            why = self.clusters.check(attempt.id)
            if why is not None:
                self._cloud_lost(job, attempt, why)
                return
        status = self.ray(attempt.cluster_address).status(attempt.submission_id)
        now = self.clock()
        if status is None:
            self.ends.fail(job, attempt, "the Ray cluster no longer knows this job (restarted?)")
            return
        if not status.state.finished:
            return
        if status.state is AttemptState.FAILED and self._node_lost(attempt):
            self.ends.preempted(job, attempt, status.message)
            return
        if status.state is AttemptState.STOPPED and self.ends.is_cloud(attempt):
            # Nobody cancelled it (that path goes through _cancel), so the node agent
            # stopped it on an interruption notice: SIGTERM, a last checkpoint, then this.
            self.ends.preempted(job, attempt, "stopped on its node after an interruption notice")
            return
        final = {
            AttemptState.SUCCEEDED: JobState.SUCCEEDED,
            AttemptState.FAILED: JobState.FAILED,
            AttemptState.STOPPED: JobState.CANCELLED,
        }[status.state]
        line = self.ends.settle(attempt, now, status.state)
        ray_message = status.message.strip().splitlines()[0] if status.message.strip() else ""
        reason = (
            "exited 0"
            if final is JobState.SUCCEEDED
            else f"exit code {status.exit_code}: {ray_message}"
            if final is JobState.FAILED
            else "stopped on Ray"
        )
        self.store.transition(
            job.id,
            final,
            at=now,
            expect=ACTIVE,
            reason=reason,
            job_updates={
                "exit_code": status.exit_code,
                "message": None if final is JobState.SUCCEEDED else ray_message or reason,
                "cost": job.cost + line.total_usd,
            },
            attempt_updates={
                "state": status.state,
                "ended_at": now,
                "exit_code": status.exit_code,
                "message": ray_message,
                "cost": line.total_usd,
            },
            ledger=line,
        )
        self.ends.release(attempt)

    def _node_lost(self, attempt: AttemptRecord) -> bool:
        """Whether the machine under a failed attempt is gone (a preemption, not a bug)."""
        placement = Placement.model_validate_json(attempt.placement_json)
        provider = self.providers.get(placement.offering.cloud)
        check = getattr(provider, "node_lost", None)
        return bool(check is not None and check(placement.offering))

    def _cloud_lost(self, job: JobRecord, attempt: AttemptRecord, why: str) -> None:
        """The cloud took a machine of the cluster: give the job SIGTERM if the head still
        answers (its chance to checkpoint), then record the preemption."""
        if attempt.cluster_address:
            with contextlib.suppress(RayUnavailable):  # the head may have gone with it
                self.ray(attempt.cluster_address).stop(attempt.submission_id)
        self.ends.preempted(job, attempt, why)

    # -- commitments and budgets ------------------------------------------------------

    def budget_statuses(self) -> list[BudgetStatus]:
        if self.finops is None:
            return []
        if self._budgets is None:
            self._budgets = self.finops.budget_statuses()
        return self._budgets

    def _finops_pass(self) -> list[str]:
        """Once per full pass: new alerts, brakes, and scavengers whose headroom is gone."""
        assert self.finops is not None
        said = self.finops.tick()
        required = self.settings.required_tags
        for job, _ in self.store.active():
            brake = braking(self.budget_statuses(), job_tags(job), Priority(job.priority), required)
            if brake is not None:
                self._cancel(job, why=f"stopped by budget brake: {brake.describe()}")
                said.append(f"budget brake stopped job {job.id}: {brake.describe()}")
        for job_id in overflow(self.finops.commitments, self.finops.running(), self.clock()):
            self._yield(job_id, "its commitment headroom is gone")
            said.append(f"scavenger job {job_id} yielded: commitment headroom gone")
        return said

    def _make_room(self, job: JobRecord, best: Placement) -> None:
        """Stop the scavengers sitting in the headroom this placement was priced with."""
        assert self.finops is not None
        if best.cost.credit <= 0:
            return
        need = Usage.of(best.offering, best.num_nodes, best.offering.price_per_hour)
        for job_id in make_room(self.finops.commitments, self.finops.running(), need, self.clock()):
            self._yield(job_id, f"gave its commitment headroom to job {job.id}")

    def _yield(self, job_id: int, why: str) -> None:
        """A scavenger steps aside: SIGTERM (its chance to checkpoint), the attempt ends
        YIELDED (no interruption counted, no pool blocked), and it queues again."""
        job = self.store.get_job(job_id)
        if job.state not in ACTIVE or job.current_attempt_id is None:
            return
        attempt = self.store.attempt(job.current_attempt_id)
        if attempt.cluster_address:
            with contextlib.suppress(RayUnavailable):
                self.ray(attempt.cluster_address).stop(attempt.submission_id)
        self.ends.yielded(job, attempt, why)

    def _cancel(self, job: JobRecord, stop_timeout_s: float = 30.0, why: str = "") -> None:
        assert job.id is not None
        state = JobState(job.state)
        attempt = self.store.attempt(job.current_attempt_id) if job.current_attempt_id else None
        if state in ACTIVE and attempt is not None and attempt.cluster_address:
            ray = self.ray(attempt.cluster_address)
            ray.stop(attempt.submission_id)
            deadline = time.monotonic() + stop_timeout_s
            status = ray.status(attempt.submission_id)
            while status is not None and not status.state.finished:
                if time.monotonic() > deadline:
                    raise RayUnavailable(f"Ray did not stop {attempt.submission_id} in time")
                time.sleep(0.2)
                status = ray.status(attempt.submission_id)
            if status is not None and status.state is not AttemptState.STOPPED:
                self._refresh(job)  # it finished on its own before the stop landed
                return
        now = self.clock()
        updates: dict[str, Any] = {}
        why = why or "cancelled by user"
        job_updates: dict[str, Any] = {"message": why}
        line = None
        if attempt is not None and not AttemptState(attempt.state).finished:
            line = self.ends.settle(attempt, now, AttemptState.STOPPED)
            updates = {"state": AttemptState.STOPPED, "ended_at": now, "cost": line.total_usd}
            job_updates["cost"] = job.cost + line.total_usd
        self.store.transition(
            job.id,
            JobState.CANCELLED,
            at=now,
            reason=why,
            job_updates=job_updates,
            attempt_updates=updates or None,
            ledger=line,
        )
        if attempt is not None:
            self.ends.release(attempt)
