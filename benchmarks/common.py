"""What the benchmark scripts share: timing, summaries, free ports, a multi-node Ray cluster."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from providers.local import jobs_api_answers

FAST_HEALTH_CHECKS = {
    "RAY_AUTH_MODE": "disabled",
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_health_check_period_ms": "1000",
    "RAY_health_check_failure_threshold": "3",
    "RAY_health_check_timeout_ms": "1000",
}
"""Ray notices a dead node in about 3 s with these (the default is tens of seconds)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def summary(values: list[float]) -> dict[str, float]:
    return {
        "median_s": round(statistics.median(values), 4),
        "min_s": round(min(values), 4),
        "max_s": round(max(values), 4),
    }


def timed(fn: Callable[[], object], runs: int) -> dict[str, float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return {"runs": runs, **summary(times)}


@contextmanager
def pool_cluster() -> Iterator[tuple[Any, str]]:
    """A Ray head with the Jobs API on a free port, started by Ray's own test harness so
    worker nodes can be added and killed as separate processes; yields the cluster and
    its dashboard address. Fast health checks are in the environment while it runs."""
    from ray.cluster_utils import Cluster

    saved = {k: os.environ.get(k) for k in FAST_HEALTH_CHECKS}
    os.environ.update(FAST_HEALTH_CHECKS)
    port = free_port()
    cluster = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": 1,
            "include_dashboard": True,
            "dashboard_host": "127.0.0.1",
            "dashboard_port": port,
        },
    )
    try:
        address = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while not jobs_api_answers(address) and time.monotonic() < deadline:
            time.sleep(0.5)
        yield cluster, address
    finally:
        cluster.shutdown()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def postgres_installed() -> bool:
    return bool(shutil.which("initdb") and shutil.which("pg_ctl"))


def _as_postgres(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root; CI runs as root, so drop to the postgres user."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


@contextmanager
def postgres_server() -> Iterator[str]:
    """A throwaway PostgreSQL server on a free loopback port (initdb into a temporary
    directory, trust auth, fsync off); yields its URL, stops and deletes it after."""
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if not initdb or not pg_ctl:
        raise RuntimeError("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    data = Path(tempfile.mkdtemp(prefix="spg-", dir="/tmp"))
    if os.geteuid() == 0:
        shutil.chown(data, "postgres", "postgres")
    port = free_port()
    options = f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off"
    options += " -c max_connections=300"
    run = subprocess.run
    run(
        _as_postgres([initdb, "-D", str(data), "-U", "sched", "--auth=trust", "-E", "UTF8"]),
        check=True,
        capture_output=True,
    )
    run(
        _as_postgres(
            [pg_ctl, "-D", str(data), "-o", options, "-l", str(data / "log"), "-w", "start"]
        ),
        check=True,
        capture_output=True,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.2)
        yield f"postgresql+psycopg://sched@127.0.0.1:{port}/postgres"
    finally:
        run(_as_postgres([pg_ctl, "-D", str(data), "-m", "immediate", "stop"]), capture_output=True)
        shutil.rmtree(data, ignore_errors=True)


def each_database(choices: list[str]) -> Iterator[tuple[str, Path, str | None]]:
    """For each of ``choices`` (sqlite: a new file; postgres: a throwaway local server;
    else a URL): (label, a fresh SCHED_HOME, the SCHED_DB_URL or None for SQLite), with
    the server and the directory gone once the caller moves on. postgres is skipped, with
    a line saying so, where its binaries are not installed."""
    for db in choices:
        with contextlib.ExitStack() as stack:
            home = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="sched-bench-")))
            url = None
            if db == "postgres":
                if not postgres_installed():
                    print("postgres: skipped (initdb/pg_ctl not installed)")
                    continue
                url = stack.enter_context(postgres_server())
            elif db != "sqlite":
                url = db
            yield ("sqlite" if url is None else "postgresql"), home, url
