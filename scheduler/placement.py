"""Choosing where a job runs: hard limits first, then every survivor ranked by expected total cost.

Pure code: offerings, the spec, network prices and what the caller knows (time left,
blocked pools) in; a ranked plan out. Every stage keeps how many candidates it removed
and its nearest miss, so "no feasible placement" always names the constraint and the
numbers, and the winner comes with the sentence that says why it beat the runner-up.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, Field, computed_field

from jobs.accelerators import AcceleratorRequest
from jobs.spec import JobSpec
from providers.network import NetworkPrices, UnknownRegionError
from providers.offering import MarketKind, Offering
from scheduler.bound_queue import BoundQueue
from scheduler.constraints import OfferingIndex, PlanContext, Stage, StaticFilter
from scheduler.cost_model import (
    CommitmentCredit,
    CostParams,
    Estimate,
    JobFigures,
    NoCommitments,
    RunEstimator,
    credit_for,
)
from scheduler.data_gravity import DataCost, DataMove, DataPricer
from scheduler.preemption import SpotEstimate

_ROUNDING = 1 - 1e-9
"""Price x hours + data and the cost model's sum of parts can differ in the last bits; a
bound shaded by this much stays below every total it bounds, ties included."""

DEFAULT_KEEP = 20
"""Placements a plan keeps: the winner plus alternatives for failover after a preemption."""


class CostBreakdown(BaseModel):
    compute: float = Field(description="$/h x nodes x (work + boot hours).")
    preemption: float = Field(default=0.0, description="Spot: checkpoints, lost work, restarts.")
    egress: float = Field(default=0.0, description="Moving data to and from the placement.")
    credit: float = Field(default=0.0, description="Covered by commitments already paid for.")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def total(self) -> float:
        return self.compute + self.preemption + self.egress - self.credit


class Placement(BaseModel):
    offering: Offering
    accelerator: AcceleratorRequest | None
    num_nodes: int
    expected_hours: float = Field(description="Expected wall hours, boot and restarts included.")
    boot_hours: float = 0.0
    restart_hours: float = 0.0
    cost: CostBreakdown
    spot: SpotEstimate | None = None
    data_moves: list[DataMove] = Field(default_factory=list)

    @property
    def price_per_hour(self) -> float:
        return self.offering.price_per_hour * self.num_nodes

    @property
    def interruptions(self) -> float:
        return self.spot.interruptions if self.spot is not None else 0.0

    def describe(self) -> str:
        o = self.offering
        market = "spot" if o.market is MarketKind.SPOT else "on-demand"
        return f"{o.cloud} {o.zone} {o.shape} {market}"


class StageResult(BaseModel):
    """One constraint's effect: how many candidates it removed and the closest of them."""

    stage: Stage
    removed: int
    left: int
    nearest: str = Field(default="", description="The removed candidate closest to passing.")


class Plan(BaseModel):
    placements: list[Placement] = Field(
        description="Cheapest first, then alternatives in other pools."
    )
    feasible: int = Field(description="Candidates costed that met every constraint.")
    considered: int = Field(description="Offerings in the price book and on this machine.")
    skipped: int = Field(
        default=0,
        description="Offerings not costed: their price alone exceeds the totals of the"
        " placements kept, so none of them could rank among them.",
    )
    funnel: list[StageResult] = Field(default_factory=list)
    wanted: str = Field(default="", description="The accelerators asked for, for messages.")
    limits: dict[str, str] = Field(
        default_factory=dict, description="The spec's value of each constraint, for messages."
    )

    def why_none(self) -> str:
        """Which constraint removed the last candidates, and the nearest miss."""
        if self.considered == 0:
            return "no provider offers anything"
        last = next((s for s in self.funnel if s.left == 0), None)
        if last is None:
            return "no candidate is left"
        value = self.limits.get(last.stage.value)
        what = last.stage.value if value is None else f"{last.stage.value}={value}"
        message = f"nothing satisfies {what} for {self.wanted}"
        return f"{message}; {last.nearest}" if last.nearest else message

    def funnel_text(self) -> str:
        parts = [f"{self.considered:,} offerings"]
        parts += [f"{s.stage.value} -{s.removed:,}" for s in self.funnel]
        text = " | ".join(parts) + f" -> {self.feasible:,} feasible"
        if self.skipped:
            text += f" ({self.skipped:,} dearer offerings not costed)"
        return text


