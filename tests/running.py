"""Driving real jobs in tests: waiting for a job's progress, and killing controllers."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from scheduler.api import Scheduler
from tests.conftest import REPO, SCHED


def wait_for_step(s: Scheduler, job_id: int, progress: Path, step: int, timeout: float) -> None:
    """Reconcile the job until its checkpoint file says it reached ``step``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s.reconcile([job_id])
        if progress.exists() and json.loads(progress.read_text())["step"] >= step:
            return
        time.sleep(0.2)
    pytest.fail(f"job {job_id} did not reach step {step} in {timeout:g} s: {s.logs(job_id)}")


def kill_controllers(
    env: dict[str, str],
    done: Callable[[], bool],
    rng: random.Random,
    *,
    alive_s: tuple[float, float],
    timeout: float,
) -> int:
    """Start `sched controller` again and again, each killed with -9 after a random time
    (unless it finished first), until ``done()``; returns how many were killed."""
    kills = 0
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:
        proc = subprocess.Popen(
            [SCHED, "controller", "--interval", "0.1", "--exit-when-idle"],
            env=env,
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            proc.wait(timeout=rng.uniform(*alive_s))
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)  # no chance to clean up
            proc.wait()
            kills += 1
    return kills
