"""The local machine as a provider: its own CPUs/GPUs, a local Ray cluster, a configured price.

Treating the laptop like a cloud means the same plan -> place -> run path is
exercised on every run, so the embedded default is not a special case that rots.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel, Field

from jobs.accelerators import GPUS
from jobs.secrets import KEY_ENV
from providers.offering import MarketKind, OfferedAccelerator, Offering, PriceSource


class LocalMachine(BaseModel):
    """What this host has, as detected."""

    hostname: str
    vcpus: int = Field(ge=1)
    memory_gb: float = Field(gt=0)
    gpu_name: str | None = None
    gpu_count: int = 0
    gpu_memory_gb: float = 0


def detect_machine() -> LocalMachine:
    """Count CPUs, RAM and NVIDIA GPUs (through nvidia-smi, if it is installed)."""
    vcpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    machine = LocalMachine(
        hostname=socket.gethostname() or "localhost",
        vcpus=vcpus or 1,
        memory_gb=round(pages / 1e9, 1),
    )
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return machine
    try:
        out = subprocess.run(
            [smi, "--query-gpu=name,memory.total", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return machine
    rows = [line.split(",") for line in out.strip().splitlines() if "," in line]
    if not rows:
        return machine
    return machine.model_copy(
        update={
            "gpu_name": _canonical_gpu(rows[0][0]),
            "gpu_count": len(rows),
            "gpu_memory_gb": round(float(rows[0][1]) / 1024, 1),
        }
    )


def _canonical_gpu(reported: str) -> str:
    """'NVIDIA A100-SXM4-80GB' -> 'A100-80GB'; falls back to the reported name."""
    text = reported.upper()
    for info in sorted(GPUS.values(), key=lambda i: -len(i.name)):
        parts = info.name.upper().split("-")
        if all(p in text for p in parts):
            return info.name
    return reported.strip()


def jobs_api_answers(address: str) -> bool:
    """True when a Ray dashboard (which serves the Jobs API) answers at ``address``."""
    try:
        with urllib.request.urlopen(f"{address}/api/version", timeout=2) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


class RayCluster(Protocol):
    @property
    def address(self) -> str: ...

    def is_up(self) -> bool: ...

    def start(self) -> bool: ...

    def stop(self) -> bool: ...


class LocalRayConfig(BaseModel):
    """Where the local Ray cluster listens; loopback only."""

    gcs_port: int = 6379
    dashboard_port: int = 8265
    temp_dir: str = Field(
        default_factory=lambda: f"/tmp/sched-ray-{os.getuid()}",
        description="Ray's --temp-dir; also how `sched down` finds this cluster's processes."
        " Keep it short: Ray's socket paths must fit in 107 bytes.",
    )
    num_cpus: int | None = None
    start_timeout_s: float = 60.0

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"


_NOT_INHERITED = frozenset({KEY_ENV})


class LocalRayCluster:
    """Starts and stops a single-node Ray cluster on 127.0.0.1 with the Jobs API enabled."""

    def __init__(self, config: LocalRayConfig) -> None:
        self.config = config

    @property
    def address(self) -> str:
        return self.config.address

    def is_up(self) -> bool:
        return jobs_api_answers(self.address)

    def _ray(self) -> str:
        beside = Path(sys.executable).with_name("ray")
        return str(beside) if beside.exists() else (shutil.which("ray") or "ray")

    def _env(self) -> dict[str, str]:
        # Ray 2.60 turns token auth on by default; a loopback-only cluster does not need it.
        # Jobs run `python ...`: put this interpreter's bin first so they get our environment.
        # Every job on the cluster inherits this environment: the key that opens every job's
        # secrets (SCHED_SECRET_KEY) is not passed on.
        path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
        inherited = {k: v for k, v in os.environ.items() if k not in _NOT_INHERITED}
        return {
            **inherited,
            "PATH": path,
            "RAY_AUTH_MODE": "disabled",
            "RAY_USAGE_STATS_ENABLED": "0",
        }

    def start(self) -> bool:
        """Start the cluster unless one already answers; True when this call started it."""
        if self.is_up():
            return False
        cmd = [
            self._ray(),
            "start",
            "--head",
            "--node-ip-address=127.0.0.1",
            f"--port={self.config.gcs_port}",
            "--dashboard-host=127.0.0.1",
            f"--dashboard-port={self.config.dashboard_port}",
            "--include-dashboard=true",
            "--disable-usage-stats",
        ]
        cmd.append(f"--temp-dir={self.config.temp_dir}")
        # Ray's fixed defaults for these collide with any other Ray on the machine
        # (a second cluster's job agent then never comes up): take free ones.
        for flag in (
            "--dashboard-agent-listen-port",
            "--dashboard-agent-grpc-port",
            "--runtime-env-agent-port",
            "--metrics-export-port",
            "--ray-client-server-port",
        ):
            cmd.append(f"{flag}={_free_port()}")
        if self.config.num_cpus is not None:
            cmd.append(f"--num-cpus={self.config.num_cpus}")
        result = subprocess.run(cmd, capture_output=True, text=True, env=self._env(), check=False)
        if result.returncode != 0:
            tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
            raise RuntimeError(f"could not start local Ray cluster: {tail[0]}")
        deadline = time.monotonic() + self.config.start_timeout_s
        while time.monotonic() < deadline:
            if self.is_up():
                return True
            time.sleep(0.5)
        raise RuntimeError(f"local Ray cluster did not answer at {self.address}")

    def stop(self, grace_s: float = 3.0, timeout_s: float = 15.0) -> bool:
        """Stop this cluster only (not every Ray on the machine, as ``ray stop`` would).

        Our processes are the ones whose command line names this cluster's session
        directory; the rest (agents, workers) share fate with the raylet and GCS.
        """
        session = Path(self.config.temp_dir) / "session_latest"
        pids = (
            _cluster_pids(str(session.resolve()), self.config.gcs_port) if session.exists() else []
        )
        if not pids:
            if self.is_up():
                raise RuntimeError(
                    f"the Ray cluster at {self.address} was not started by sched"
                    f" (its temp dir is not {self.config.temp_dir}); stop it with `ray stop`"
                )
            return False
        _terminate(pids, grace_s)  # the GCS and monitor ignore SIGTERM: kill after grace
        deadline = time.monotonic() + timeout_s
        while self.is_up() and time.monotonic() < deadline:
            time.sleep(0.2)
        return True


def _cluster_pids(session_dir: str, gcs_port: int) -> list[int]:
    """Processes of one local cluster (Linux /proc): those naming its session directory
    or its GCS port, and all their descendants (agents and workers rename themselves)."""
    port = re.compile(
        rf"(--gcs_server_port={gcs_port}\b|(address|--gcs-address)=[^ ]+:{gcs_port}\b)"
    )
    parents: dict[int, int] = {}
    matched: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        pid = int(entry.name)
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parents[pid] = int(stat.rsplit(")", 1)[1].split()[1])
        if session_dir in cmdline or port.search(cmdline):
            matched.add(pid)
    grew = True
    while grew:
        children = {pid for pid, ppid in parents.items() if ppid in matched} - matched
        matched |= children
        grew = bool(children)
    return sorted(matched)


def _terminate(pids: list[int], grace_s: float) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    alive = pids
    while alive and time.monotonic() < deadline:
        time.sleep(0.2)
        alive = [p for p in alive if Path(f"/proc/{p}").exists() and not _is_zombie(p)]
    for pid in alive:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def _is_zombie(pid: int) -> bool:
    try:
        return " Z " in Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


POOL_PREFIX = "sched-pool-"
"""A Ray node started with the custom resource ``sched-pool-NAME`` is offered as pool NAME:
its own zone, so it can be chosen, lost and blocked like a cloud zone."""


class RayNode(BaseModel):
    node_id: str
    alive: bool
    pools: list[str]
    cpus: float
    memory_gb: float


def ray_nodes(address: str) -> list[RayNode]:
    """The cluster's nodes through Ray's state API (the dashboard's HTTP endpoint)."""
    from ray.util.state import list_nodes

    nodes = []
    for n in list_nodes(address=address, detail=True, raise_on_missing_output=False):
        resources = n.resources_total or {}
        nodes.append(
            RayNode(
                node_id=n.node_id,
                alive=n.state == "ALIVE",
                pools=sorted(
                    k.removeprefix(POOL_PREFIX) for k in resources if k.startswith(POOL_PREFIX)
                ),
                cpus=float(resources.get("CPU", 0.0)),
                memory_gb=float(resources.get("memory", 0.0)) / 1e9,
            )
        )
    return nodes


class LocalProvider:
    """This host, offered at a configured price (default $0/h) as one on-demand node, and
    each labelled node of the local Ray cluster as a pool of its own."""

    name = "local"

    def __init__(
        self,
        cluster: RayCluster,
        machine: LocalMachine,
        price_per_hour: float = 0.0,
    ) -> None:
        self.cluster = cluster
        self.machine = machine
        self.price_per_hour = price_per_hour

    def offerings(self, now: datetime) -> list[Offering]:
        m = self.machine
        accel = (
            OfferedAccelerator(name=m.gpu_name, count=m.gpu_count, memory_gb=m.gpu_memory_gb)
            if m.gpu_name and m.gpu_count
            else None
        )
        shape = f"local-{m.vcpus}cpu" + (f"-{m.gpu_count}x{m.gpu_name}" if accel else "")
        machine = Offering(
            cloud="local",
            region="local",
            zone=m.hostname,
            instance_type=shape,
            accelerators=accel,
            vcpus=m.vcpus,
            memory_gb=m.memory_gb,
            market=MarketKind.ON_DEMAND,
            price_per_hour=self.price_per_hour,
            as_of=now,
            price_source=PriceSource.CONFIGURED,
            max_nodes=1,
        )
        return [machine, *self._pool_offerings(now)]

    def _pool_offerings(self, now: datetime) -> list[Offering]:
        """One offering per labelled, live node; none when the cluster is not up."""
        if not self.cluster.is_up():
            return []
        offerings = []
        for node in ray_nodes(self.cluster.address):
            if not node.alive:
                continue
            for pool in node.pools:
                offerings.append(
                    Offering(
                        cloud="local",
                        region="local",
                        zone=pool,
                        instance_type=f"ray-node-{pool}",
                        vcpus=max(node.cpus, 1.0),
                        memory_gb=max(node.memory_gb, 0.1),
                        market=MarketKind.ON_DEMAND,
                        price_per_hour=self.price_per_hour,
                        as_of=now,
                        price_source=PriceSource.CONFIGURED,
                        source_detail=f"ray node {node.node_id}",
                        max_nodes=1,
                    )
                )
        return offerings

    def entrypoint_resources(self, offering: Offering) -> dict[str, float]:
        """Pins the job's entrypoint to its pool's node (a sliver of the pool resource)."""
        if offering.instance_type.startswith("ray-node-"):
            return {f"{POOL_PREFIX}{offering.zone}": 0.001}
        return {}

    def node_lost(self, offering: Offering) -> bool:
        """Whether the pool the offering names has no live node left: the job under it
        was preempted, not failed."""
        if not offering.instance_type.startswith("ray-node-"):
            return False
        nodes = ray_nodes(self.cluster.address)
        return not any(n.alive and offering.zone in n.pools for n in nodes)

    def ensure_cluster(self, offering: Offering, num_nodes: int) -> str:
        if num_nodes != 1:
            raise RuntimeError("the local provider has one node")
        self.cluster.start()
        return self.cluster.address


class ExistingRayCluster:
    """A Ray cluster someone else runs (``SCHED_RAY_ADDRESS``): used, never started or stopped."""

    def __init__(self, address: str) -> None:
        self._address = address.rstrip("/")

    @property
    def address(self) -> str:
        return self._address

    def is_up(self) -> bool:
        return jobs_api_answers(self._address)

    def start(self) -> bool:
        if not self.is_up():
            raise RuntimeError(f"SCHED_RAY_ADDRESS {self._address} does not answer")
        return False

    def stop(self) -> bool:
        raise RuntimeError(f"{self._address} is not managed by sched (SCHED_RAY_ADDRESS is set)")
