"""Wall time of `sched --help` and `sched list` (target: under 0.5 s each).

Cloud SDKs and Ray are imported lazily; this measures whether that holds. `list` runs
against a database holding 200 queued jobs so it reads real rows.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from jobs.loading import parse_spec
from scheduler.store import Store

RUNS = 15
SCHED = str(Path(sys.executable).with_name("sched"))
OUT = Path(__file__).parent / "results" / "cli_startup.json"


def timed(args: list[str], env: dict[str, str]) -> list[float]:
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        subprocess.run([SCHED, *args], env=env, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    home = Path(tempfile.mkdtemp(prefix="sched-bench-"))
    store = Store(f"sqlite:///{home / 'sched.db'}")
    now = datetime.now(UTC)
    for i in range(200):
        spec = parse_spec({"name": f"bench-{i}", "run": "true"}, now=now)
        store.add_job(spec, submitted_at=now, deadline_at=None)
    env = {**os.environ, "SCHED_HOME": str(home)}
    results = {}
    for label, args in (("sched --help", ["--help"]), ("sched list", ["list"])):
        times = timed(args, env)
        results[label] = {
            "runs": RUNS,
            "median_s": round(statistics.median(times), 3),
            "min_s": round(min(times), 3),
            "max_s": round(max(times), 3),
        }
        r = results[label]
        print(
            f"{label:14} median {r['median_s']:.3f} s  min {r['min_s']:.3f}  max {r['max_s']:.3f}"
        )
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps({"measured_at": now.isoformat(), "results": results}, indent=2))
    print(f"written to {OUT}")


if __name__ == "__main__":
    main()
