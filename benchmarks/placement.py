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
import functools
import gc
import json
import math
import pstats
import random
import statistics
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jobs.accelerators import AcceleratorKind, parse_accelerator
from jobs.loading import parse_spec
from jobs.spec import JobSpec
from providers.network import NetworkPrices, load_network_prices
from providers.offering import MarketKind, Offering
from providers.skypilot_catalog import load_skypilot_catalog
from providers.snapshot import load_snapshot
from scheduler.constraints import OfferingIndex, PlanContext
from scheduler.placement import Plan, hours_until, plan

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
KINDS = ("gpu", "gpu_any_of", "tpu", "cpu")


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


# ---- the jobs -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Universe:
    """What the generated jobs may name: accelerators sold, regions priced and sold."""

    gpu_counts: dict[str, list[int]]  # GPU name -> counts per node on sale
    tpus: dict[str, list[str]]  # TPU generation -> slice names on sale, smallest first
    offered_regions: dict[str, list[str]]  # cloud -> regions with offerings
    selling: dict[str | None, list[str]]  # accelerator (None: CPU-only) -> regions selling it
    network_regions: dict[str, list[str]]  # cloud -> regions the network table prices
    unit_usd: dict[str | None, float]  # median on-demand $/h per GPU, per TPU slice, per vCPU

    @classmethod
    def of(cls, offerings: Sequence[Offering], network: NetworkPrices) -> Universe:
        gpus: dict[str, set[int]] = {}
        tpus: dict[str, set[str]] = {}
        regions: dict[str, set[str]] = {}
        selling: dict[str | None, set[str]] = {}
        unit: dict[tuple[str | None, bool], list[float]] = {}
        for o in offerings:
            regions.setdefault(o.cloud, set()).add(o.region)
            a = o.accelerators
            name = None if a is None else a.name
            selling.setdefault(name, set()).add(o.region)
            per_unit = o.price_per_hour / (o.vcpus if a is None else a.count)
            unit.setdefault((name, o.market is MarketKind.ON_DEMAND), []).append(per_unit)
            if a is None or not _requestable(a.name):
                continue
            if a.name.startswith("tpu-"):
                tpus.setdefault(a.name.split("-")[1], set()).add(a.name)
            else:
                gpus.setdefault(a.name, set()).add(a.count)
        return cls(
            gpu_counts={n: sorted(c) for n, c in sorted(gpus.items())},
            tpus={g: sorted(s, key=_slice_size) for g, s in sorted(tpus.items())},
            offered_regions={c: sorted(r) for c, r in sorted(regions.items())},
            selling={name: sorted(r) for name, r in selling.items()},
            network_regions={
                cloud: sorted(r for rs in rates.regions.values() for r in rs)
                for cloud, rates in network.clouds.items()
            },
            unit_usd={
                name: statistics.median(unit.get((name, True)) or unit[(name, False)])
                for name in selling
            },
        )

    def unsold_regions(self) -> list[str]:
        """Regions the network table prices but no offering is in."""
        return [
            region
            for cloud, regions in self.network_regions.items()
            for region in regions
            if region not in self.offered_regions.get(cloud, [])
        ]


@functools.cache
def _requestable(name: str) -> bool:
    """Only names a job spec accepts (the catalog keeps unknown ones such as P4)."""
    try:
        parse_accelerator(name)
    except ValueError:
        return False
    return True


def _first_accelerator(resources: dict[str, Any]) -> str | None:
    """The name of the job's first accelerator option (None for a CPU-only job)."""
    wanted = resources.get("accelerators")
    if wanted is None:
        return None
    first = wanted["any_of"][0] if isinstance(wanted, dict) else wanted
    return first.split(":")[0]


def _slice_size(name: str) -> int:
    return int(name.rsplit("-", 1)[1])


@dataclass(frozen=True)
class Job:
    kind: str
    spec: JobSpec
    ctx: PlanContext


