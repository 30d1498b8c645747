"""Many writers at once: P processes submitting N jobs each while `sched controller` runs.

Each submitter is its own Python process using the public API (`Scheduler.submit`), the
way pipelines submit; the controller is the real `sched controller` process deciding every
job as it arrives. The jobs ask for 8 H100s, which the local machine cannot give, and no
cloud is launchable here, so the controller plans each one against the full price catalog
and records it FAILED with the reason: a real decision and a real write per job, racing
the submitters' inserts, without running thousands of Ray jobs.

Checked after: every job submitted is stored exactly once (P x N rows, every name once,
every uid distinct), each has exactly one "submitted" event and exactly one decision, and
nothing is left undecided.

`python benchmarks/concurrency.py [--processes 8] [--jobs 1000] [--db sqlite|postgres|URL]`
writes benchmarks/results/concurrency.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a script, benchmarks/ is not a package root
from benchmarks.common import each_database  # noqa: E402

RESULTS = REPO / "benchmarks" / "results"
SCHED = str(Path(sys.executable).with_name("sched"))

SUBMITTER = textwrap.dedent(
    """
    import sys
    from scheduler.api import Scheduler
    proc, count = int(sys.argv[1]), int(sys.argv[2])
    s = Scheduler()
    for k in range(count):
        s.submit(
            {"name": f"p{proc}-j{k}", "run": "true",
             "resources": {"accelerators": "H100:8"}, "tags": {"team": f"t{proc}"}},
            start=False,
        )
    s.close()
    """
)


def environment(home: Path, db_url: str | None) -> dict[str, str]:
    env = {
        **os.environ,
        "SCHED_HOME": str(home),
        "SCHED_REQUIRED_TAGS": "none",
        "SCHED_LAUNCH_CLOUDS": "",
        "RAY_AUTH_MODE": "disabled",
        "PYTHONPATH": str(REPO),
    }
    if db_url:
        env["SCHED_DB_URL"] = db_url
    return env


def run(processes: int, jobs: int, home: Path, db_url: str | None = None) -> dict[str, Any]:
    """Submit ``processes`` x ``jobs`` while a controller runs; check and time it."""
    env = environment(home, db_url)
    subprocess.run([SCHED, "list"], env=env, check=True, capture_output=True)  # schema up
    controller = subprocess.Popen(
        [SCHED, "controller", "--interval", "0.2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    began = time.perf_counter()
    submitters = [
        subprocess.Popen(
            [sys.executable, "-c", SUBMITTER, str(p), str(jobs)],
            env=env,
            stderr=subprocess.PIPE,
        )
        for p in range(processes)
    ]
    errors = [s.communicate(timeout=1800)[1].decode() for s in submitters]
    submitted_s = time.perf_counter() - began
    failed = [e for s, e in zip(submitters, errors, strict=True) if s.returncode != 0]
    if failed:
        controller.kill()
        raise RuntimeError(f"a submitter failed: {failed[0][-2000:]}")
    from scheduler.config import load_settings
    from scheduler.store import Store

    store = Store(load_settings(env).db_url)
    try:
        deadline = time.monotonic() + 1800
        while store.list_jobs(states=["PENDING"], limit=1) and time.monotonic() < deadline:
            time.sleep(0.2)
        decided_s = time.perf_counter() - began
        controller.terminate()
        controller.wait(timeout=60)
        return {
            "processes": processes,
            "jobs_each": jobs,
            **check(store, processes, jobs),
            "submit_s": round(submitted_s, 2),
            "all_decided_s": round(decided_s, 2),
            "submits_per_s": round(processes * jobs / submitted_s, 1),
        }
    finally:
        if controller.poll() is None:
            controller.kill()
        store.close()


def check(store: Any, processes: int, jobs: int) -> dict[str, Any]:
    """What must hold after the race; the figures, with the violations counted."""
    rows = store.list_jobs()
    names = Counter(j.name for j in rows)
    expected = {f"p{p}-j{k}" for p in range(processes) for k in range(jobs)}
    events: Counter[str] = Counter()
    bad_events = 0
    for job in rows:
        kinds = [e.to_state for e in store.events(job.id)]
        events.update(kinds)
        if kinds.count("PENDING") != 1 or len(kinds) != 2:
            bad_events += 1
    return {
        "stored": len(rows),
        "lost": len(expected - set(names)),
        "duplicated": sum(n - 1 for n in names.values() if n > 1),
        "unexpected": len(set(names) - expected),
        "distinct_uids": len({j.uid for j in rows}),
        "undecided": sum(1 for j in rows if j.state == "PENDING"),
        "jobs_with_wrong_events": bad_events,
        "states": dict(Counter(j.state for j in rows)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--jobs", type=int, default=1000, help="jobs per process")
    parser.add_argument(
        "--db",
        action="append",
        default=None,
        help="sqlite (a new file) or a postgresql:// URL; repeatable",
    )
    args = parser.parse_args()
    results = {}
    for label, home, url in each_database(args.db or ["sqlite", "postgres"]):
        out = run(args.processes, args.jobs, home, url)
        results[label] = out
        print(
            f"{label}: {out['stored']:,} stored of {args.processes * args.jobs:,};"
            f" lost {out['lost']}, duplicated {out['duplicated']},"
            f" undecided {out['undecided']}, wrong events {out['jobs_with_wrong_events']};"
            f" submitted in {out['submit_s']} s ({out['submits_per_s']} jobs/s),"
            f" all decided after {out['all_decided_s']} s",
            flush=True,
        )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "concurrency.json").write_text(json.dumps(results, indent=2))
    print(f"written to {RESULTS / 'concurrency.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
