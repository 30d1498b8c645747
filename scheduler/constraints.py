"""The hard limits a placement must meet, checked in a fixed order before anything is costed.

Each check is a stage with a name a user recognises (the spec field, mostly), so when
nothing is left the plan can say which stage removed the last candidates. Stages that
need no cost figures run here; those that do (deadline, total cost, expected
interruptions) run in placement.py once the cost model has the numbers.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from jobs.accelerators import AcceleratorKind, AcceleratorRequest
from jobs.spec import JobSpec, Market
from providers.offering import MarketKind, Offering


class Stage(StrEnum):
    ACCELERATORS = "accelerators"
    GPU_MEMORY = "gpu_memory_gb"
    NODES = "num_nodes"
    CPUS = "cpus"
    MEMORY = "memory_gb"
    CLOUDS = "clouds"
    REGIONS = "regions"
    ZONES = "zones"
    LAUNCHABLE = "launchable"
    MARKET = "market"
    BLOCKED = "blocked pools"
    MAX_PRICE = "max_price_per_hour"
    PROGRESS = "spot progress"
    INTERRUPTIONS = "max_interruptions"
    DEADLINE = "deadline"
    NETWORK = "network prices"
    MAX_TOTAL = "max_total_cost"


@dataclass(frozen=True, slots=True)
class PlanContext:
    """What the caller knows that the spec does not: time left, history, what it can launch."""

    hours_left: float | None = None
    blocked_pools: frozenset[str] = frozenset()
    interruptions_so_far: int = 0
    launchable_clouds: frozenset[str] | None = None  # None: plan everywhere


@dataclass(slots=True)
class OfferingIndex:
    """Offerings grouped by accelerator name, so a job looks only at the ones it could use.

    Built once per price view and shared by every plan against it.
    """

    offerings: Sequence[Offering]
    by_accelerator: dict[str | None, list[Offering]] = field(default_factory=dict)
    local_accelerated: list[Offering] = field(default_factory=list)
    cpu_only_by_vcpus: dict[float, list[Offering]] = field(default_factory=dict)

    @classmethod
    def build(cls, offerings: Iterable[Offering]) -> OfferingIndex:
        items = list(offerings)
        index = cls(offerings=items)
        for o in sorted(items, key=_price):
            name = o.accelerators.name if o.accelerators is not None else None
            index.by_accelerator.setdefault(name, []).append(o)
            if name is not None and o.cloud == "local":
                index.local_accelerated.append(o)
            if name is None:
                index.cpu_only_by_vcpus.setdefault(o.vcpus, []).append(o)
        return index

    def __len__(self) -> int:
        return len(self.offerings)

    def counts_of(self, name: str) -> list[int]:
        return sorted(
            {o.accelerators.count for o in self.by_accelerator.get(name, []) if o.accelerators}
        )

    def for_job(
        self, options: Sequence[AcceleratorRequest], min_cpus: float | None = None
    ) -> JobOfferings:
        """The offerings whose accelerator the job names, cheapest per node first. A job
        without accelerators gets machines without them (a GPU bought for a CPU job is
        waste) with enough vCPUs, and the local machine whatever it has: it is already
        paid for. Machines with too few vCPUs are counted, not listed: they are most of a
        full catalog, and all of them would fail the cpus check."""
        too_small: list[list[Offering]] = []
        if not options:
            groups = [self.local_accelerated]
            for vcpus, group in self.cpu_only_by_vcpus.items():
                (too_small if min_cpus is not None and vcpus < min_cpus else groups).append(group)
        else:
            names = dict.fromkeys(o.name for o in options)
            groups = [self.by_accelerator.get(n, []) for n in names]
        groups = [g for g in groups if g]
        count = sum(len(g) for g in groups)
        stream = iter(groups[0]) if len(groups) == 1 else heapq.merge(*groups, key=_price)
        return JobOfferings(
            stream=stream,
            size=count,
            too_small=sum(len(g) for g in too_small),
            cheapest_too_small=min((g[0] for g in too_small), key=_price, default=None),
        )


@dataclass(slots=True)
class JobOfferings:
    stream: Iterator[Offering]  # cheapest per node first
    size: int
    too_small: int = 0  # CPU-only machines left out for having too few vCPUs
    cheapest_too_small: Offering | None = None


def _price(o: Offering) -> float:
    return o.price_per_hour


class StaticFilter:
    """The checks that need only the spec and the offering, in stage order."""

    def __init__(self, spec: JobSpec, ctx: PlanContext) -> None:
        c, r = spec.constraints, spec.resources
        self.options = spec.accelerator_options
        self.nodes = r.num_nodes
        self.gpu_memory = r.gpu_memory_gb
        self.cpus = r.cpus
        self.memory = r.memory_gb
        self.clouds = frozenset(c.clouds) if c.clouds is not None else None
        self.regions = frozenset(c.regions) if c.regions is not None else None
        self.zones = frozenset(c.zones) if c.zones is not None else None
        self.launchable = ctx.launchable_clouds
        self.blocked = ctx.blocked_pools
        self.max_price = c.max_price_per_hour
        self.market = spec.market
        self.spot_used_up = (
            c.max_interruptions is not None and ctx.interruptions_so_far >= c.max_interruptions
        )
        self.max_interruptions = c.max_interruptions
        self.interruptions_so_far = ctx.interruptions_so_far

    def wanted(self) -> str:
        return " or ".join(str(o) for o in self.options) or "no accelerators"

    def check(self, o: Offering) -> Stage | AcceleratorRequest | None:
        """The first stage ``o`` fails, else the accelerator option it fits (None for a job
        without accelerators). Cheap on purpose: most offerings fail here, so the reason
        is worded only for the nearest miss, by :meth:`reason`."""
        accelerator = None
        if self.options:
            offered = o.accelerators
            if offered is None:
                return Stage.ACCELERATORS
            for option in self.options:
                if option.name == offered.name and (
                    option.kind is AcceleratorKind.TPU or offered.count >= option.count
                ):
                    accelerator = option
                    break
            else:
                return Stage.ACCELERATORS
            if self.gpu_memory is not None and offered.memory_gb < self.gpu_memory:
                return Stage.GPU_MEMORY
        if o.max_nodes is not None and self.nodes > o.max_nodes:
            return Stage.NODES
        if self.cpus is not None and o.vcpus < self.cpus:
            return Stage.CPUS
        if self.memory is not None and o.memory_gb < self.memory:
            return Stage.MEMORY
        if self.clouds is not None and o.cloud not in self.clouds:
            return Stage.CLOUDS
        if self.regions is not None and o.region not in self.regions:
            return Stage.REGIONS
        if self.zones is not None and o.zone not in self.zones:
            return Stage.ZONES
        if self.launchable is not None and o.cloud not in self.launchable:
            return Stage.LAUNCHABLE
        spot = o.market is MarketKind.SPOT
        if spot and (self.market is Market.ON_DEMAND or self.spot_used_up):
            return Stage.MARKET
        if not spot and self.market is Market.SPOT:
            return Stage.MARKET
        if self.blocked and o.pool in self.blocked:
            return Stage.BLOCKED
        if self.max_price is not None and o.price_per_hour * self.nodes > self.max_price:
            return Stage.MAX_PRICE
        return accelerator

    def reason(self, stage: Stage, o: Offering) -> str:
        """Why ``o`` failed ``stage``, in words."""
        offered = o.accelerators
        if stage is Stage.ACCELERATORS:
            if offered is None:
                return f"no accelerators (job needs {self.wanted()})"
            return f"offers {offered.name}:{offered.count}, job needs {self.wanted()}"
        if stage is Stage.GPU_MEMORY and offered is not None:
            return (
                f"{offered.name} has {offered.memory_gb:g} GB per device < {self.gpu_memory:g} GB"
            )
        if stage is Stage.NODES:
            return f"{self.nodes} nodes needed, {o.max_nodes} available"
        if stage is Stage.CPUS:
            return f"{o.vcpus:g} vCPUs < {self.cpus:g} needed"
        if stage is Stage.MEMORY:
            return f"{o.memory_gb:g} GB RAM < {self.memory:g} GB needed"
        if stage is Stage.CLOUDS:
            return f"cloud {o.cloud} is not in clouds {sorted(self.clouds or ())}"
        if stage is Stage.REGIONS:
            return f"region {o.region} is not in regions {sorted(self.regions or ())}"
        if stage is Stage.ZONES:
            return f"zone {o.zone} is not in zones {sorted(self.zones or ())}"
        if stage is Stage.LAUNCHABLE:
            return f"sched cannot launch machines on {o.cloud} here yet"
        if stage is Stage.MARKET:
            if o.market is not MarketKind.SPOT:
                return "on-demand, but the job asks for spot"
            if self.market is Market.ON_DEMAND:
                return "spot, but the job asks for on_demand"
            return (
                f"spot, but the job was preempted {self.interruptions_so_far} times"
                f" (max_interruptions={self.max_interruptions})"
            )
        if stage is Stage.BLOCKED:
            return f"pool {o.pool} is blocked after a preemption"
        price = o.price_per_hour * self.nodes
        return f"${price:,.2f}/h > max_price_per_hour ${self.max_price or 0:,.2f}"
