"""Ray clusters on cloud machines: bring up, reuse warm, watch, stop idle, sweep orphans.

Each step is a reconcile step: it looks at the database and the cloud, moves one thing
forward and returns, so a controller killed at any instant resumes where it was. A
cluster's launch keys stem from its name, which stems from the attempt that made it: a
second launch after a crash finds the machines of the first (EC2 ClientToken and tag,
GCE requestId, TPU node ids) instead of making new ones.

When the cloud says no (scheduler/launch_faults.py), a busy cloud leaves the cluster
launching for the next pass (CloudBusy); no capacity or quota terminates it with anything
launched under its keys (LaunchRefused), so the job can go elsewhere and nothing is left
running; anything else ends it with the cloud's message (ClusterError).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime
from functools import partial
from typing import NoReturn

from providers.instances import Compute, Instance, InstanceState, LaunchRequest
from providers.local import jobs_api_answers
from providers.ray_bootstrap import Bootstrap, startup_script
from scheduler.cluster_policy import (
    CLUSTER_TAG,
    ROLE_TAG,
    head_address,
    idle_expired,
    lost,
    orphans,
    shape_of,
)
from scheduler.cluster_store import ClusterStore
from scheduler.launch_faults import FaultKind, LaunchFault, classify
from scheduler.placement import Placement
from scheduler.records import AttemptRecord, ClusterRecord, ClusterState

Clock = Callable[[], datetime]


class ClusterError(RuntimeError):
    """The cluster cannot be brought up (launch refused, or not up in time)."""


class ClusterLost(ClusterError):
    """The cloud took a machine back while the cluster was booting: a preemption."""


class CloudBusy(ClusterError):
    """The cloud said "not now" (throttled, unavailable, timed out) after the client's own
    retries: nothing is given up, the cluster stays launching and the next pass asks again
    (every launch is idempotent by its key)."""

    def __init__(self, what: str, fault: LaunchFault) -> None:
        super().__init__(f"{what}: {fault.describe()}")
        self.fault = fault


class LaunchRefused(ClusterError):
    """No capacity or quota for the placement: the cluster and whatever it had launched
    are terminated, and the job should go elsewhere. ``launched``: whether any machine of
    the cluster had been running (and billing) before the refusal."""

    def __init__(self, what: str, fault: LaunchFault, launched: bool) -> None:
        super().__init__(f"{what}: {fault.describe()}")
        self.fault = fault
        self.launched = launched


class ClusterManager:
    def __init__(
        self,
        clusters: ClusterStore,
        computes: Mapping[str, Compute],
        boot: Bootstrap,
        *,
        clock: Clock,
        images: Mapping[str, str | None],
        address_template: str,
        boot_timeout_s: float,
        idle_stop_s: float,
        sweep_regions: Mapping[str, Sequence[str]] | None = None,
        answers: Callable[[str], bool] = jobs_api_answers,
    ) -> None:
        """``computes`` by kind: ``aws``, ``gcp`` (VMs) and ``gcp-tpu`` (TPU VMs)."""
        self.store = clusters
        self.computes = dict(computes)
        self.boot = boot
        self.clock = clock
        self.images = dict(images)
        self.address_template = address_template
        self.boot_timeout_s = boot_timeout_s
        self.idle_stop_s = idle_stop_s
        self.sweep_regions = dict(sweep_regions or {})
        self._answers = answers

    @property
    def clouds(self) -> frozenset[str]:
        return frozenset(k.split("-", 1)[0] for k in self.computes)

    def compute(self, cloud: str, instance_type: str) -> Compute:
        kind = "gcp-tpu" if cloud == "gcp" and instance_type.startswith("tpu-") else cloud
        found = self.computes.get(kind)
        if found is None:
            raise ClusterError(f"cannot launch {instance_type} on {cloud}: not configured")
        return found

    def idle(self) -> list[ClusterRecord]:
        return [c for c in self.store.live() if c.state == ClusterState.UP and c.attempt_id is None]

    # -- bring-up -----------------------------------------------------------------------

    def ensure(
        self, attempt: AttemptRecord, placement: Placement, name: str, tags: Mapping[str, str]
    ) -> str | None:
        """The Jobs API address of the attempt's cluster once it is up; None while it boots.

        A warm cluster of the same shape is taken first (it is the same machine without the
        boot time); otherwise a new one named ``name`` is launched."""
        assert attempt.id is not None
        record = self.store.held_by(attempt.id)
        if record is None:
            record = self.store.claim_idle(shape_of(placement), attempt.id)
        if record is None:
            now = self.clock()
            o = placement.offering
            record = self.store.create(
                ClusterRecord(
                    name=name,
                    cloud=o.cloud,
                    region=o.region,
                    zone=o.zone,
                    instance_type=o.instance_type,
                    market=str(o.market),
                    num_nodes=placement.num_nodes,
                    price_per_hour=o.price_per_hour,
                    image=self.images.get(o.cloud),
                    state=ClusterState.LAUNCHING,
                    attempt_id=attempt.id,
                    created_at=now,
                    last_used_at=now,
                )
            )
        if record.state == ClusterState.UP:
            return record.head_address
        if record.state == ClusterState.TERMINATED:
            raise ClusterError(f"cluster {record.name} was terminated: {record.end_reason}")
        try:
            return self._bring_up(record, placement, tags)
        except ClusterError:
            raise
        except Exception as exc:  # describe or terminate answered with the cloud's error
            fault = classify(exc)
            if fault.kind is FaultKind.RETRY:
                raise CloudBusy(f"cluster {record.name}", fault) from exc
            raise ClusterError(f"cluster {record.name}: {fault.describe()}") from exc

    def _bring_up(
        self, record: ClusterRecord, placement: Placement, tags: Mapping[str, str]
    ) -> str | None:
        assert record.id is not None
        waited = (self.clock() - record.created_at).total_seconds()
        if waited > self.boot_timeout_s:
            why = f"not up after {waited:.0f} s (SCHED_BOOT_TIMEOUT={self.boot_timeout_s:g})"
            self.terminate(record, why)
            raise ClusterError(f"cluster {record.name} {why}")
        compute = self.compute(record.cloud, record.instance_type)
        base = {**tags, CLUSTER_TAG: record.name}
        head = self._launch(
            compute,
            record,
            LaunchRequest(
                offering=placement.offering,
                idempotency_key=f"{record.name}-head",
                name=f"{record.name}-head",
                tags={**base, ROLE_TAG: "head"},
                user_data=startup_script(self.boot, cluster=record.name, cloud=record.cloud),
                image=record.image,
            ),
        )
        if not self._running(record, head):
            return None
        machines = list(head)
        if record.num_nodes > 1:
            ip = head[0].private_ip or head[0].public_ip or ""
            workers = self._launch(
                compute,
                record,
                LaunchRequest(
                    offering=placement.offering,
                    count=record.num_nodes - 1,
                    idempotency_key=f"{record.name}-workers",
                    name=f"{record.name}-worker",
                    tags={**base, ROLE_TAG: "worker"},
                    user_data=startup_script(
                        self.boot, cluster=record.name, cloud=record.cloud, head_ip=ip
                    ),
                    image=record.image,
                ),
            )
            if not self._running(record, workers):
                return None
            machines += workers
        address = head_address(self.address_template, head[0], self.boot.dashboard_port)
        if address is None or not self._answers(address):
            return None
        self.store.update(
            record.id,
            state=ClusterState.UP,
            head_address=address,
            up_at=self.clock(),
            instances_json=json.dumps([m.instance_id for m in machines]),
        )
        return address

    def _launch(
        self, compute: Compute, record: ClusterRecord, request: LaunchRequest
    ) -> list[Instance]:
        """Launch (idempotent by key) and remember the ids before anything else can fail."""
        assert record.id is not None
        try:
            machines = compute.launch(request)
        except Exception as exc:
            self._refused(compute, record, request, exc)
        known = json.loads(self.store.get(record.id).instances_json)
        new = [m.instance_id for m in machines if m.instance_id not in known]
        if new:
            self.store.update(record.id, instances_json=json.dumps(known + new))
        return machines

    def _refused(
        self, compute: Compute, record: ClusterRecord, request: LaunchRequest, exc: Exception
    ) -> NoReturn:
        """The launch failed: a busy cloud is asked again next pass; otherwise nothing the
        cluster launched, recorded or not, is left running."""
        assert record.id is not None
        fault = classify(exc)
        what = f"launching {request.name}"
        if fault.kind is FaultKind.RETRY:
            raise CloudBusy(what, fault) from exc
        launched = bool(json.loads(self.store.get(record.id).instances_json))
        # Machines made under this key but not recorded (one VM of several refused, or a
        # half-done launch): only the compute knows its keys. Optional, like managed().
        abandon = getattr(compute, "abandon", None)
        if abandon is not None:
            abandon(request)
        self.terminate(record, f"launch refused: {fault.describe()}")
        if fault.kind in (FaultKind.CAPACITY, FaultKind.QUOTA):
            raise LaunchRefused(what, fault, launched) from exc
        raise ClusterError(f"{what}: {fault.describe()}") from exc

    def _running(self, record: ClusterRecord, machines: Sequence[Instance]) -> bool:
        if not machines:
            return False
        compute = self.compute(record.cloud, record.instance_type)
        seen = compute.describe(record.zone, [m.instance_id for m in machines])
        if len(seen) < len(machines):
            return False  # not yet visible: EC2's describe lags its launch
        why = lost(seen, [m.instance_id for m in machines])
        if why is not None:
            self.terminate(record, f"lost while booting: {why}")
            raise ClusterLost(f"cluster {record.name} lost while booting: {why}")
        return all(i.state is InstanceState.RUNNING and (i.private_ip or i.public_ip) for i in seen)

    # -- while a job runs ---------------------------------------------------------------

    def held_by(self, attempt_id: int) -> ClusterRecord | None:
        return self.store.held_by(attempt_id)

    def check(self, attempt_id: int) -> str | None:
        """Why the attempt's cluster can no longer run it (a machine preempted, stopped or
        gone), or None while every machine runs."""
        record = self.store.held_by(attempt_id)
        if record is None or record.state != ClusterState.UP:
            return None
        ids = json.loads(record.instances_json)
        compute = self.compute(record.cloud, record.instance_type)
        try:
            seen = compute.describe(record.zone, ids)
        except Exception as exc:
            if classify(exc).kind is FaultKind.RETRY:
                return None  # the cloud is busy: it cannot tell now, the next pass asks again
            raise
        return lost(seen, ids)

    def release(self, attempt_id: int) -> None:
        """The attempt is done with its cluster: an UP one stays warm for the next job."""
        record = self.store.held_by(attempt_id)
        if record is None or record.id is None:
            return
        if record.state == ClusterState.UP:
            self.store.update(record.id, attempt_id=None, last_used_at=self.clock())
        else:
            self.terminate(record, "its attempt ended before it came up")

    def terminate(self, record: ClusterRecord, reason: str) -> None:
        assert record.id is not None
        ids = json.loads(self.store.get(record.id).instances_json)
        if ids:
            self.compute(record.cloud, record.instance_type).terminate(record.zone, ids)
        self.store.update(
            record.id,
            state=ClusterState.TERMINATED,
            attempt_id=None,
            ended_at=self.clock(),
            end_reason=reason,
        )

    # -- housekeeping -------------------------------------------------------------------

    def maintain(self, active_attempts: Collection[int]) -> list[str]:
        """Release clusters whose attempt ended (a controller died between the two), stop
        the ones idle too long, and terminate tagged machines no live cluster claims. A
        step the cloud is too busy for is put off to the next pass, and said so."""
        done: list[str] = []
        now = self.clock()
        for record in self.store.live():
            held = record.attempt_id
            if held is not None and held not in active_attempts:
                said = f"released {record.name}: its attempt had ended"
                done.append(self._tidy(said, partial(self.release, held)))
        for record in idle_expired(self.store.live(), now, self.idle_stop_s):
            why = f"idle for {(now - record.last_used_at).total_seconds():.0f} s"
            done.append(
                self._tidy(f"stopped {record.name}: {why}", partial(self.terminate, record, why))
            )
        done += self._sweep()
        return done

    @staticmethod
    def _tidy(said: str, step: Callable[[], object]) -> str:
        """Run one housekeeping step; a busy cloud (RETRY) is reported, not raised."""
        try:
            step()
        except Exception as exc:
            return _put_off(exc, said)
        return said

    def _sweep(self) -> list[str]:
        live = {c.name for c in self.store.live()}
        regions: dict[str, set[str]] = {k: set(v) for k, v in self.sweep_regions.items()}
        for c in self.store.all():
            regions.setdefault(c.cloud, set()).add(c.region)
        done = []
        for kind, compute in self.computes.items():
            # Optional: a Compute that can list what sched tagged in a region (managed()).
            listing = getattr(compute, "managed", None)
            if listing is None:
                continue
            for region in sorted(regions.get(kind, ())):
                try:
                    found = listing(region, CLUSTER_TAG)
                except Exception as exc:
                    done.append(_put_off(exc, f"sweep of {kind} {region}"))
                    continue
                for machine in orphans(found, live):
                    said = f"terminated orphan {machine.instance_id} ({machine.tags[CLUSTER_TAG]})"
                    kill = partial(compute.terminate, machine.zone, [machine.instance_id])
                    done.append(self._tidy(said, kill))
        return done


def _put_off(exc: Exception, what: str) -> str:
    """What a busy cloud (RETRY) put off until the next pass; other errors are raised."""
    fault = classify(exc)
    if fault.kind is not FaultKind.RETRY:
        raise exc
    return f"put off ({fault.describe()}): {what}"