def _limits(spec: JobSpec, ctx: PlanContext) -> dict[str, str]:
    c, r = spec.constraints, spec.resources
    values: dict[str, object] = {
        "gpu_memory_gb": r.gpu_memory_gb,
        "num_nodes": r.num_nodes if r.num_nodes > 1 else None,
        "cpus": r.cpus,
        "memory_gb": r.memory_gb,
        "clouds": ",".join(c.clouds) if c.clouds else None,
        "regions": ",".join(c.regions) if c.regions else None,
        "zones": ",".join(c.zones) if c.zones else None,
        "market": spec.market.value,
        "max_price_per_hour": c.max_price_per_hour,
        "max_interruptions": c.max_interruptions,
        "deadline": None if ctx.hours_left is None else f"{ctx.hours_left:.2f}h from now",
        "max_total_cost": c.max_total_cost,
    }
    return {
        k: f"{v:g}" if isinstance(v, float) else str(v) for k, v in values.items() if v is not None
    }


@dataclass(slots=True)
class _Candidate:
    offering: Offering
    accelerator: AcceleratorRequest | None
    estimate: Estimate

    @property
    def total(self) -> float:
        return self.estimate.total

    def key(self) -> tuple[float, float, str]:
        return (self.estimate.total, self.offering.price_per_hour, self.offering.pool)


class _Stages:
    """Counts per stage and the nearest miss of each: the smallest figure, ties broken the
    way the ranking breaks them (price per hour, then pool), so the message names the
    placement the plan would have chosen. Messages are worded once, at the end."""

    def __init__(self) -> None:
        self.removed: dict[Stage, int] = {}
        self.nearest: dict[Stage, tuple[float, float, Offering | None, str]] = {}

    def reject(
        self,
        stage: Stage,
        figure: float,
        offering: Offering | None,
        text: str | Callable[[], str] | None,
        count: int = 1,
    ) -> None:
        """``text`` is the message (or what words it, called only if it is kept), '' to
        word it later from the offering and stage, or None to only count (a candidate
        known not to be the nearest miss)."""
        self.removed[stage] = self.removed.get(stage, 0) + count
        if text is None:
            return
        best = self.nearest.get(stage)
        price = offering.price_per_hour if offering is not None else 0.0
        if best is not None:
            if figure > best[0] or (figure == best[0] and price > best[1]):
                return
            tied = figure == best[0] and price == best[1]
            if tied and best[2] is not None and offering and offering.pool >= best[2].pool:
                return
        self.nearest[stage] = (figure, price, offering, text() if callable(text) else text)

    def funnel(self, considered: int, filt: StaticFilter, nodes: int) -> list[StageResult]:
        left = considered
        out: list[StageResult] = []
        for stage in Stage:
            n = self.removed.get(stage, 0)
            if not n:
                continue
            left -= n
            _, _, offering, text = self.nearest.get(stage, (0.0, 0.0, None, ""))
            if not text and offering is not None:
                text = (
                    f"the cheapest is ${offering.price_per_hour * nodes:,.2f}/h, {_where(offering)}"
                )
                if stage is not Stage.MAX_PRICE:
                    text += f" ({filt.reason(stage, offering)})"
            out.append(StageResult(stage=stage, removed=n, left=left, nearest=text))
        return out


