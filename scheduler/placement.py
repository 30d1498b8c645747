"""Choosing where a job runs: filter offerings by the spec's hard limits, then rank by cost.

Pure code: offerings, the spec and ``now`` in, a ranked plan with reasons out. Every
offering that is turned down keeps the reason, so "no feasible placement" always
comes with the numbers behind it.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from jobs.accelerators import AcceleratorKind, AcceleratorRequest
from jobs.spec import JobSpec, Market
from providers.offering import MarketKind, Offering


class CostBreakdown(BaseModel):
    compute: float = Field(description="$/h x expected wall hours.")
    preemption: float = Field(default=0.0, description="Expected cost of lost work and restarts.")
    egress: float = Field(default=0.0, description="Moving data to where the job runs.")
    credit: float = Field(default=0.0, description="Covered by commitments already paid for.")

    @property
    def total(self) -> float:
        return self.compute + self.preemption + self.egress - self.credit


class Placement(BaseModel):
    offering: Offering
    accelerator: AcceleratorRequest | None
    num_nodes: int
    expected_hours: float
    cost: CostBreakdown

    @property
    def price_per_hour(self) -> float:
        return self.offering.price_per_hour * self.num_nodes

    def describe(self) -> str:
        o = self.offering
        return f"{o.cloud} {o.zone} {o.instance_type} {o.market}"


class Rejection(BaseModel):
    offering: Offering
    reason: str


class Plan(BaseModel):
    placements: list[Placement]
    rejected: list[Rejection]

    def why_none(self) -> str:
        if not self.rejected:
            return "no provider offers anything"
        reasons: dict[str, int] = {}
        for r in self.rejected:
            reasons[r.reason] = reasons.get(r.reason, 0) + 1
        return "; ".join(
            f"{reason} ({n} offering{'s' * (n > 1)})" for reason, n in sorted(reasons.items())
        )


def _accelerator_fit(spec: JobSpec, offering: Offering) -> tuple[AcceleratorRequest | None, str]:
    options = spec.accelerator_options
    if not options:
        return None, ""
    offered = offering.accelerators
    if offered is None:
        wanted = " or ".join(str(o) for o in options)
        return None, f"no accelerators here (job needs {wanted})"
    for option in options:
        if option.name != offered.name:
            continue
        if option.kind is AcceleratorKind.GPU and offered.count < option.count:
            continue
        min_mem = spec.resources.gpu_memory_gb
        if min_mem is not None and offered.memory_gb < min_mem:
            return None, f"{offered.name} has {offered.memory_gb:g} GB per device < {min_mem:g} GB"
        return option, ""
    wanted = " or ".join(str(o) for o in options)
    return None, f"offers {offered.name}:{offered.count}, job needs {wanted}"


def _filter(spec: JobSpec, offering: Offering) -> tuple[AcceleratorRequest | None, str]:
    c = spec.constraints
    r = spec.resources
    if c.clouds is not None and offering.cloud not in c.clouds:
        return None, f"cloud {offering.cloud} not in allowed clouds"
    if c.regions is not None and offering.region not in c.regions:
        return None, f"region {offering.region} not allowed"
    if c.zones is not None and offering.zone not in c.zones:
        return None, f"zone {offering.zone} not allowed"
    if spec.market is Market.SPOT and offering.market is not MarketKind.SPOT:
        return None, "job asks for spot"
    if spec.market is Market.ON_DEMAND and offering.market is not MarketKind.ON_DEMAND:
        return None, "job asks for on-demand"
    if offering.max_nodes is not None and r.num_nodes > offering.max_nodes:
        return None, f"{r.num_nodes} nodes needed, {offering.max_nodes} available"
    accelerator, why = _accelerator_fit(spec, offering)
    if why:
        return None, why
    if r.cpus is not None and offering.vcpus < r.cpus:
        return None, f"{offering.vcpus:g} vCPUs < {r.cpus:g} needed"
    if r.memory_gb is not None and offering.memory_gb < r.memory_gb:
        return None, f"{offering.memory_gb:g} GB RAM < {r.memory_gb:g} GB needed"
    price = offering.price_per_hour * r.num_nodes
    if c.max_price_per_hour is not None and price > c.max_price_per_hour:
        return None, f"${price:.2f}/h > max_price_per_hour ${c.max_price_per_hour:.2f}"
    return accelerator, ""


def plan(spec: JobSpec, offerings: list[Offering], *, deadline_hours: float | None) -> Plan:
    """Rank every feasible offering by expected total cost, cheapest first.

    ``deadline_hours`` is the time left until the job's deadline, computed by the
    caller from its clock, so this function needs none.
    """
    placements: list[Placement] = []
    rejected: list[Rejection] = []
    nodes = spec.resources.num_nodes
    for offering in offerings:
        accelerator, why = _filter(spec, offering)
        if why:
            rejected.append(Rejection(offering=offering, reason=why))
            continue
        hours = spec.estimated_hours
        cost = CostBreakdown(compute=offering.price_per_hour * nodes * hours)
        if deadline_hours is not None and hours > deadline_hours:
            rejected.append(
                Rejection(
                    offering=offering,
                    reason=f"expected {hours:.2f} h > {deadline_hours:.2f} h to the deadline",
                )
            )
            continue
        max_total = spec.constraints.max_total_cost
        if max_total is not None and cost.total > max_total:
            rejected.append(
                Rejection(
                    offering=offering,
                    reason=f"expected ${cost.total:.2f} > max_total_cost ${max_total:.2f}",
                )
            )
            continue
        placements.append(
            Placement(
                offering=offering,
                accelerator=accelerator,
                num_nodes=nodes,
                expected_hours=hours,
                cost=cost,
            )
        )
    placements.sort(key=lambda p: (p.cost.total, p.price_per_hour, p.offering.pool))
    return Plan(placements=placements, rejected=rejected)


def hours_until(deadline: datetime | None, now: datetime) -> float | None:
    if deadline is None:
        return None
    return (deadline - now).total_seconds() / 3600
