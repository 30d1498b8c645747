"""The audit of cloud accounts: which running machines break the tagging rule, which sit
idle, and what each costs an hour. Pure: instances with their metric peaks in, findings out.

The providers (``providers.aws_audit``, ``providers.gcp_audit``) read the clouds; this
module only decides, so every rule here can be tested with hand-made instances and the
same rules apply to every cloud.

Idle is judged on peaks, not averages: one busy hour in the window means somebody used
the machine, and an average would hide a nightly job. It is also judged only on evidence:
a machine with no metrics, or with fewer hours of metrics than the setting, is *not* idle,
because "cannot tell" must never be the reason a machine gets stopped.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from providers.instances import Instance, InstanceState
from scheduler.tags import missing_tags

# (cloud, zone, instance type, spot) -> $/h, or None when the price is unknown.
PriceLookup = Callable[[str, str, str, bool], float | None]

StopAction = Literal["stop", "terminate", "skip"]

# Only these bill for compute; a stopped machine costs its disks, which stopping cannot save.
BILLING_STATES = frozenset({InstanceState.PENDING, InstanceState.RUNNING})


class AuditedInstance(BaseModel):
    """A machine as the audit sees it: where it is, how it is tagged, what it costs, and
    the peaks of its utilization over the window the provider read."""

    model_config = ConfigDict(frozen=True)

    cloud: str
    region: str
    zone: str
    instance_id: str
    instance_type: str
    state: InstanceState
    spot: bool = False
    name: str = ""
    tags: dict[str, str] = Field(default_factory=dict)
    launched_at: datetime | None = None
    hourly_usd: float | None = Field(default=None, ge=0, description="None: price unknown.")
    peak_cpu_percent: float | None = Field(
        default=None, ge=0, description="Highest hourly CPU maximum in the window; None: no data."
    )
    peak_gpu_percent: float | None = Field(
        default=None, ge=0, description="Highest hourly GPU maximum; None: not published."
    )
    metric_hours: float = Field(
        default=0.0, ge=0, description="Hours in the window with CPU data (hourly buckets)."
    )

    @classmethod
    def of(
        cls,
        inst: Instance,
        *,
        region: str,
        price: PriceLookup,
        cpu_peak: float | None,
        gpu_peak: float | None,
        metric_hours: float,
        tags: Mapping[str, str] | None = None,
    ) -> AuditedInstance:
        """A machine the provider described, with its metric peaks over the window."""
        return cls(
            cloud=inst.cloud,
            region=region,
            zone=inst.zone,
            instance_id=inst.instance_id,
            instance_type=inst.instance_type,
            state=inst.state,
            spot=inst.spot,
            name=inst.name,
            tags=dict(inst.tags if tags is None else tags),
            launched_at=inst.launched_at,
            hourly_usd=price(inst.cloud, inst.zone, inst.instance_type, inst.spot),
            peak_cpu_percent=cpu_peak,
            peak_gpu_percent=gpu_peak,
            metric_hours=metric_hours,
        )


class Finding(BaseModel):
    """Why one machine is reported; ``reasons`` are sentences a person can act on."""

    model_config = ConfigDict(frozen=True)

    instance: AuditedInstance
    missing_tags: list[str] = Field(default_factory=list)
    idle_hours: float | None = Field(default=None, description="None: not shown to be idle.")
    kept: bool = Field(default=False, description="Carries the keep tag: never stopped.")
    reasons: list[str] = Field(default_factory=list)

    @property
    def idle(self) -> bool:
        return self.idle_hours is not None


class StopResult(BaseModel):
    """What ``stop`` did to one machine; a failure is reported, not raised, so one machine
    the account may not touch does not leave the rest running."""

    model_config = ConfigDict(frozen=True)

    cloud: str
    zone: str
    instance_id: str
    action: StopAction
    error: str | None = None


def metric_window_hours(idle_after_hours: float) -> int:
    """How far back providers read metrics: the setting in whole hours plus one, because the
    newest hour is often not published yet and would otherwise leave every machine an hour
    short of the setting, so never idle."""
    if idle_after_hours <= 0:
        raise ValueError(f"idle_after_hours must be positive, got {idle_after_hours}")
    return math.ceil(idle_after_hours) + 1


def idle_hours(
    instance: AuditedInstance,
    idle_after_hours: float,
    cpu_idle_percent: float = 5.0,
    gpu_idle_percent: float = 5.0,
) -> float | None:
    """Hours the metrics show no work, or None when they do not show the machine idle for
    at least ``idle_after_hours``. A missing GPU metric does not block the verdict (most
    machines have no GPU, and the agent that publishes it is optional); a GPU that
    reports work does."""
    cpu = instance.peak_cpu_percent
    if cpu is None or instance.metric_hours < idle_after_hours or cpu >= cpu_idle_percent:
        return None
    gpu = instance.peak_gpu_percent
    if gpu is not None and gpu >= gpu_idle_percent:
        return None
    return instance.metric_hours


def _tags_reason(missing: Sequence[str]) -> str:
    noun = "tag" if len(missing) == 1 else "tags"
    return f"no {', '.join(missing)} {noun}"


def _idle_reason(
    instance: AuditedInstance, hours: float, cpu_idle_percent: float, gpu_idle_percent: float
) -> str:
    cpu = f"CPU peak {instance.peak_cpu_percent:.1f}% (< {cpu_idle_percent:g}%)"
    gpu = (
        "GPU not measured"
        if instance.peak_gpu_percent is None
        else f"GPU peak {instance.peak_gpu_percent:.1f}% (< {gpu_idle_percent:g}%)"
    )
    return f"idle {hours:.1f} h: {cpu}, {gpu}"


def _check(
    instance: AuditedInstance,
    required_tags: Sequence[str],
    idle_after_hours: float,
    keep_tag: str,
    cpu_idle_percent: float,
    gpu_idle_percent: float,
) -> Finding | None:
    missing = missing_tags(instance.tags, required_tags)
    idle = idle_hours(instance, idle_after_hours, cpu_idle_percent, gpu_idle_percent)
    if not missing and idle is None:
        return None
    reasons = [_tags_reason(missing)] if missing else []
    if idle is not None:
        reasons.append(_idle_reason(instance, idle, cpu_idle_percent, gpu_idle_percent))
    # Presence, whatever the value: someone asked for this machine to be left alone, and a
    # value we misread must not be the reason it is stopped.
    kept = keep_tag in instance.tags
    if kept:
        reasons.append(f"tagged {keep_tag}: reported, never stopped")
    return Finding(
        instance=instance, missing_tags=missing, idle_hours=idle, kept=kept, reasons=reasons
    )


def _cost_order(finding: Finding) -> tuple[bool, float, str, str, str]:
    inst = finding.instance
    unknown = inst.hourly_usd is None
    return (unknown, -(inst.hourly_usd or 0.0), inst.cloud, inst.zone, inst.instance_id)


def audit(
    instances: Iterable[AuditedInstance],
    required_tags: Sequence[str],
    idle_after_hours: float,
    keep_tag: str,
    cpu_idle_percent: float = 5.0,
    gpu_idle_percent: float = 5.0,
) -> list[Finding]:
    """Machines that lack a required tag or sit idle, dearest first (unknown prices last,
    since a person reading the list should meet the biggest savings first)."""
    if idle_after_hours <= 0:
        raise ValueError(f"idle_after_hours must be positive, got {idle_after_hours}")
    for name, value in (("cpu", cpu_idle_percent), ("gpu", gpu_idle_percent)):
        if not 0 < value <= 100:
            raise ValueError(f"{name}_idle_percent must be in (0, 100], got {value}")
    findings = [
        _check(i, required_tags, idle_after_hours, keep_tag, cpu_idle_percent, gpu_idle_percent)
        for i in instances
        if i.state in BILLING_STATES
    ]
    return sorted((f for f in findings if f is not None), key=_cost_order)


def to_stop(findings: Iterable[Finding], *, idle_only: bool = False) -> list[Finding]:
    """The findings ``--stop`` may act on: never a kept one. ``idle_only`` leaves busy but
    untagged machines running, for accounts that want tags fixed rather than work lost."""
    return [f for f in findings if not f.kept and (f.idle or not idle_only)]
