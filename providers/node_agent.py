"""Runs on every cloud node sched brings up: hears the interruption notice, stops the jobs.

A spot machine gets a warning before it is taken (AWS: two minutes, through the instance
metadata's ``spot/instance-action``; GCP: about 30 seconds, ``instance/preempted`` turns
TRUE). Only the machine itself can read it, so this agent polls it and, on a notice, stops
every running Ray job of its cluster through the Jobs API: Ray sends the job SIGTERM and
waits ``RAY_JOB_STOP_WAIT_TIME_S`` (set on the head by the startup script) before SIGKILL,
which is the job's chance to write a last checkpoint. The controller then sees the job
STOPPED without anyone having cancelled it, and treats it as a preemption.

The startup script copies this file onto the node, so it imports nothing from sched: the
standard library, and Ray (already on the node) only when a notice comes.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request
from typing import Any


def _opener() -> urllib.request.OpenerDirector:
    # The link-local metadata services must never be reached through a proxy from the env.
    return urllib.request.build_opener(urllib.request.ProxyHandler({}))


def aws_instance_action(metadata_base_url: str, timeout: float = 2.0) -> dict[str, Any] | None:
    """The pending spot instance-action (``{"action": ..., "time": ...}``) or None.

    IMDSv2 (token first); a tokenless read only when the token endpoint does not exist.
    An unreachable metadata service raises: "cannot tell" is not "no notice".
    """
    base = metadata_base_url.rstrip("/")
    opener = _opener()
    headers: dict[str, str] = {}
    put = urllib.request.Request(
        f"{base}/latest/api/token",
        method="PUT",
        headers={"X-aws-ec2-metadata-token-ttl-seconds": "21600"},
    )
    try:
        with opener.open(put, timeout=timeout) as resp:
            headers["X-aws-ec2-metadata-token"] = resp.read().decode()
    except urllib.error.HTTPError as exc:
        if exc.code not in (404, 405):
            raise
    get = urllib.request.Request(f"{base}/latest/meta-data/spot/instance-action", headers=headers)
    try:
        with opener.open(get, timeout=timeout) as resp:
            body = json.loads(resp.read().decode())
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise
    if not isinstance(body, dict) or "action" not in body or "time" not in body:
        raise ValueError(f"{base}: instance-action without action and time: {body!r}")
    return body


def gcp_preempted(metadata_base_url: str, timeout: float = 2.0) -> bool:
    """Has Google preempted this VM? An unreachable metadata server raises."""
    url = f"{metadata_base_url.rstrip('/')}/computeMetadata/v1/instance/preempted"
    req = urllib.request.Request(url, headers={"Metadata-Flavor": "Google"})
    with _opener().open(req, timeout=timeout) as resp:
        body = resp.read().decode().strip().upper()
    if body not in ("TRUE", "FALSE"):
        raise ValueError(f"{url}: expected TRUE or FALSE, got {body[:40]!r}")
    return body == "TRUE"


def notice(cloud: str, metadata_base_url: str) -> str | None:
    """A one-line description of the pending interruption, or None."""
    if cloud == "aws":
        action = aws_instance_action(metadata_base_url)
        return None if action is None else f"aws {action['action']} at {action['time']}"
    if cloud == "gcp":
        return "gcp preempted" if gcp_preempted(metadata_base_url) else None
    raise ValueError(f"unknown cloud {cloud!r}: expected aws or gcp")


def stop_running_jobs(ray_address: str) -> list[str]:
    """Stop (SIGTERM, then SIGKILL after Ray's wait) every job not yet finished."""
    from ray.job_submission import JobStatus, JobSubmissionClient

    client = JobSubmissionClient(ray_address)
    stopped = []
    for job in client.list_jobs():
        if job.status in (JobStatus.PENDING, JobStatus.RUNNING) and job.submission_id:
            client.stop_job(job.submission_id)
            stopped.append(job.submission_id)
    return stopped


def watch(cloud: str, metadata_base_url: str, ray_address: str, interval_s: float) -> str:
    """Poll until a notice comes; then stop the jobs and return what was done. A metadata
    service that does not answer is retried: the agent starts before the network may be."""
    while True:
        try:
            found = notice(cloud, metadata_base_url)
        except (OSError, ValueError) as exc:
            print(f"sched-agent: metadata: {exc}", file=sys.stderr, flush=True)
            found = None
        if found is not None:
            return f"{found}: {stop_until_done(ray_address, interval_s)}"
        time.sleep(interval_s)


def stop_until_done(ray_address: str, interval_s: float) -> str:
    """Keep trying to stop the jobs until the Jobs API answers (a worker reaches the head
    over the network, which may be slow to answer in the last minutes); the machine going
    away ends the loop if nothing else does."""
    while True:
        try:
            stopped = stop_running_jobs(ray_address)
            return f"stopped {len(stopped)} job(s): {' '.join(stopped)}"
        except (OSError, RuntimeError) as exc:
            print(f"sched-agent: stopping jobs: {exc}", file=sys.stderr, flush=True)
            time.sleep(interval_s)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="sched node agent: interruption notices")
    parser.add_argument("--cloud", required=True, choices=("aws", "gcp"))
    parser.add_argument("--metadata", required=True, help="metadata service base URL")
    parser.add_argument("--ray", required=True, help="Jobs API address of this cluster")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between polls")
    args = parser.parse_args(argv)
    print(f"sched-agent: {watch(args.cloud, args.metadata, args.ray, args.interval)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