class JobMaker:
    """Seeded job specs shaped like a real queue: mostly GPU work, some TPU and CPU."""

    def __init__(self, universe: Universe, seed: int, now: datetime) -> None:
        self.u = universe
        self.rng = random.Random(seed)
        self.now = now

    def make(self, n: int) -> list[Job]:
        kinds = self.rng.choices(KINDS, weights=(45, 15, 20, 20), k=n)
        return [self._job(i, kind) for i, kind in enumerate(kinds)]

    def _job(self, i: int, kind: str) -> Job:
        r = self.rng
        nodes = r.choices((1, 2, 4, 8, 16), weights=(70, 12, 10, 6, 2))[0]
        hours = round(10 ** r.uniform(-0.6, 2.3), 2)  # 15 minutes to 200 hours
        resources, per_node_usd = self._resources(kind)
        resources["num_nodes"] = nodes
        raw: dict[str, Any] = {
            "name": f"bench-{i}",
            "run": "python train.py",
            "resources": resources,
            "market": r.choices(("auto", "spot", "on_demand"), weights=(50, 30, 20))[0],
            "estimated_hours": hours,
            "constraints": self._constraints(
                kind, _first_accelerator(resources), per_node_usd * nodes, hours
            ),
            "data": self._data(),
        }
        if r.random() < 0.5:
            raw["checkpoint"] = self._checkpoint()
        if r.random() < 0.08:
            self._make_infeasible(raw, hours)
        spec = parse_spec(raw, source="bench", now=self.now)
        ctx = PlanContext(hours_left=hours_until(spec.deadline_at(self.now), self.now))
        return Job(kind=kind, spec=spec, ctx=ctx)

    def _resources(self, kind: str) -> tuple[dict[str, Any], float]:
        """The resources block, and a rough $/h per node to set price caps around."""
        r = self.rng
        if kind == "cpu":
            cpus = r.choice((2, 4, 8, 16, 32, 64, 96))
            res: dict[str, Any] = {"cpus": cpus}
            if r.random() < 0.5:
                res["memory_gb"] = cpus * r.choice((2, 4, 8))
            return res, cpus * self.u.unit_usd[None]
        if kind == "tpu":
            name = self._tpu()
            return {"accelerators": name}, self.u.unit_usd[name]
        if kind == "gpu":
            name, count = self._gpu()
            res = {"accelerators": f"{name}:{count}"}
            if r.random() < 0.15:
                res["gpu_memory_gb"] = r.choice((16, 24, 40, 80))
            return res, self.u.unit_usd[name] * count
        gpus = [self._gpu() for _ in range(r.choice((2, 2, 3)))]
        options = [f"{n}:{c}" for n, c in gpus]
        cheapest = min(self.u.unit_usd[n] * c for n, c in gpus)
        if r.random() < 0.25:
            tpu = self._tpu()
            options.append(tpu)
            cheapest = min(cheapest, self.u.unit_usd[tpu])
        return {"accelerators": {"any_of": options}}, cheapest

    def _gpu(self) -> tuple[str, int]:
        r = self.rng
        name = r.choice(list(self.u.gpu_counts))
        counts = self.u.gpu_counts[name]
        roll = r.random()
        if roll < 0.85:
            return name, r.choice(counts)
        if roll < 0.95:
            return name, r.choice((3, 5, 6))  # not a size on sale: a bigger node must do
        return name, 16  # rarely on sale

    def _tpu(self) -> str:
        slices = self.u.tpus[self.rng.choice(list(self.u.tpus))]
        return self.rng.choice(slices[: min(len(slices), 6)])  # the sizes people rent

    def _constraints(
        self, kind: str, accelerator: str | None, cluster_usd: float, hours: float
    ) -> dict[str, Any]:
        r = self.rng
        c: dict[str, Any] = {}
        if r.random() < 0.3:
            c["max_price_per_hour"] = round(cluster_usd * r.uniform(0.3, 3), 2)
        if r.random() < 0.15:
            c["max_total_cost"] = round(cluster_usd * hours * r.uniform(0.5, 4), 2)
        if r.random() < 0.2:
            c["max_interruptions"] = r.randint(0, 5)
        if r.random() < 0.3:
            c["deadline"] = f"{max(1, round(hours * 60 * r.uniform(1.0, 4)))}m"
        if r.random() < 0.2 and kind != "tpu":
            c["clouds"] = r.choice((["aws"], ["gcp"], ["aws", "gcp"]))
        if r.random() < 0.15:
            c["regions"] = self._regions(kind, accelerator)
        return c

    def _regions(self, kind: str, accelerator: str | None) -> list[str]:
        """Mostly regions that sell what the job asks for, as a user would pick them."""
        r = self.rng
        if r.random() < 0.8:
            regions = self.u.selling[accelerator]
        else:
            regions = self.u.offered_regions["gcp" if kind == "tpu" else r.choice(["aws", "gcp"])]
        return r.sample(regions, k=min(len(regions), r.randint(1, 3)))

    def _data(self) -> dict[str, Any]:
        r = self.rng
        inputs = [
            self._location(inp=True) for _ in range(r.choices((0, 1, 2, 3), (30, 40, 20, 10))[0])
        ]
        outputs = [self._location(inp=False) for _ in range(r.choices((0, 1), (50, 50))[0])]
        return {"inputs": inputs, "outputs": outputs}

    def _location(self, *, inp: bool) -> dict[str, Any]:
        r = self.rng
        size = round(10 ** r.uniform(0, 4.7), 1)  # 1 GB to 50 TB
        scheme = r.choices(("s3", "gs", "file"), weights=(45, 45, 10))[0]
        if scheme == "file":
            loc: dict[str, Any] = {"uri": "file:///data/set", "size_gb": size}
        else:
            cloud = "aws" if scheme == "s3" else "gcp"
            region = r.choice(self.u.network_regions[cloud])
            loc = {"uri": f"{scheme}://bucket/{region}/x", "region": region, "size_gb": size}
        if inp:
            loc["reads"] = r.choice((1, 1, 2, 3))
        return loc

    def _checkpoint(self) -> dict[str, Any]:
        r = self.rng
        ck: dict[str, Any] = {
            "size_gb": round(10 ** r.uniform(-1, 3), 1),
            "write_seconds": r.choice((10, 30, 60, 300, 900)),
        }
        scheme = r.choice(("s3", "gs", "file", None))
        if scheme == "file":
            ck["uri"] = "file:///ckpt"
        elif scheme is not None:
            cloud = "aws" if scheme == "s3" else "gcp"
            region = r.choice(self.u.network_regions[cloud])
            ck |= {"uri": f"{scheme}://ckpt/{region}", "region": region}
        return ck

    def _make_infeasible(self, raw: dict[str, Any], hours: float) -> None:
        """A constraint no offering can meet, so the 'why none' path is timed too."""
        c = raw["constraints"]
        twist = self.rng.choice(("price", "deadline", "total", "region"))
        if twist == "price":
            c["max_price_per_hour"] = 0.001
        elif twist == "deadline":
            c["deadline"] = f"{max(1, round(hours * 30))}m"  # half the work time
        elif twist == "total":
            c["max_total_cost"] = 0.01
        else:
            c.pop("clouds", None)
            c["regions"] = [self.rng.choice(self.u.unsold_regions() or ["nowhere-1"])]


# ---- measuring ------------------------------------------------------------------------------


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


def timed(fn: Callable[[], object], runs: int) -> dict[str, float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return {
        "runs": runs,
        "median_s": round(statistics.median(times), 4),
        "max_s": round(max(times), 4),
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