class _WallChecks:
    """Spot progress, max_interruptions and the deadline need only a run's wall time, so
    each run key is judged once. Every offering failing one is counted there, and the
    nearest miss is the lowest figure, then price, then pool, whatever the reading order."""

    def __init__(
        self,
        stages: _Stages,
        estimate: RunEstimator,
        params: CostParams,
        nodes: int,
        allowed_interruptions: int | None,
        ctx: PlanContext,
    ) -> None:
        self.stages, self.estimate, self.params, self.nodes = stages, estimate, params, nodes
        self.allowed = allowed_interruptions
        self.hours_left = ctx.hours_left
        self._verdicts: dict[tuple[bool, float, float], tuple[Stage, float] | None] = {}

    def known_to_fail(self, key: tuple[bool, float, float]) -> bool:
        return self._verdicts.get(key) is not None

    def fails(
        self,
        o: Offering,
        key: tuple[bool, float, float],
        est: Estimate | None = None,
        count: int = 1,
    ) -> Stage | None:
        """The stage ``count`` offerings like ``o`` (same run key, none cheaper) fail."""
        if key in self._verdicts:
            verdict = self._verdicts[key]
        else:
            verdict = self._verdicts[key] = self._judge(o, est or self.estimate(o, key))
        if verdict is None:
            return None
        stage, figure = verdict
        self.stages.reject(stage, figure, o, lambda: self._text(stage, figure, o), count)
        return stage

    def _judge(self, o: Offering, est: Estimate) -> tuple[Stage, float] | None:
        spot = est.spot
        if spot is not None and not spot.feasible:
            return Stage.PROGRESS, o.interruption_rate
        if spot is not None and self.allowed is not None and spot.interruptions > self.allowed:
            return Stage.INTERRUPTIONS, spot.interruptions
        if self.hours_left is not None:
            finish = est.wall_hours
            if spot is not None:
                finish = est.wall_hours * (1 + self.params.deadline_margin) + est.restart_hours
            if finish > self.hours_left:
                return Stage.DEADLINE, finish
        return None

    def _text(self, stage: Stage, figure: float, o: Offering) -> str:
        if stage is Stage.PROGRESS:
            return (
                f"{_where(o)} is interrupted {figure * self.nodes:.2f} times/h,"
                " faster than the job can make progress"
            )
        if stage is Stage.INTERRUPTIONS:
            return f"the fewest expected is {figure:.2f} on {_where(o)} (allowed {self.allowed})"
        return (
            f"the soonest finish is {figure:,.2f} h on {_where(o)}, {self.hours_left:,.2f} h left"
        )


def _count_unread(
    group: list[Offering],
    start: int,
    index: OfferingIndex,
    filt: StaticFilter,
    walls: _WallChecks,
    stages: _Stages,
) -> None:
    """Count the unread part of a group whose every offering is over max_total_cost at
    the first stage each fails. A whole group passing every static check is counted per
    run class (its cheapest stands for the class), without reading it."""
    if start == 0 and filt.only_group_checks:
        for rep, n in index.runs_of(group):
            if walls.fails(rep, walls.estimate.key(rep), count=n) is None:
                stages.reject(Stage.MAX_TOTAL, math.inf, rep, None, n)
        return
    for o in group[start:]:
        fit = filt.check(o)
        if isinstance(fit, Stage):
            stages.reject(fit, o.price_per_hour, o, "")
        elif walls.fails(o, walls.estimate.key(o)) is None:
            stages.reject(Stage.MAX_TOTAL, math.inf, o, None)


def _where(o: Offering) -> str:
    market = "spot" if o.market is MarketKind.SPOT else "on-demand"
    return f"{o.cloud} {o.zone} {o.shape} {market}"


def job_figures(spec: JobSpec) -> JobFigures:
    ck = spec.checkpoint
    return JobFigures(
        work_hours=spec.estimated_hours,
        num_nodes=spec.resources.num_nodes,
        checkpoint_hours=None if ck is None else ck.write_seconds / 3600,
        checkpoint_gb=0.0 if ck is None else ck.size_gb,
    )


