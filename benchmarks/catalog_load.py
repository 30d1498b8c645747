"""Loading a real SkyPilot-format catalog: GCP's vms.csv, 31k rows (target: well under 1 s).

A catalog file is read whenever the price book is built, so its load time is paid by
`sched plan` and `sched prices`. Measured: wall time of a load (accelerator offerings,
the default, and with CPU machines too), the peak Python allocation during one load
(tracemalloc) and the process's peak RSS, and the time to pick the H100 offerings out
of the result and sort them by price, the shape of a typical `sched prices --gpu H100`.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

from common import timed

from providers.offering import Offering
from providers.skypilot_catalog import load_skypilot_catalog

CATALOG = Path(__file__).resolve().parent.parent.parent / (
    "shared/data/gcp-catalog-anycloud/gcp/vms.csv"
)
OUT = Path(__file__).parent / "results" / "catalog_load.json"
LOAD_RUNS = 7
CPU_RUNS = 3
FILTER_RUNS = 200
CLI_RUNS = 5
SCHED = Path(sys.executable).parent / "sched"


def h100_by_price(offerings: list[Offering]) -> list[Offering]:
    return sorted(
        (o for o in offerings if o.accelerators and o.accelerators.name == "H100"),
        key=lambda o: o.price_per_hour,
    )


def cli_prices_h100() -> dict[str, float]:
    """The whole user-visible path: a fresh `sched` process loading the catalog and
    answering `prices --gpu H100`, offline, with its own empty data directory."""
    with tempfile.TemporaryDirectory() as home:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SCHED_", "AWS_"))}
        env.update({"SCHED_HOME": home, "HOME": home})
        cmd = [str(SCHED), "prices", "--offline", "--catalog", str(CATALOG), "--gpu", "H100"]

        def run() -> None:
            subprocess.run(cmd, env=env, check=True, capture_output=True)

        run()  # the first run creates the database; measure the steady state
        return timed(run, CLI_RUNS)


def maxrss_mib() -> float:
    # Linux reports ru_maxrss in KiB, macOS in bytes.
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def main() -> None:
    if not CATALOG.is_file():
        print(f"catalog_load: skipped: {CATALOG} is not present (nothing written)")
        return
    rss_before = maxrss_mib()
    tracemalloc.start()
    load = load_skypilot_catalog(CATALOG)
    retained, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    memory = {
        "tracemalloc_peak_mib": round(peak / 2**20, 2),
        "tracemalloc_retained_mib": round(retained / 2**20, 2),
        "maxrss_before_load_mib": round(rss_before, 1),
        "maxrss_after_load_mib": round(maxrss_mib(), 1),
    }
    timings = {
        "load": timed(lambda: load_skypilot_catalog(CATALOG), LOAD_RUNS),
        "load_include_cpu": timed(
            lambda: load_skypilot_catalog(CATALOG, include_cpu=True), CPU_RUNS
        ),
        "h100_filter_sort": timed(lambda: h100_by_price(load.offerings), FILTER_RUNS),
        "cli_prices_gpu_h100": cli_prices_h100(),
    }
    h100 = h100_by_price(load.offerings)
    cheapest = (
        f"{h100[0].zone} {h100[0].instance_type} {h100[0].market} ${h100[0].price_per_hour:.4f}/h"
        if h100
        else None
    )
    size = CATALOG.stat().st_size
    rows, offers = load.rows_read, len(load.offerings)
    print(f"{CATALOG}: {size / 1e6:.1f} MB, {rows} rows -> {offers} offerings")
    for label, t in timings.items():
        print(
            f"{label:19} median {t['median_s'] * 1000:8.2f} ms  min {t['min_s'] * 1000:.2f}"
            f"  max {t['max_s'] * 1000:.2f}  ({t['runs']} runs)"
        )
    print(
        f"{'memory':19} tracemalloc peak {memory['tracemalloc_peak_mib']} MiB, retained "
        f"{memory['tracemalloc_retained_mib']} MiB; maxrss {memory['maxrss_before_load_mib']}"
        f" -> {memory['maxrss_after_load_mib']} MiB"
    )
    print(f"{'h100':19} {len(h100)} offerings, cheapest {cheapest}")
    results = {
        "file": {
            "path": str(CATALOG),
            "bytes": size,
            "rows": load.rows_read,
            "offerings": len(load.offerings),
            "rows_used": load.rows_used,
            "rows_skipped": load.rows_skipped,
            "prices_ignored": load.prices_ignored,
        },
        **timings,
        "memory": memory,
        "h100": {"offerings": len(h100), "cheapest": cheapest},
    }
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(
        json.dumps({"measured_at": datetime.now(UTC).isoformat(), "results": results}, indent=2)
    )
    print(f"written to {OUT}")


if __name__ == "__main__":
    main()
