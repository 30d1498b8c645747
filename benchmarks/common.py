"""What the benchmark scripts share: timing, summaries, free ports, a multi-node Ray cluster."""

from __future__ import annotations

import os
import socket
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
