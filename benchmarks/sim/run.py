"""Replay real spot traces through five policies; print a table per scenario and write
benchmarks/results/sim.json and sim.png. `python -m benchmarks.sim.run` (or `make bench`).

Scenarios (traces in benchmarks/sim/traces.py):
- S1 single-region deadline jobs: the Can't Be Late setup, 48 h of work, a 52 h deadline,
  12-minute changeover, on each of the 9 AWS p3.2xlarge zones alone, 4 windows each.
- S2 multi-region spot: 13 GCP H100 zones (9 regions), SkyNomad's setup: 43.19 h of work,
  51.83 h deadline, 12-minute changeover, 6 windows at common starts.
- S3 data gravity: S2 with a 2 TB dataset in us-central1; moving it costs the network
  table's egress and the copy time at 5 Gbit/s.
- S4 mixed job trace: 40 GPU jobs of the Alibaba 2023 trace (4 to 60 h), deadline 1.3x
  their length, arriving over the AWS trace (9 zones, 3 regions) as they arrived in the
  trace, each alone (no contention).

Every window leaves at least 12 hours of trace before the job starts: the history sched
(and only sched) reads to judge each pool. Uniform Progress runs in one pool: the one with
the most capacity in that history (an operator's fair pick).
"""

from __future__ import annotations

import csv
import json
import math
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.sim import policies as P
from benchmarks.sim import traces
from benchmarks.sim.engine import Job, Pool, Route, free_routes, simulate
from benchmarks.sim.optimum import optimum

RESULTS = Path(__file__).resolve().parents[1] / "results"
POLICIES = ("on-demand", "skypilot", "uniform-progress", "ours", "optimum")


@dataclass
class Case:
    name: str
    job: Job
    pools: tuple[Pool, ...]
    route: Route = free_routes


@dataclass
class Totals:
    cost: dict[str, float] = field(default_factory=lambda: dict.fromkeys(POLICIES, 0.0))
    misses: dict[str, int] = field(default_factory=lambda: dict.fromkeys(POLICIES, 0))
    gaps: dict[str, list[float]] = field(default_factory=lambda: {p: [] for p in POLICIES})
    cases: int = 0


def best_history_pool(pools: Sequence[Pool], start: int) -> int:
    """The pool an operator would pin Uniform Progress to: the lowest expected $/h from
    its history (spot while it had capacity, on-demand otherwise)."""

    def expected(i: int) -> float:
        p = pools[i]
        up = sum(p.available[:start]) / max(start, 1)
        return up * p.spot_price[start] + (1 - up) * p.on_demand_price

    return min(range(len(pools)), key=expected)


def run_case(case: Case) -> dict[str, tuple[float, bool]]:
    job, pools, route = case.job, case.pools, case.route
    cooldown = math.ceil(1800 / job.gap_s)
    chosen: dict[str, Callable] = {  # type: ignore[type-arg]
        "on-demand": P.on_demand(route),
        "skypilot": P.skypilot(route, cooldown),
        "uniform-progress": P.uniform_progress(0, route),
        "ours": P.ours(route, cooldown),
    }
    out = {}
    for name, policy in chosen.items():
        if name == "uniform-progress":
            home = best_history_pool(pools, job.start_tick)
            one = (pools[home],)
            o = simulate(job, one, policy, route)
        else:
            o = simulate(job, pools, policy, route)
        out[name] = (o.cost, o.missed)
    out["optimum"] = (optimum(job, pools, route), False)
    return out


def ticks(hours: float, gap: float) -> int:
    return math.ceil(hours * 3600 / gap - 1e-9)


def s1() -> list[Case]:
    gap, pools = traces.aws_v100()
    work, deadline, change = ticks(48, gap), ticks(52, gap), ticks(0.2, gap)
    warm = ticks(12, gap)
    cases = []
    for pool in pools:
        for w in range(4):
            start = warm + w * 4 * deadline
            job = Job(work, deadline, change, gap, start_tick=start)
            cases.append(Case(f"{pool.name}#{w}", job, (pool,)))
    return cases


def s2(data_gb: float = 0.0) -> list[Case]:
    gap, pools = traces.gcp_h100()
    work, deadline, change = ticks(43.19, gap), ticks(51.83, gap), ticks(0.2, gap)
    warm = ticks(12, gap)
    route = traces.network_route(pools, gap, data_gb) if data_gb else free_routes
    cases = []
    for w in range(6):
        start = warm + w * ticks(51.83, gap)
        if start + deadline > len(pools[0].available):
            break
        data_region = "us-central1" if data_gb else None
        job = Job(work, deadline, change, gap, data_region, data_gb, start_tick=start)
        cases.append(Case(f"window {w}", job, pools, route))
    return cases


