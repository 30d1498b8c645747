"""What a job is given on its cluster: environment (the checkpoint contract), resources.

The checkpoint contract (README, "What the job sees"): SCHED_CHECKPOINT_DIR to write to,
SCHED_CHECKPOINT_INTERVAL_S from the cost model, SCHED_RESUME_FROM when there is one to
resume from; SIGTERM before the machine goes, when the cloud warns.

The spec's secret values (``{from_env: NAME}``, ``{secret: VALUE}``) become plain here, in
memory, for the runtime_env handed to Ray, and nowhere else (jobs/secrets.py).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jobs.accelerators import AcceleratorKind
from jobs.secrets import SecretError, process_keyring, resolve_env
from jobs.spec import JobSpec
from providers.base import Provider
from scheduler.config import Settings
from scheduler.placement import Placement
from scheduler.preemption import daly_interval
from scheduler.ray_jobs import RayUnavailable
from scheduler.records import AttemptRecord, JobRecord


class JobEnvError(RayUnavailable):
    """The job's environment cannot be made (a from_env variable is not set, a secret cannot
    be decrypted). A RayUnavailable so that the controller, which builds the runtime_env as
    it submits, fails the job with this one line as the reason instead of crashing."""


def checkpoint_location(settings: Settings, job: JobRecord, spec: JobSpec) -> str:
    if spec.checkpoint is not None and spec.checkpoint.uri:
        uri = spec.checkpoint.uri
        return uri.removeprefix("file://") if uri.startswith("file://") else uri
    return str(settings.checkpoint_root / f"job-{job.id}")


def runtime_env(
    settings: Settings,
    job: JobRecord,
    attempt: AttemptRecord,
    spec: JobSpec,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """What Ray is given for the job; ``environ`` (default: this process's) is where
    ``from_env`` values and SCHED_SECRET_KEY are read, else the key file in the settings'
    home. JobEnvError names the variable."""
    environ = os.environ if environ is None else environ
    checkpoint = checkpoint_location(settings, job, spec)
    try:
        env = resolve_env(
            spec.env,
            environ,
            lambda: process_keyring(environ, create=False, home=settings.home),
        )
    except SecretError as exc:
        raise JobEnvError(str(exc)) from None
    env.update(
        {
            "SCHED_JOB_ID": str(job.id),
            "SCHED_JOB_NAME": job.name,
            "SCHED_ATTEMPT": str(attempt.number),
            "SCHED_CHECKPOINT_DIR": checkpoint,
        }
    )
    interval = checkpoint_interval_s(Placement.model_validate_json(attempt.placement_json), spec)
    if interval is not None:
        env["SCHED_CHECKPOINT_INTERVAL_S"] = str(round(interval))
    if "://" not in checkpoint:
        Path(checkpoint).mkdir(parents=True, exist_ok=True)
        if any(Path(checkpoint).iterdir()):
            env["SCHED_RESUME_FROM"] = checkpoint
    elif attempt.number > 1:
        env["SCHED_RESUME_FROM"] = checkpoint
    result: dict[str, Any] = {"env_vars": env}
    if spec.workdir:
        result["working_dir"] = spec.workdir
    return result


ON_DEMAND_MTBF_HOURS = 720.0
"""Machines that are not preempted still fail; a month between failures is assumed, so a
job on on-demand capacity is told to checkpoint too, just rarely."""


def checkpoint_interval_s(placement: Placement, spec: JobSpec) -> float | None:
    """How often the job should checkpoint: Daly's interval for the placement's
    interruption rate (the one the plan's preemption cost assumed); None when the job does
    not checkpoint or a checkpoint is instantaneous."""
    if spec.checkpoint is None or spec.checkpoint.write_seconds <= 0:
        return None
    spot = placement.spot
    if spot is not None and spot.checkpoint_interval_hours:
        return spot.checkpoint_interval_hours * 3600
    return daly_interval(spec.checkpoint.write_seconds / 3600, ON_DEMAND_MTBF_HOURS) * 3600


def entrypoint_resources(
    provider: Provider | None, placement: Placement
) -> dict[str, float] | None:
    pin = getattr(provider, "entrypoint_resources", None)
    return pin(placement.offering) if pin is not None else None


def gpus(placement: Placement) -> int | None:
    accel = placement.accelerator
    return accel.count if accel is not None and accel.kind is AcceleratorKind.GPU else None


def memory_bytes(spec: JobSpec) -> int | None:
    gb = spec.resources.memory_gb
    return int(gb * 1e9) if gb else None
