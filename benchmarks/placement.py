"""Placement latency and throughput against the real catalogs (target: p50 < 5 ms, p99 < 20 ms).

`plan()` runs for every `sched plan`, every submit and every reconcile of a queued job, so
its cost times the queue length is what a scheduler tick costs. The offerings are the
shipped snapshot plus the SkyPilot-format catalogs in ../shared/data (GCP's vms.csv with
CPU machines, and an AWS one when present): 60k+ offerings, most of them CPU-only.

1,000 job specs are generated from a fixed seed out of what the offerings and the network
table really hold: GPU jobs of every model and count sold, alternatives (any_of), TPU
slices, CPU-only jobs, multi-node, every market, with and without checkpoints, data in
many regions, deadlines, price and total-cost caps, cloud and region restrictions, and a
share made infeasible on purpose. Measured: building the OfferingIndex (once per price
view), each plan() alone (p50/p90/p99/max, overall and per job kind), serialising each
plan (model_dump_json), and planning a queue of 10,000 jobs (the 1,000 cycled).

`--profile KIND` (gpu, gpu_any_of, tpu, cpu) runs cProfile over that kind's jobs instead
and prints the functions with the most cumulative time; it writes nothing.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import math
import pstats
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from common import timed
from placement_jobs import KINDS, Job, JobMaker, Universe

from jobs.accelerators import AcceleratorKind
from providers.network import NetworkPrices, load_network_prices
from providers.offering import Offering
from providers.skypilot_catalog import load_skypilot_catalog
from providers.snapshot import load_snapshot
from scheduler.constraints import OfferingIndex
from scheduler.placement import Plan, plan

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
GCP_CATALOG = DATA / "gcp-catalog-anycloud" / "gcp" / "vms.csv"
OUT = Path(__file__).parent / "results" / "placement.json"
SEED = 20261123
JOBS = 1_000
QUEUE = 10_000
WARMUP = 50
INDEX_RUNS = 5
TARGET_P50_MS = 5.0
TARGET_P99_MS = 20.0


# ---- the offerings --------------------------------------------------------------------------


def aws_catalogs() -> list[Path]:
    """SkyPilot-format AWS catalogs under shared/data, if any dataset ships one."""
    return sorted(DATA.glob("*/aws/vms.csv"))


def load_offerings() -> tuple[list[Offering], dict[str, Any]]:
    """Every source the price book can read offline, and how long each took to load."""
    sources: dict[str, Any] = {}
    start = time.perf_counter()
    offerings = load_snapshot()
    sources["snapshot"] = _source(len(offerings), start)
    for path in [GCP_CATALOG, *aws_catalogs()]:
        start = time.perf_counter()
        load = load_skypilot_catalog(path, include_cpu=True)
        offerings += load.offerings
        sources[str(path)] = _source(len(load.offerings), start) | {"rows": load.rows_read}
    return offerings, sources


def _source(count: int, start: float) -> dict[str, Any]:
    return {"offerings": count, "load_s": round(time.perf_counter() - start, 3)}


def census(offerings: Sequence[Offering]) -> dict[str, Any]:
    """Offerings per cloud, and per cloud how many carry GPUs, TPUs or nothing."""
    per_cloud = Counter(o.cloud for o in offerings)
    per_kind = Counter(f"{o.cloud}/{_offering_kind(o)}" for o in offerings)
    return {"total": len(offerings), "per_cloud": dict(per_cloud), "per_kind": dict(per_kind)}


def _offering_kind(o: Offering) -> str:
    if o.accelerators is None:
        return "cpu"
    return "tpu" if o.accelerators.name.startswith("tpu-") else "gpu"


def pct(values: Sequence[float], q: float) -> float:
    """The q-th percentile, nearest rank (what p99 over 1,000 samples means to a reader)."""
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[rank]


def latency(values_s: Sequence[float]) -> dict[str, float]:
    ms = [v * 1000 for v in values_s]
    return {
        "n": len(ms),
        "mean_ms": round(statistics.fmean(ms), 3),
        "p50_ms": round(pct(ms, 50), 3),
        "p90_ms": round(pct(ms, 90), 3),
        "p99_ms": round(pct(ms, 99), 3),
        "max_ms": round(max(ms), 3),
    }


class GcPauses:
    """Collector pauses during a run: with 60k+ offerings alive a full collection takes
    tens of milliseconds, and it lands inside whichever plan() triggered it."""

    def __init__(self) -> None:
        self.pauses: list[tuple[int, float]] = []
        self._start = 0.0

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.pauses.append((info["generation"], time.perf_counter() - self._start))

    def __enter__(self) -> GcPauses:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._callback)

    def summary(self) -> dict[str, Any]:
        full = [p * 1000 for g, p in self.pauses if g == 2]
        return {
            "collections": dict(Counter(f"gen{g}" for g, _ in self.pauses)),
            "gen2_total_ms": round(sum(full), 1),
            "gen2_max_ms": round(max(full, default=0.0), 1),
            "live_objects": len(gc.get_objects()),
        }


def plan_one(job: Job, index: OfferingIndex, network: NetworkPrices) -> Plan:
    return plan(job.spec, index, network, ctx=job.ctx)


def time_plans(
    jobs: Sequence[Job], index: OfferingIndex, network: NetworkPrices
) -> tuple[list[float], list[Plan]]:
    times: list[float] = []
    plans: list[Plan] = []
    for job in jobs:
        start = time.perf_counter()
        result = plan_one(job, index, network)
        times.append(time.perf_counter() - start)
        plans.append(result)
    return times, plans


def time_serialisation(plans: Sequence[Plan]) -> dict[str, float]:
    times: list[float] = []
    sizes: list[int] = []
    for p in plans:
        start = time.perf_counter()
        text = p.model_dump_json()
        times.append(time.perf_counter() - start)
        sizes.append(len(text))
    return latency(times) | {"mean_bytes": round(statistics.fmean(sizes))}


def queue_throughput(
    jobs: Sequence[Job], index: OfferingIndex, network: NetworkPrices, size: int
) -> dict[str, float]:
    """The 1,000 jobs cycled: a scheduler tick that re-plans a queue of ``size`` jobs."""
    queue = [jobs[i % len(jobs)] for i in range(size)]
    start = time.perf_counter()
    for job in queue:
        plan_one(job, index, network)
    total = time.perf_counter() - start
    return {"jobs": size, "total_s": round(total, 2), "jobs_per_s": round(size / total, 1)}


def per_kind(jobs: Sequence[Job], times: Sequence[float], plans: Sequence[Plan]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kind in KINDS:
        picked = [i for i, j in enumerate(jobs) if j.kind == kind]
        if not picked:
            continue
        out[kind] = latency([times[i] for i in picked]) | {
            "feasible": sum(1 for i in picked if plans[i].placements),
            "mean_pool_after_index": round(statistics.fmean(_pool_size(plans[i]) for i in picked)),
            "mean_skipped": round(
                statistics.fmean(getattr(plans[i], "skipped", 0) for i in picked)
            ),
        }
    return out


def _pool_size(p: Plan) -> int:
    """Offerings with an accelerator the job names (for a CPU job: none): the rest are
    ruled out wholesale at the accelerators stage. ``Plan.skipped`` (where the plan has
    it) counts those of the pool that were never costed because they could not beat the
    kept placements: the work a price bound saves."""
    outside = next((s.removed for s in p.funnel if s.stage.value == "accelerators"), 0)
    return p.considered - outside


def why_infeasible(plans: Sequence[Plan]) -> dict[str, int]:
    """The stage that removed the last candidate, for the plans with none."""
    counts: Counter[str] = Counter()
    for p in plans:
        if not p.placements:
            last = next((s.stage.value for s in p.funnel if s.left == 0), "none left")
            counts[last] += 1
    return dict(counts.most_common())


def jobs_summary(jobs: Sequence[Job]) -> dict[str, Any]:
    specs = [j.spec for j in jobs]
    return {
        "seed": SEED,
        "count": len(jobs),
        "kinds": dict(Counter(j.kind for j in jobs)),
        "markets": dict(Counter(s.market.value for s in specs)),
        "multi_node": sum(1 for s in specs if s.resources.num_nodes > 1),
        "with_checkpoint": sum(1 for s in specs if s.checkpoint is not None),
        "with_data": sum(1 for s in specs if s.data.inputs or s.data.outputs),
        "with_deadline": sum(1 for j in jobs if j.ctx.hours_left is not None),
        "with_price_cap": sum(1 for s in specs if s.constraints.max_price_per_hour is not None),
        "with_total_cap": sum(1 for s in specs if s.constraints.max_total_cost is not None),
        "with_cloud_or_region_limit": sum(
            1 for s in specs if s.constraints.clouds or s.constraints.regions
        ),
        "tpu_options": sum(
            1 for s in specs for o in s.accelerator_options if o.kind is AcceleratorKind.TPU
        ),
    }


# ---- reporting ------------------------------------------------------------------------------


def print_latency(label: str, t: dict[str, Any]) -> None:
    extra = f"  feasible {t['feasible']}/{t['n']}" if "feasible" in t else ""
    if "mean_skipped" in t:
        extra += (
            f", {t['mean_skipped']:,} of {t['mean_pool_after_index']:,} offerings"
            " skipped as dearer (mean)"
        )
    print(
        f"{label:22} p50 {t['p50_ms']:8.2f} ms  p90 {t['p90_ms']:8.2f}  p99 {t['p99_ms']:8.2f}"
        f"  max {t['max_ms']:8.2f}  (n={t['n']}){extra}"
    )


def profile(kind: str, jobs: Sequence[Job], index: OfferingIndex, network: NetworkPrices) -> None:
    picked = [j for j in jobs if j.kind == kind]
    profiler = cProfile.Profile()
    profiler.enable()
    for job in picked:
        plan_one(job, index, network)
    profiler.disable()
    print(f"cProfile over {len(picked)} {kind} jobs, top 25 by cumulative time:")
    pstats.Stats(profiler).strip_dirs().sort_stats("cumulative").print_stats(25)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=KINDS, help="profile one job kind; write nothing")
    parser.add_argument("--queue", type=int, default=QUEUE, help="jobs in the throughput run")
    args = parser.parse_args()
    if args.queue < 1:
        parser.error("--queue must be at least 1")
    if not GCP_CATALOG.is_file():
        print(f"placement: skipped: {GCP_CATALOG} is not present (nothing written)")
        return
    offerings, sources = load_offerings()
    network = load_network_prices()
    index = OfferingIndex.build(offerings)
    now = datetime.now(UTC)
    jobs = JobMaker(Universe.of(offerings, network), SEED, now).make(JOBS)
    if args.profile:
        profile(args.profile, jobs, index, network)
        return
    offered = census(offerings)
    print(f"offerings: {offered['total']:,} in all; per cloud {offered['per_cloud']}")
    print(f"  by kind {offered['per_kind']}")
    for name, s in sources.items():
        print(f"  {name}: {s['offerings']:,} offerings, loaded in {s['load_s']:.2f} s")
    build = timed(lambda: OfferingIndex.build(offerings), INDEX_RUNS)
    print(f"OfferingIndex.build: median {build['median_s'] * 1000:.1f} ms ({INDEX_RUNS} runs)")
    gc.freeze()  # as Controller.offerings does once it has indexed a price view

    time_plans(jobs[:WARMUP], index, network)
    with GcPauses() as pauses:
        times, plans = time_plans(jobs, index, network)
    collector = pauses.summary()
    overall = latency(times) | {"feasible": sum(1 for p in plans if p.placements)}
    kinds = per_kind(jobs, times, plans)
    print_latency("plan, all jobs", overall)
    for kind, t in kinds.items():
        print_latency(f"  {kind}", t)
    print(
        f"garbage collector during those plans: {collector['collections']}, full collections"
        f" {collector['gen2_total_ms']} ms in all, longest {collector['gen2_max_ms']} ms"
        f" ({collector['live_objects']:,} live objects)"
    )
    reasons = why_infeasible(plans)
    print(f"infeasible, by the stage that removed the last candidate: {reasons}")
    dump = time_serialisation(plans)
    print_latency("model_dump_json", dump)
    queue = queue_throughput(jobs, index, network, args.queue)
    print(f"queue of {args.queue:,}: {queue['total_s']:.1f} s, {queue['jobs_per_s']:,.0f} jobs/s")
    met = {
        "p50": overall["p50_ms"] < TARGET_P50_MS,
        "p99": overall["p99_ms"] < TARGET_P99_MS,
    }
    print(f"targets p50 < {TARGET_P50_MS} ms, p99 < {TARGET_P99_MS} ms: {met}")
    results = {
        "offerings": offered,
        "sources": sources,
        "jobs": jobs_summary(jobs),
        "index_build": build,
        "plan": overall,
        "plan_by_kind": kinds,
        "gc_during_plans": collector,
        "infeasible_by_stage": reasons,
        "model_dump_json": dump,
        "queue": queue,
        "targets": {"p50_ms": TARGET_P50_MS, "p99_ms": TARGET_P99_MS, "met": met},
    }
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(
        json.dumps({"measured_at": datetime.now(UTC).isoformat(), "results": results}, indent=2)
    )
    print(f"written to {OUT}")


if __name__ == "__main__":
    main()
