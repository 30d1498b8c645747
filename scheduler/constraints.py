"""The hard limits a placement must meet, checked in a fixed order before anything is costed.

Each check is a stage with a name a user recognises (the spec field, mostly), so when
nothing is left the plan can say which stage removed the last candidates. Stages that
need no cost figures run here; those that do (deadline, total cost, expected
interruptions) run in placement.py once the cost model has the numbers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
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

    @classmethod
    def build(cls, offerings: Iterable[Offering]) -> OfferingIndex:
        items = list(offerings)
        index = cls(offerings=items)
        for o in items:
            name = o.accelerators.name if o.accelerators is not None else None
            index.by_accelerator.setdefault(name, []).append(o)
            if name is not None and o.cloud == "local":
                index.local_accelerated.append(o)
        return index

    def __len__(self) -> int:
        return len(self.offerings)

    def counts_of(self, name: str) -> list[int]:
        return sorted(
            {o.accelerators.count for o in self.by_accelerator.get(name, []) if o.accelerators}
        )

    def for_job(self, options: Sequence[AcceleratorRequest]) -> list[Offering]:
        """The offerings whose accelerator the job names. A job without accelerators gets
        machines without them (a GPU bought for a CPU job is waste), and the local machine
        whatever it has: it is already paid for."""
        if not options:
            return self.by_accelerator.get(None, []) + self.local_accelerated
        names = dict.fromkeys(o.name for o in options)
        return [o for n in names for o in self.by_accelerator.get(n, [])]


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

    def check(self, o: Offering) -> tuple[Stage, str] | AcceleratorRequest | None:
        """The first stage ``o`` fails with the reason, else the accelerator option it fits."""
        accelerator = None
        if self.options:
            offered = o.accelerators
            if offered is None:
                return Stage.ACCELERATORS, f"no accelerators (job needs {self.wanted()})"
            for option in self.options:
                if option.name == offered.name and (
                    option.kind is AcceleratorKind.TPU or offered.count >= option.count
                ):
                    accelerator = option
                    break
            else:
                return (
                    Stage.ACCELERATORS,
                    f"offers {offered.name}:{offered.count}, job needs {self.wanted()}",
                )
            if self.gpu_memory is not None and offered.memory_gb < self.gpu_memory:
                have, need = offered.memory_gb, self.gpu_memory
                return Stage.GPU_MEMORY, f"{offered.name} has {have:g} GB per device < {need:g} GB"
        if o.max_nodes is not None and self.nodes > o.max_nodes:
            return Stage.NODES, f"{self.nodes} nodes needed, {o.max_nodes} available"
        if self.cpus is not None and o.vcpus < self.cpus:
            return Stage.CPUS, f"{o.vcpus:g} vCPUs < {self.cpus:g} needed"
        if self.memory is not None and o.memory_gb < self.memory:
            return Stage.MEMORY, f"{o.memory_gb:g} GB RAM < {self.memory:g} GB needed"
        if self.clouds is not None and o.cloud not in self.clouds:
            return Stage.CLOUDS, f"cloud {o.cloud} is not in clouds {sorted(self.clouds)}"
        if self.regions is not None and o.region not in self.regions:
            return Stage.REGIONS, f"region {o.region} is not in regions {sorted(self.regions)}"
        if self.zones is not None and o.zone not in self.zones:
            return Stage.ZONES, f"zone {o.zone} is not in zones {sorted(self.zones)}"
        if self.launchable is not None and o.cloud not in self.launchable:
            return Stage.LAUNCHABLE, f"sched cannot launch machines on {o.cloud} here yet"
        spot = o.market is MarketKind.SPOT
        if spot and self.market is Market.ON_DEMAND:
            return Stage.MARKET, "spot, but the job asks for on_demand"
        if not spot and self.market is Market.SPOT:
            return Stage.MARKET, "on-demand, but the job asks for spot"
        if spot and self.spot_used_up:
            return Stage.MARKET, (
                f"spot, but the job was preempted {self.interruptions_so_far} times"
                f" (max_interruptions={self.max_interruptions})"
            )
        if o.pool in self.blocked:
            return Stage.BLOCKED, f"pool {o.pool} is blocked after a preemption"
        price = o.price_per_hour * self.nodes
        if self.max_price is not None and price > self.max_price:
            return Stage.MAX_PRICE, f"${price:,.2f}/h > max_price_per_hour ${self.max_price:,.2f}"
        return accelerator
