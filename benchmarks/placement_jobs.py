"""The job specs the placement benchmark plans: seeded, and drawn from what the offerings
and the network table really hold, so every job names accelerators, regions and prices
that exist (and a share are infeasible on purpose)."""

from __future__ import annotations

import functools
import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jobs.accelerators import parse_accelerator
from jobs.loading import parse_spec
from jobs.spec import JobSpec
from providers.network import NetworkPrices
from providers.offering import MarketKind, Offering
from scheduler.constraints import PlanContext
from scheduler.placement import hours_until

KINDS = ("gpu", "gpu_any_of", "tpu", "cpu")


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