def plan(
    spec: JobSpec,
    offerings: Sequence[Offering] | OfferingIndex,
    network: NetworkPrices,
    *,
    ctx: PlanContext | None = None,
    params: CostParams | None = None,
    commitments: CommitmentCredit | None = None,
    keep: int = DEFAULT_KEEP,
) -> Plan:
    """Rank every feasible offering by expected total cost; keep the cheapest and
    ``keep - 1`` alternatives, preferring other regions, shapes and markets."""
    ctx = ctx or PlanContext()
    params = params or CostParams()
    commitments = commitments or NoCommitments()
    index = offerings if isinstance(offerings, OfferingIndex) else OfferingIndex.build(offerings)
    filt = StaticFilter(spec, ctx)
    job = job_figures(spec)
    pricer = DataPricer(
        spec.data, network, checkpoint=spec.checkpoint, restore_from=ctx.restore_from
    )
    estimate = RunEstimator(job, params)
    stages = _Stages()
    prune = keep > 0 and isinstance(commitments, NoCommitments)
    data_floor = prune and pricer.moves_anything
    offered = index.for_job(filt, by_region=data_floor)
    pool_size = offered.size

    def data_for(o: Offering, est: Estimate) -> DataCost:
        """Every data move of a run on o (UnknownRegionError where a route is unpriced)."""
        spot = est.spot
        writes = 0.0
        if spot is not None and spot.checkpoint_interval_hours:
            writes = job.work_hours / spot.checkpoint_interval_hours
        return pricer.price(
            o.cloud, o.region, checkpoint_writes=writes, migrations=est.interruptions
        )

    def group_floor(group: list[Offering]) -> tuple[float, float]:
        """(paid node-hours, data $) below which no run on the group goes: the least of
        each over the group's run classes, so price x hours + data bounds every total in
        it. A class where spot cannot progress bounds with the work and boot alone."""
        hours = data = math.inf
        for rep, _ in index.runs_of(group):
            est = estimate(rep)
            paid = estimate.paid_hours(rep)
            progresses = math.isfinite(paid)
            hours = min(
                hours, paid if progresses else job.num_nodes * (job.work_hours + est.boot_hours)
            )
            if data_floor and data > 0:
                try:
                    if progresses:
                        usd = data_for(rep, est).usd
                    else:
                        usd = pricer.price(
                            rep.cloud, rep.region, checkpoint_writes=0, migrations=0
                        ).usd
                except UnknownRegionError:
                    usd = 0.0
                data = min(data, usd)
        return hours, (data if data_floor else 0.0)

    boots = [*params.boot_hours.values(), params.tpu_boot_hours, params.other_boot_hours]
    least_hours = job.num_nodes * (job.work_hours + min(boots))
    io_floor: dict[tuple[str, str], float] = {}

    def cheap_floor(group: list[Offering]) -> tuple[float, float]:
        """Work and the quickest boot, and the region's data moves before any checkpoint
        traffic (later moves only climb the same tiers): one price per region."""
        if not data_floor:
            return least_hours, 0.0
        o = group[0]
        where = (o.cloud, o.region)
        usd = io_floor.get(where)
        if usd is None:
            try:
                usd = pricer.price(o.cloud, o.region, checkpoint_writes=0, migrations=0).usd
            except UnknownRegionError:
                usd = 0.0
            io_floor[where] = usd
        return least_hours, usd

    queue = BoundQueue(offered.groups, cheap_floor, group_floor) if prune else None
    pool = iter(queue) if queue is not None else ((0.0, o) for o in offered.stream)
    for stage, (count, cheapest) in offered.excluded.items():
        stages.reject(stage, cheapest.price_per_hour, cheapest, "", count)
    outside = len(index) - pool_size - offered.excluded_count
    if outside:
        stages.reject(Stage.ACCELERATORS, math.inf, None, _accelerator_miss(filt, index), outside)
    c = spec.constraints
    budget = c.max_total_cost
    allowed_interruptions = (
        None if c.max_interruptions is None else c.max_interruptions - ctx.interruptions_so_far
    )
    walls = _WallChecks(stages, estimate, params, job.num_nodes, allowed_interruptions, ctx)
    candidates: list[_Candidate] = []
    # A plan keeps the cheapest placement of each of the `keep` cheapest groups (see
    # diverse()), so once the bound exceeds the keep-th lowest group minimum, no later
    # offering can enter it: not costed.
    group_min: dict[tuple[str, str, str, MarketKind], float] = {}
    threshold = math.inf  # recomputed now and then: it only falls, so a stale one is safe
    since_threshold = 0
    budget_floor = budget if prune and budget is not None else math.inf
    examined = 0  # costed or ruled out; the rest were never looked at
    pruned = 0  # looked at, but dearer than the kept placements before data is priced
    for bound, o in pool:
        least = bound * _ROUNDING  # a bound summed another way than the total: a hair less
        if least > threshold:
            break
        examined += 1
        fit = filt.check(o)
        if isinstance(fit, Stage):
            stages.reject(fit, o.price_per_hour, o, "")
            if fit is Stage.MAX_PRICE and queue is not None:
                # The rest of its group is dearer: each fails here or at an earlier check.
                rest = queue.take_rest_of_last()
                examined += len(rest)
                for dearer in rest:
                    stage = filt.check(dearer)
                    assert isinstance(stage, Stage)
                    stages.reject(stage, dearer.price_per_hour, dearer, "")
            continue
        if least > budget_floor:
            # Its lower bound alone is over max_total_cost, so it fails there, and once it
            # is also over the nearest miss's total it cannot be the nearest.
            nearest = stages.nearest.get(Stage.MAX_TOTAL)
            if nearest is not None and least > nearest[0]:
                # So is every later one (the bounds only grow): count them all, in any
                # order, each at the first stage it fails.
                if walls.fails(o, estimate.key(o)) is None:
                    stages.reject(Stage.MAX_TOTAL, math.inf, o, None)
                assert queue is not None  # a budget floor is only set when pruning
                for group, start in queue.unread():
                    _count_unread(group, start, index, filt, walls, stages)
                examined = pool_size
                break
        run_key = estimate.key(o)
        if walls.known_to_fail(run_key):  # same wall time as one already ruled out
            walls.fails(o, run_key)
            continue
        est = estimate(o, run_key)
        if est.compute + est.preemption > threshold:
            pruned += 1
            continue
        if walls.fails(o, run_key, est) is not None:
            continue
        if pricer.moves_anything:
            try:
                data = data_for(o, est)
            except UnknownRegionError as exc:
                stages.reject(Stage.NETWORK, o.price_per_hour, o, f"{_where(o)}: {exc}")
                continue
            est.data = data
            est.egress = data.usd
        est.credit = credit_for(est, o, job.num_nodes, commitments)
        if budget is not None and est.total > budget:
            stages.reject(
                Stage.MAX_TOTAL,
                est.total,
                o,
                f"the cheapest is ${est.total:,.2f} on {_where(o)} (max_total_cost ${budget:,.2f})",
            )
            continue
        candidates.append(_Candidate(o, fit, est))
        if prune:
            group = (o.cloud, o.region, o.shape, o.market)
            if est.total < group_min.get(group, math.inf):
                group_min[group] = est.total
            since_threshold += 1
            due = since_threshold >= max(16, len(group_min) // 8)
            if len(group_min) >= keep and (threshold == math.inf or due):
                threshold = heapq.nsmallest(keep, group_min.values())[-1]
                since_threshold = 0
    candidates.sort(key=_Candidate.key)
    chosen = diverse(candidates, keep)
    return Plan(
        placements=[_placement(cand, job.num_nodes) for cand in chosen],
        feasible=len(candidates),
        considered=len(index),
        skipped=pool_size - examined + pruned,
        funnel=stages.funnel(len(index), filt, job.num_nodes),
        wanted=filt.wanted(),
        limits=_limits(spec, ctx),
    )


def _bounded(group: list[Offering], hours: float, data: float) -> Iterator[tuple[float, Offering]]:
    """The group's offerings with a lower bound of their totals, cheapest first."""
    return ((o.price_per_hour * hours + data, o) for o in group)


def _least(item: tuple[float, Offering]) -> float:
    return item[0]


def diverse(ranked: list[_Candidate], keep: int) -> list[_Candidate]:
    """The cheapest, then the cheapest of each other (cloud, region, shape, market), then
    the rest by cost: failover after a preemption should not land in the same capacity."""
    if keep <= 0 or not ranked:
        return []
    seen_pools: set[str] = set()
    seen_groups: set[tuple[str, str, str, str]] = set()
    first: list[_Candidate] = []
    rest: list[_Candidate] = []
    for cand in ranked:
        o = cand.offering
        if o.pool in seen_pools:
            continue  # the same pool twice (two sources): the cheaper one stands
        seen_pools.add(o.pool)
        group = (o.cloud, o.region, o.shape, o.market)
        if group in seen_groups:
            rest.append(cand)
        else:
            seen_groups.add(group)
            first.append(cand)
        if len(first) >= keep:
            break
    return (first + rest)[:keep]


def _placement(cand: _Candidate, nodes: int) -> Placement:
    e = cand.estimate
    return Placement(
        offering=cand.offering,
        accelerator=cand.accelerator,
        num_nodes=nodes,
        expected_hours=e.wall_hours,
        boot_hours=e.boot_hours,
        restart_hours=e.restart_hours,
        cost=CostBreakdown(
            compute=e.compute, preemption=e.preemption, egress=e.egress, credit=e.credit
        ),
        spot=e.spot,
        data_moves=list(e.data.moves),
    )


def _accelerator_miss(filt: StaticFilter, index: OfferingIndex) -> str:
    if not filt.options:
        return "every other offering has accelerators the job does not ask for"
    parts = []
    for option in filt.options:
        counts = index.counts_of(option.name)
        if not counts:
            parts.append(f"no offering has {option.name}")
        elif option.count > max(counts):
            parts.append(f"{option.name} comes {', '.join(map(str, counts))} per node")
    return "; ".join(parts)


def hours_until(deadline: datetime | None, now: datetime) -> float | None:
    if deadline is None:
        return None
    return (deadline - now).total_seconds() / 3600
