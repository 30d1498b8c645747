"""The startup script that turns a fresh cloud machine into a Ray head or worker.

Why a startup script given to the provider's own launch call, and not Ray's cluster
launcher (``ray up``): our launches are already idempotent per attempt (EC2 ClientToken
and a tag, GCE requestId, TPU node ids), pinned to the zone and market the placement
chose, tagged for cost reports, and watched for preemption by the controller. The
launcher would add a second owner of the same machines (its own autoscaler, SSH set-up
and node tags), with its own retry and failover rules deciding zones behind our back.
A script handed to RunInstances / instances.insert / nodes.create keeps one owner, needs
no SSH from the controller, and can be checked here: it is plain bash, tested by running.

The machine image must have Python 3; Ray is installed at the controller's version when
the image lacks it. The script also starts the node agent (providers/node_agent.py,
copied in verbatim), which turns an interruption notice into SIGTERM for the jobs.
"""

from __future__ import annotations

import json
import shlex
from importlib.metadata import version
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

AGENT_SOURCE = Path(__file__).with_name("node_agent.py")

# Seconds Ray waits between SIGTERM and SIGKILL when a job is stopped: most of the notice
# each cloud gives (AWS two minutes, GCP about thirty seconds), less time to stop.
STOP_WAIT_S = {"aws": 100, "gcp": 25}
METADATA_URL = {"aws": "http://169.254.169.254", "gcp": "http://metadata.google.internal"}


class Bootstrap(BaseModel):
    """What every node of every cluster shares."""

    model_config = ConfigDict(frozen=True)

    gcs_port: int = Field(default=6379, ge=1, le=65535)
    dashboard_port: int = Field(default=8265, ge=1, le=65535)
    ray_version: str = Field(default_factory=lambda: version("ray"))
    state_dir: str = Field(default="/opt/sched", description="Where the agent is written.")
    agent_interval_s: float = Field(default=5.0, gt=0)
    metadata_url: dict[str, str] = Field(default_factory=lambda: dict(METADATA_URL))


def cluster_resource(cluster: str) -> str:
    """A custom resource every node of the cluster carries, so the job's driver and its
    tasks can be told apart from another cluster's in Ray's own view."""
    return f"sched-cluster-{cluster}"


def _words(*args: str) -> str:
    """A command line: every word quoted, so no value (cluster name, address, path,
    version) is ever read by bash as anything but one literal argument."""
    return shlex.join(args)


def startup_script(boot: Bootstrap, *, cluster: str, cloud: str, head_ip: str | None = None) -> str:
    """Bash for one node: the head when ``head_ip`` is None, else a worker joining it.

    Every value goes into the script through ``shlex`` quoting, or as JSON (which escapes
    newlines) inside the comment line; the node agent's source is a quoted heredoc."""
    if cloud not in STOP_WAIT_S:
        raise ValueError(f"no startup script for cloud {cloud!r}")
    role = "head" if head_ip is None else "worker"
    resources = f"--resources={json.dumps({cluster_resource(cluster): 1})}"
    if head_ip is None:
        start = _words(
            "ray",
            "start",
            "--head",
            f"--port={boot.gcs_port}",
            "--dashboard-host=0.0.0.0",
            f"--dashboard-port={boot.dashboard_port}",
            resources,
            "--disable-usage-stats",
        )
        jobs_api = f"http://127.0.0.1:{boot.dashboard_port}"
    else:
        address = f"--address={head_ip}:{boot.gcs_port}"
        start = _words("ray", "start", address, resources, "--disable-usage-stats")
        jobs_api = f"http://{head_ip}:{boot.dashboard_port}"
    state = shlex.quote(boot.state_dir)
    agent_path = shlex.quote(f"{boot.state_dir}/node_agent.py")
    agent = AGENT_SOURCE.read_text()
    if "SCHED_AGENT_EOF" in agent:
        raise ValueError("the node agent's source contains the heredoc terminator")
    agent_cmd = _words(
        "python3",
        f"{boot.state_dir}/node_agent.py",
        "--cloud",
        cloud,
        "--metadata",
        boot.metadata_url[cloud],
        "--ray",
        jobs_api,
        "--interval",
        f"{boot.agent_interval_s:g}",
    )
    log = shlex.quote(f"{boot.state_dir}/agent.log")
    return f"""#!/bin/bash
# sched: Ray {role} of cluster {json.dumps(cluster)} on {cloud}
set -euo pipefail
export RAY_JOB_STOP_WAIT_TIME_S={STOP_WAIT_S[cloud]}
if ! command -v ray >/dev/null 2>&1; then
  python3 -m pip install --quiet {shlex.quote(f"ray[default]=={boot.ray_version}")}
fi
mkdir -p {state}
cat > {agent_path} <<'SCHED_AGENT_EOF'
{agent}SCHED_AGENT_EOF
{start}
nohup {agent_cmd} >>{log} 2>&1 &
"""