def alibaba_jobs(n: int, seed: int = 7) -> list[tuple[float, float]]:
    """(arrival hours from day 110, duration hours) of GPU pods lasting 4 to 60 h."""
    path = traces.SHARED / "alibaba-gpu-trace-v2023" / "cluster-trace-gpu-v2023" / "csv"
    rows = []
    with (path / "openb_pod_list_default.csv").open() as f:
        for r in csv.DictReader(f):
            if not r["scheduled_time"] or not r["deletion_time"] or r["num_gpu"] in ("", "0"):
                continue
            hours = (float(r["deletion_time"]) - float(r["scheduled_time"])) / 3600
            arrival = float(r["creation_time"]) / 3600 - 110 * 24
            if 4 <= hours <= 60 and arrival >= 0:
                rows.append((arrival, hours))
    random.Random(seed).shuffle(rows)
    return sorted(rows[:n])


def s4() -> list[Case]:
    gap, pools = traces.aws_v100()
    change = ticks(0.2, gap)
    warm = ticks(12, gap)
    cases = []
    for i, (arrival, hours) in enumerate(alibaba_jobs(40)):
        start = warm + ticks(arrival, gap)
        deadline = ticks(1.3 * hours, gap)
        if start + deadline > len(pools[0].available):
            continue
        job = Job(ticks(hours, gap), deadline, change, gap, start_tick=start)
        cases.append(Case(f"job {i} ({hours:.1f} h)", job, pools))
    return cases


SCENARIOS: dict[str, Callable[[], list[Case]]] = {
    "S1 single-region deadline (AWS V100, 9 zones x 4 windows)": s1,
    "S2 multi-region spot (GCP H100, 13 zones)": s2,
    "S3 data gravity (S2 + 2 TB in us-central1)": lambda: s2(2000.0),
    "S4 Alibaba job mix (AWS V100, 9 zones)": s4,
}


def summarise(results: list[dict[str, tuple[float, bool]]]) -> Totals:
    tot = Totals()
    for r in results:
        tot.cases += 1
        opt = r["optimum"][0]
        for p in POLICIES:
            cost, missed = r[p]
            tot.cost[p] += cost
            tot.misses[p] += int(missed)
            tot.gaps[p].append(cost / opt - 1 if opt > 0 else 0.0)
    return tot


def table(name: str, tot: Totals) -> str:
    od = tot.cost["on-demand"]
    opt = tot.cost["optimum"]
    lines = [
        f"{name}: {tot.cases} runs",
        f"  {'policy':18} {'total $':>10} {'misses':>6} {'vs on-demand':>13} {'vs optimum':>11}"
        f" {'mean gap':>9}",
    ]
    for p in POLICIES:
        c = tot.cost[p]
        mean = sum(tot.gaps[p]) / len(tot.gaps[p])
        lines.append(
            f"  {p:18} {c:10,.2f} {tot.misses[p]:6d} {1 - c / od:+13.1%} {c / opt - 1:+11.1%}"
            f" {mean:+9.1%}"
        )
    return "\n".join(lines)


def plot(summary: dict[str, Totals], path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    names = list(summary)
    width = 0.16
    for j, p in enumerate(POLICIES):
        values = [summary[n].cost[p] / summary[n].cost["optimum"] for n in names]
        ax.bar([i + (j - 2) * width for i in range(len(names))], values, width, label=p)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(names)), [n.split(" (")[0] for n in names], fontsize=8)
    ax.set_ylabel("total cost / omniscient optimum")
    ax.set_title("sched against other policies on real spot traces")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    if not traces.available():
        print("skipped: ../shared/data (spot traces) is not present; nothing written")
        return 0
    RESULTS.mkdir(exist_ok=True)
    summary: dict[str, Totals] = {}
    raw: dict[str, list[dict[str, object]]] = {}
    began = time.monotonic()
    for name, build in SCENARIOS.items():
        cases = build()
        results = [run_case(c) for c in cases]
        summary[name] = summarise(results)
        raw[name] = [
            {"case": c.name, **{p: {"cost": r[p][0], "missed": r[p][1]} for p in POLICIES}}
            for c, r in zip(cases, results, strict=True)
        ]
        print(table(name, summary[name]), flush=True)
    data = {
        "scenarios": {
            n: {
                "runs": t.cases,
                "total_cost": t.cost,
                "misses": t.misses,
                "saving_vs_on_demand": {p: 1 - t.cost[p] / t.cost["on-demand"] for p in POLICIES},
                "gap_to_optimum": {p: t.cost[p] / t.cost["optimum"] - 1 for p in POLICIES},
                "mean_gap_per_run": {p: sum(t.gaps[p]) / len(t.gaps[p]) for p in POLICIES},
                "runs_detail": raw[n],
            }
            for n, t in summary.items()
        },
        "seconds": round(time.monotonic() - began, 1),
    }
    (RESULTS / "sim.json").write_text(json.dumps(data, indent=2))
    plot(summary, RESULTS / "sim.png")
    gaps = [t.cost["ours"] / t.cost["optimum"] - 1 for t in summary.values()]
    print(f"ours: mean gap to the optimum over scenarios {sum(gaps) / len(gaps):+.1%}")
    print(f"written to {RESULTS / 'sim.json'} and sim.png ({data['seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
