"""Decisions about cloud Ray clusters, without I/O: reuse, idle stop, orphans, loss.

A warm cluster (up, idle, the placement's exact shape) saves the boot time a new one
would be billed for, so a plan's second choice can beat its first when only the second
has a warm cluster waiting; the saving is priced, never assumed.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from string import Formatter
from typing import Any

from providers.instances import Instance, InstanceState
from scheduler.placement import Placement
from scheduler.records import ClusterRecord, ClusterState

CLUSTER_TAG = "sched:cluster"
ROLE_TAG = "sched:role"


def cluster_name(job_uid: str, attempt_number: int) -> str:
    """Derived from the attempt, so a controller that dies mid-launch makes the same
    cluster again (the launch keys stem from it) instead of a second one."""
    return f"sched-{job_uid}-{attempt_number}"


def shape_of(placement: Placement) -> dict[str, Any]:
    o = placement.offering
    return {
        "cloud": o.cloud,
        "zone": o.zone,
        "instance_type": o.instance_type,
        "market": str(o.market),
        "num_nodes": placement.num_nodes,
    }


def shape_of_cluster(c: ClusterRecord) -> dict[str, Any]:
    return {
        "cloud": c.cloud,
        "zone": c.zone,
        "instance_type": c.instance_type,
        "market": c.market,
        "num_nodes": c.num_nodes,
    }


@dataclass(frozen=True, slots=True)
class Choice:
    placement: Placement
    warm: bool
    saving: float  # USD of boot time not paid thanks to the warm cluster
    expected: float  # the placement's expected total after the saving


def warm_saving(placement: Placement) -> float:
    return placement.price_per_hour * placement.boot_hours


def choose(placements: Sequence[Placement], idle: Sequence[ClusterRecord]) -> Choice:
    """The cheapest placement once warm clusters' boot savings are counted. Ties keep
    the plan's order (a new cluster is not worse than a warm one at the same price)."""
    if not placements:
        raise ValueError("no placements to choose from")
    warm_shapes = [shape_of_cluster(c) for c in idle if c.state == ClusterState.UP]
    best: Choice | None = None
    for p in placements:
        warm = shape_of(p) in warm_shapes
        saving = warm_saving(p) if warm else 0.0
        choice = Choice(p, warm, saving, p.cost.total - saving)
        if best is None or choice.expected < best.expected - 1e-9:
            best = choice
    assert best is not None
    return best


def warm_for(placement: Placement, idle: Sequence[ClusterRecord]) -> ClusterRecord:
    """The warm cluster ``choose`` counted for this placement (the first of its shape)."""
    shape = shape_of(placement)
    return next(c for c in idle if c.state == ClusterState.UP and shape_of_cluster(c) == shape)


def idle_expired(
    clusters: Sequence[ClusterRecord], now: datetime, idle_stop_s: float
) -> list[ClusterRecord]:
    """UP clusters nobody holds, idle for longer than the setting."""
    return [
        c
        for c in clusters
        if c.state == ClusterState.UP
        and c.attempt_id is None
        and (now - c.last_used_at).total_seconds() >= idle_stop_s
    ]


def orphans(instances: Sequence[Instance], live_names: Collection[str]) -> list[Instance]:
    """Machines tagged by sched that no live cluster claims and that still bill."""
    return [
        i
        for i in instances
        if CLUSTER_TAG in i.tags
        and i.tags[CLUSTER_TAG] not in live_names
        and i.state in (InstanceState.PENDING, InstanceState.RUNNING)
    ]


def lost(instances: Sequence[Instance], expected_ids: Sequence[str]) -> str | None:
    """Why the cluster can no longer run its job, or None while every machine is up."""
    by_id = {i.instance_id: i for i in instances}
    for instance_id in expected_ids:
        found = by_id.get(instance_id)
        if found is None:
            return f"{instance_id} is gone"
        if found.interrupted or found.state is InstanceState.PREEMPTED:
            return f"{instance_id} preempted: {found.detail}"
        if found.state in (InstanceState.STOPPING, InstanceState.TERMINATED):
            return f"{instance_id} {found.state}: {found.detail}"
    return None


def head_address(template: str, head: Instance, port: int) -> str | None:
    """The head's Jobs API address; None until the machine has the address it needs."""
    ip = head.public_ip or head.private_ip
    needs = {f for _, f, _, _ in Formatter().parse(template) if f}
    values = {"ip": ip, "public_ip": head.public_ip, "private_ip": head.private_ip}
    if any(values.get(f) is None for f in needs if f != "port"):
        return None
    return template.format(port=port, **values).rstrip("/")
