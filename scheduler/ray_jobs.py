"""Running a job on a Ray cluster through the Ray Jobs API.

Ray is imported lazily: it takes about a second to import, and ``sched list`` or
``sched --help`` should not pay for it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from jobs.lifecycle import AttemptState

if TYPE_CHECKING:
    from ray.job_submission import JobSubmissionClient


class RayJobStatus(BaseModel):
    state: AttemptState
    exit_code: int | None = None
    message: str = ""


_RAY_TO_ATTEMPT = {
    "PENDING": AttemptState.STARTING,
    "RUNNING": AttemptState.RUNNING,
    "SUCCEEDED": AttemptState.SUCCEEDED,
    "FAILED": AttemptState.FAILED,
    "STOPPED": AttemptState.STOPPED,
}


class RayUnavailable(RuntimeError):
    """The cluster's Jobs API does not answer."""


class RayJobs:
    """One Jobs API endpoint; every call names the job by our deterministic submission id."""

    def __init__(self, address: str, agent_wait_s: float = 60.0) -> None:
        self.address = address
        self.agent_wait_s = agent_wait_s
        self._client: JobSubmissionClient | None = None

    def _get_client(self) -> JobSubmissionClient:
        if self._client is None:
            os.environ.setdefault("RAY_AUTH_MODE", "disabled")
            from ray.job_submission import JobSubmissionClient

            # The SDK logs every package upload at INFO; our own output says what happened.
            logging.getLogger("ray.dashboard.modules.dashboard_sdk").setLevel(logging.WARNING)
            logging.getLogger("ray._private.runtime_env.packaging").setLevel(logging.WARNING)

            try:
                self._client = JobSubmissionClient(self.address)
            except (ConnectionError, RuntimeError) as exc:
                raise RayUnavailable(f"Ray Jobs API at {self.address}: {exc}") from None
        return self._client

    def submit(
        self,
        submission_id: str,
        entrypoint: str,
        *,
        runtime_env: dict[str, Any],
        num_cpus: float | None = None,
        num_gpus: float | None = None,
        memory_bytes: int | None = None,
        resources: dict[str, float] | None = None,
        metadata: dict[str, str] | None = None,
    ) -> None:
        """Submit once: a retry with the same id finds the existing job instead of a second."""
        client = self._get_client()
        if self.status(submission_id) is not None:
            return
        kwargs: dict[str, Any] = {}
        if num_cpus is not None:
            kwargs["entrypoint_num_cpus"] = num_cpus
        if num_gpus:
            kwargs["entrypoint_num_gpus"] = num_gpus
        if memory_bytes:
            kwargs["entrypoint_memory"] = memory_bytes
        if resources:
            kwargs["entrypoint_resources"] = resources
        # A freshly started head answers HTTP before its job agent is ready; that
        # error is transient, so retry it for a while rather than fail the job.
        deadline = time.monotonic() + self.agent_wait_s
        while True:
            try:
                client.submit_job(
                    entrypoint=entrypoint,
                    submission_id=submission_id,
                    runtime_env=runtime_env,
                    metadata=metadata or {},
                    **kwargs,
                )
                return
            except RuntimeError as exc:
                if "already exists" in str(exc):
                    return  # another process submitted this very attempt first
                transient = "No available agent" in str(exc) or "503" in str(exc)
                if not transient or time.monotonic() > deadline:
                    raise RayUnavailable(f"Ray Jobs API at {self.address}: {exc}") from None
                time.sleep(0.5)

    def status(self, submission_id: str) -> RayJobStatus | None:
        """The job's state on Ray, or None when Ray has never heard of it."""
        client = self._get_client()
        try:
            info = client.get_job_info(submission_id)
        except RuntimeError as exc:
            if "does not exist" in str(exc) or "404" in str(exc):
                return None
            raise RayUnavailable(f"Ray Jobs API at {self.address}: {exc}") from None
        state = _RAY_TO_ATTEMPT[
            str(info.status.value if hasattr(info.status, "value") else info.status)
        ]
        exit_code = info.driver_exit_code
        if state is AttemptState.SUCCEEDED and exit_code is None:
            exit_code = 0
        return RayJobStatus(state=state, exit_code=exit_code, message=info.message or "")

    def stop(self, submission_id: str) -> bool:
        try:
            return bool(self._get_client().stop_job(submission_id))
        except RuntimeError as exc:
            if "does not exist" in str(exc):
                return False
            raise

    def logs(self, submission_id: str) -> str:
        try:
            return str(self._get_client().get_job_logs(submission_id))
        except RuntimeError as exc:
            if "does not exist" in str(exc):
                return ""
            raise RayUnavailable(f"Ray Jobs API at {self.address}: {exc}") from None

    def follow(self, submission_id: str) -> Iterator[str]:
        """Yield log chunks as they arrive, until the job ends."""
        client = self._get_client()
        loop = asyncio.new_event_loop()
        stream = client.tail_job_logs(submission_id).__aiter__()
        try:
            while True:
                try:
                    yield loop.run_until_complete(stream.__anext__())
                except StopAsyncIteration:
                    return
        finally:
            loop.run_until_complete(stream.aclose())
            loop.close()
