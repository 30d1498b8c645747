"""The hard limits a placement must meet, checked in a fixed order before anything is costed.

Each check is a stage with a name a user recognises (the spec field, mostly), so when
nothing is left the plan can say which stage removed the last candidates. Stages that
need no cost figures run here; those that do (deadline, total cost, expected
interruptions) run in placement.py once the cost model has the numbers.
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from jobs.accelerators import AcceleratorKind, AcceleratorRequest
from jobs.spec import JobSpec, Market
from providers.network import Location
from providers.offering import MarketKind, Offering
from scheduler.cost_model import run_class


class Stage(StrEnum):
    """In the order they apply. The first six are also how the index is laid out, so a
    job skips whole groups of offerings at once and counts them where they fail."""

    ACCELERATORS = "accelerators"
    CPUS = "cpus"
    CLOUDS = "clouds"
    REGIONS = "regions"
    LAUNCHABLE = "launchable"
    MARKET = "market"
    GPU_MEMORY = "gpu_memory_gb"
    NODES = "num_nodes"
    MEMORY = "memory_gb"
    ZONES = "zones"
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
    blocked_regions: frozenset[str] = frozenset()  # "cloud/region": every pool in them
    blocked_why: Mapping[str, str] = field(default_factory=dict)  # pool or cloud/region -> why
    interruptions_so_far: int = 0
    launchable_clouds: frozenset[str] | None = None  # None: plan everywhere
    restore_from: Location | None = None  # where the checkpoint to resume from is


Place = tuple[str, str, MarketKind]  # cloud, region, market
Coarse = tuple[str, MarketKind]  # cloud, market


@dataclass(slots=True)
class OfferingIndex:
    """Offerings grouped by accelerator (name, count), vCPUs, cloud, region and market,
    each group cheapest first, so a job reads only the groups it could use and counts the
    others at the stage they fail. Built once per price view, shared by every plan on it.

    ``runs`` holds, per group (by the list's id), its cheapest offering of each run class
    (cost_model.run_class) and how many it has: a group has thousands of offerings but a
    handful of classes, so a plan can bound or count them without reading the group.
    """

    size: int
    fine: dict[str | None, dict[int, dict[float, dict[Place, list[Offering]]]]] = field(
        default_factory=dict
    )
    coarse: dict[str | None, dict[int, dict[float, dict[Coarse, list[Offering]]]]] = field(
        default_factory=dict
    )  # without the region: fewer streams to merge when the job allows every region
    local_accelerated: list[Offering] = field(default_factory=list)
    runs: dict[int, tuple[tuple[Offering, int], ...]] = field(default_factory=dict)

    @classmethod
    def build(cls, offerings: Iterable[Offering]) -> OfferingIndex:
        items = sorted(offerings, key=_order)
        index = cls(size=len(items))
        for o in items:
            a = o.accelerators
            name, count = (a.name, a.count) if a is not None else (None, 0)
            fine = index.fine.setdefault(name, {}).setdefault(count, {}).setdefault(o.vcpus, {})
            fine.setdefault((o.cloud, o.region, o.market), []).append(o)
            coarse = index.coarse.setdefault(name, {}).setdefault(count, {})
            coarse.setdefault(o.vcpus, {}).setdefault((o.cloud, o.market), []).append(o)
            if a is not None and o.cloud == "local":
                index.local_accelerated.append(o)
        for tree in (index.fine, index.coarse):
            for group in _leaves(tree):
                index.runs[id(group)] = _run_classes(group)
        return index

    def runs_of(self, group: list[Offering]) -> tuple[tuple[Offering, int], ...]:
        """(the cheapest offering, how many) of each run class in ``group``."""
        found = self.runs.get(id(group))
        return found if found is not None else _run_classes(group)

    def __len__(self) -> int:
        return self.size

    def extend(self, extra: Iterable[Offering]) -> OfferingIndex:
        """This index plus a few more offerings (the local machine's, which change with
        every look) without rebuilding it: only the dicts and lists on their paths are
        copied, so the catalog's index is built once per price view."""
        added = list(extra)
        out = OfferingIndex(
            size=self.size + len(added),
            fine=dict(self.fine),
            coarse=dict(self.coarse),
            local_accelerated=list(self.local_accelerated),
            runs=self.runs,  # shared: a copied group has a new id, so runs_of works it out
        )
        fresh: set[int] = {id(out.fine), id(out.coarse)}

        def child(parent: dict[Any, Any], key: Any, leaf: bool = False) -> Any:
            node = parent.get(key)
            if node is None or id(node) not in fresh:
                node = (list if leaf else dict)(node or ())
                fresh.add(id(node))
                parent[key] = node
            return node

        for o in added:
            a = o.accelerators
            name, count = (a.name, a.count) if a is not None else (None, 0)
            fine = child(child(child(out.fine, name), count), o.vcpus)
            bisect.insort(child(fine, (o.cloud, o.region, o.market), True), o, key=_order)
            coarse = child(child(child(out.coarse, name), count), o.vcpus)
            bisect.insort(child(coarse, (o.cloud, o.market), True), o, key=_order)
            if a is not None and o.cloud == "local":
                bisect.insort(out.local_accelerated, o, key=_order)
        return out

    def counts_of(self, name: str) -> list[int]:
        return sorted(self.fine.get(name, {}))

    def for_job(self, filt: StaticFilter, *, by_region: bool = False) -> JobOfferings:
        """The offerings a job could use, cheapest per node first, with the groups it
        cannot use counted by the first stage they fail. A job without accelerators gets
        machines without them (a GPU bought for a CPU job is waste), and the local machine
        whatever it has: it is already paid for. ``by_region`` keeps each group within
        one region (for ordering by a per-region cost)."""
        chosen: list[list[Offering]] = [] if filt.options else [self.local_accelerated]
        out = JobOfferings(stream=iter(()), size=0)
        need: dict[str | None, int] = {}
        for option in filt.options:
            least = 1 if option.kind is AcceleratorKind.TPU else option.count
            need[option.name] = min(need.get(option.name, least), least)
        if not filt.options:
            need[None] = 0
        by_region = by_region or filt.regions is not None
        index = self.fine if by_region else self.coarse
        for name, least in need.items():
            for count, by_vcpus in index.get(name, {}).items():
                for vcpus, by_place in by_vcpus.items():
                    for place, group in by_place.items():
                        cloud, market = place[0], place[-1]
                        if count < least:
                            out.exclude(Stage.ACCELERATORS, group)
                        elif filt.cpus is not None and vcpus < filt.cpus:
                            out.exclude(Stage.CPUS, group)
                        elif filt.clouds is not None and cloud not in filt.clouds:
                            out.exclude(Stage.CLOUDS, group)
                        elif filt.regions is not None and place[1] not in filt.regions:
                            out.exclude(Stage.REGIONS, group)
                        elif filt.launchable is not None and cloud not in filt.launchable:
                            out.exclude(Stage.LAUNCHABLE, group)
                        elif not filt.market_allows(market):
                            out.exclude(Stage.MARKET, group)
                        else:
                            chosen.append(group)
        chosen = [g for g in chosen if g]
        out.groups = chosen
        out.size = sum(len(g) for g in chosen)
        if len(chosen) == 1:
            out.stream = iter(chosen[0])
        elif chosen:
            out.stream = heapq.merge(*chosen, key=_order)
        return out


@dataclass(slots=True)
class JobOfferings:
    stream: Iterator[Offering]  # cheapest per node first
    size: int
    groups: list[list[Offering]] = field(default_factory=list)  # each cheapest first
    excluded: dict[Stage, tuple[int, Offering]] = field(default_factory=dict)

    def exclude(self, stage: Stage, group: list[Offering]) -> None:
        """Count a whole group as failing ``stage``; keep its cheapest for the nearest miss."""
        count, cheapest = self.excluded.get(stage, (0, group[0]))
        if _order(group[0]) < _order(cheapest):
            cheapest = group[0]
        self.excluded[stage] = (count + len(group), cheapest)

    @property
    def excluded_count(self) -> int:
        return sum(n for n, _ in self.excluded.values())


def _order(o: Offering) -> tuple[float, str]:
    """Cheapest first, ties by pool: the same order whatever order offerings came in."""
    return (o.price_per_hour, o.pool)


def _leaves(tree: dict[Any, Any]) -> Iterator[list[Offering]]:
    for node in tree.values():
        if isinstance(node, list):
            yield node
        else:
            yield from _leaves(node)


def _run_classes(group: list[Offering]) -> tuple[tuple[Offering, int], ...]:
    first: dict[tuple[object, ...], Offering] = {}
    count: dict[tuple[object, ...], int] = {}
    for o in group:  # cheapest first, so each class keeps its cheapest
        kind = run_class(o)
        first.setdefault(kind, o)
        count[kind] = count.get(kind, 0) + 1
    return tuple((o, count[kind]) for kind, o in first.items())


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
        self.blocked_regions = ctx.blocked_regions
        self.blocked_why = ctx.blocked_why
        self.max_price = c.max_price_per_hour
        self.market = spec.market
        self.spot_used_up = (
            c.max_interruptions is not None and ctx.interruptions_so_far >= c.max_interruptions
        )
        self.max_interruptions = c.max_interruptions
        self.interruptions_so_far = ctx.interruptions_so_far

    @property
    def only_group_checks(self) -> bool:
        """Whether every check is one the index applies to whole groups, so an offering
        that reached the plan passes all of them."""
        return (
            self.gpu_memory is None
            and self.nodes == 1
            and self.memory is None
            and self.zones is None
            and not self.blocked
            and not self.blocked_regions
            and self.max_price is None
        )

    def market_allows(self, market: MarketKind) -> bool:
        if market is MarketKind.SPOT:
            return self.market is not Market.ON_DEMAND and not self.spot_used_up
        return self.market is not Market.SPOT

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
        if self.cpus is not None and o.vcpus < self.cpus:
            return Stage.CPUS
        if self.clouds is not None and o.cloud not in self.clouds:
            return Stage.CLOUDS
        if self.regions is not None and o.region not in self.regions:
            return Stage.REGIONS
        if self.launchable is not None and o.cloud not in self.launchable:
            return Stage.LAUNCHABLE
        if not self.market_allows(o.market):
            return Stage.MARKET
        if accelerator is not None and self.gpu_memory is not None:
            offered = o.accelerators
            if offered is not None and offered.memory_gb < self.gpu_memory:
                return Stage.GPU_MEMORY
        if o.max_nodes is not None and self.nodes > o.max_nodes:
            return Stage.NODES
        if self.memory is not None and o.memory_gb < self.memory:
            return Stage.MEMORY
        if self.zones is not None and o.zone not in self.zones:
            return Stage.ZONES
        if self.blocked and o.pool in self.blocked:
            return Stage.BLOCKED
        if self.blocked_regions and f"{o.cloud}/{o.region}" in self.blocked_regions:
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
            if o.pool in self.blocked:
                return f"pool {o.pool} is blocked: {self.blocked_why.get(o.pool, 'preempted')}"
            where = f"{o.cloud}/{o.region}"
            return f"region {where} is blocked: {self.blocked_why.get(where, 'refused')}"
        price = o.price_per_hour * self.nodes
        return f"${price:,.2f}/h > max_price_per_hour ${self.max_price or 0:,.2f}"
