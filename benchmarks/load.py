"""10,000 queued jobs: how fast does the controller place them against the full catalog?

The jobs are the placement benchmark's 1,000 seeded specs (GPU, any_of, TPU and CPU-only,
some infeasible on purpose), cycled to 10,000 and stored PENDING in a fresh database. The
controller is the real one with AWS and GCP launchable (images and project set; nothing
is launched), offered the same 60k+ offerings as benchmarks/placement.py (snapshot plus
the SkyPilot catalogs in ../shared/data, CPU machines included). Timed:
`Controller.place_queued()`, the placing step every reconcile runs before starting any
job: check budgets, plan each job with its history, and write the moves (attempt and
event, or FAILED with the reason) 64 jobs to a transaction.

`python benchmarks/load.py [--jobs 10000] [--db sqlite|postgres|URL]` writes
benchmarks/results/load.json. Target: at least 100 jobs placed per second.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from common import each_database
from placement import GCP_CATALOG, SEED, load_offerings
from placement_jobs import JobMaker, Universe

from providers.network import load_network_prices
from providers.offering import Offering
from scheduler.clouds import cluster_manager
from scheduler.config import load_settings
from scheduler.controller import Controller
from scheduler.store import Store

RESULTS = Path(__file__).resolve().parent / "results"
TARGET_JOBS_PER_S = 100.0


def place_queue(
    offerings: list[Offering], jobs: int, home: Path, db_url: str | None
) -> dict[str, Any]:
    env = {
        "SCHED_HOME": str(home),
        "SCHED_REQUIRED_TAGS": "none",
        "SCHED_LAUNCH_CLOUDS": "aws,gcp",
        "SCHED_AWS_IMAGE": "ami-0123456789abcdef0",
        "SCHED_GCP_IMAGE": "projects/sched/global/images/ray",
        "SCHED_GCP_PROJECT": "sched-bench",
        "SCHED_GCP_ANONYMOUS": "1",
        "SCHED_GCP_API_ENDPOINT": "http://127.0.0.1:9",
    }
    if db_url:
        env["SCHED_DB_URL"] = db_url
    settings = load_settings(env)
    now = datetime.now(UTC)
    store = Store(settings.db_url)
    clock = lambda: now  # noqa: E731  (one instant: deadlines do not drift during the run)
    controller = Controller(
        store,
        {},
        settings,
        clock,
        cloud_offerings=lambda: offerings,
        clusters=cluster_manager(settings, store, clock),
    )
    specs = [
        j.spec
        for j in JobMaker(Universe.of(offerings, load_network_prices()), SEED, now).make(1000)
    ]
    began = time.perf_counter()
    for i in range(jobs):
        spec = specs[i % len(specs)]
        store.add_job(spec, submitted_at=now, deadline_at=spec.deadline_at(now))
    stored_s = time.perf_counter() - began
    began = time.perf_counter()
    controller.offerings()  # the index over the catalog, built once per price view
    index_s = time.perf_counter() - began
    began = time.perf_counter()
    decided = controller.place_queued()
    placed_s = time.perf_counter() - began
    states = Counter(j.state for j in decided)
    store.close()
    return {
        "jobs": jobs,
        "store_s": round(stored_s, 2),
        "index_build_s": round(index_s, 2),
        "place_s": round(placed_s, 2),
        "jobs_per_s": round(len(decided) / placed_s, 1),
        "decided": len(decided),
        "states": dict(states),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument(
        "--db",
        action="append",
        default=None,
        help="sqlite, postgres (a throwaway local server) or a URL; repeatable (default: both)",
    )
    args = parser.parse_args()
    if not GCP_CATALOG.is_file():
        print(f"load: skipped: {GCP_CATALOG} is not present (nothing written)")
        return 0
    offerings, _ = load_offerings()
    print(f"offerings: {len(offerings):,}")
    results: dict[str, Any] = {"offerings": len(offerings), "target_jobs_per_s": TARGET_JOBS_PER_S}
    for label, home, url in each_database(args.db or ["sqlite", "postgres"]):
        out = place_queue(offerings, args.jobs, home, url)
        results[label] = out
        met = out["jobs_per_s"] >= TARGET_JOBS_PER_S
        print(
            f"{label}: {out['jobs']:,} queued jobs decided in {out['place_s']} s:"
            f" {out['jobs_per_s']} jobs/s (target {TARGET_JOBS_PER_S:.0f}: "
            f"{'met' if met else 'NOT met'}); {out['states']};"
            f" storing them took {out['store_s']} s, the index {out['index_build_s']} s",
            flush=True,
        )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "load.json").write_text(json.dumps(results, indent=2))
    print(f"written to {RESULTS / 'load.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
