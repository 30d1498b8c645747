"""Expected wall time of a job on spot capacity: checkpoint cadence, lost work, restarts.

Pure arithmetic, so every figure in a plan can be shown to the user and checked by hand.
For work ``W`` hours on a pool interrupted at rate ``lam`` per hour (MTBF ``M = 1/lam``),
a checkpoint that takes ``delta`` hours to write and a restart costing ``R`` hours
(provisioning, image, data staging):

- the checkpoint interval ``tau`` is Daly's (2006) higher-order optimum
  ``sqrt(2*delta*M) * (1 + sqrt(delta/(2M))/3 + (delta/(2M))/9) - delta`` while
  ``delta < 2M``, and ``M`` beyond; it refines Young's ``sqrt(2*delta*M)`` when ``delta``
  is not small next to ``M``;
- each interruption costs, on average, half an interval of lost work plus the restart;
- wall time solves ``wall = W*(1 + delta/tau) + lam*wall*(tau/2 + R)``, so
  ``wall = W*(1 + delta/tau) / (1 - lam*(tau/2 + R))``: infinite when interruptions come
  faster than the job can make progress;
- without checkpoints a job restarts from scratch: ``E[wall] = (M + R)*(exp(lam*W) - 1)``,
  the classic result for exponential failures.
"""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field

NEGLIGIBLE_RATE = 1e-12
"""Interruptions per hour below which a pool is treated as never interrupted: one in a
hundred million years is noise, and ``1/rate`` of a subnormal rate overflows to infinity."""


class SpotEstimate(BaseModel):
    """Why a spot placement is expected to take as long as it does, in numbers.

    Built with ``model_construct``: the figures are computed here, and a plan builds one
    per spot offering it costs, thousands per plan against a full catalog."""

    model_config = ConfigDict(frozen=True)

    work_hours: float = Field(description="Hours of useful work the job needs.")
    wall_hours: float = Field(description="Expected hours the placement is paid for.")
    interruptions: float = Field(default=0.0, description="Expected number of preemptions.")
    checkpoint_interval_hours: float | None = Field(
        default=None, description="Daly's interval; None without checkpoints."
    )
    checkpoint_hours: float = Field(default=0.0, description="Hours spent writing checkpoints.")
    lost_hours: float = Field(default=0.0, description="Work redone after preemptions.")
    restart_hours: float = Field(default=0.0, description="Hours spent restarting.")

    @property
    def feasible(self) -> bool:
        return math.isfinite(self.wall_hours)

    @property
    def overhead_hours(self) -> float:
        return self.wall_hours - self.work_hours


def young_interval(checkpoint_hours: float, mtbf_hours: float) -> float:
    """Young's first-order optimum: fine when a checkpoint is quick next to the MTBF."""
    return math.sqrt(2 * checkpoint_hours * mtbf_hours)


def daly_interval(checkpoint_hours: float, mtbf_hours: float) -> float:
    """Daly's higher-order optimum checkpoint interval (hours of work between checkpoints)."""
    delta, m = checkpoint_hours, mtbf_hours
    if delta <= 0:
        raise ValueError("a checkpoint interval needs a positive checkpoint time")
    if delta >= 2 * m:
        return m
    x = delta / (2 * m)
    return math.sqrt(2 * delta * m) * (1 + math.sqrt(x) / 3 + x / 9) - delta


def spot_estimate(
    work_hours: float,
    rate_per_hour: float,
    restart_hours: float,
    checkpoint_hours: float | None,
) -> SpotEstimate:
    """Expected wall time of ``work_hours`` on a pool preempted at ``rate_per_hour``.

    ``checkpoint_hours`` None means the job does not checkpoint and restarts from zero.
    """
    w, lam, r = work_hours, rate_per_hour, restart_hours
    if min(w, lam, r) < 0 or (checkpoint_hours is not None and checkpoint_hours < 0):
        raise ValueError("work, rate, restart and checkpoint times must not be negative")
    if lam < NEGLIGIBLE_RATE or w == 0:
        return SpotEstimate.model_construct(work_hours=w, wall_hours=w)
    m = 1 / lam
    if checkpoint_hours is None:
        return _from_scratch(w, lam, r)
    if checkpoint_hours == 0:  # free checkpoints: only the restarts cost anything
        denom = 1 - lam * r
        wall = w / denom if denom > 0 else math.inf
        n = lam * wall
        return SpotEstimate.model_construct(
            work_hours=w, wall_hours=wall, interruptions=n, restart_hours=n * r
        )
    delta = checkpoint_hours
    tau = daly_interval(delta, m)
    productive = w * (1 + delta / tau)
    denom = 1 - lam * (tau / 2 + r)
    if denom <= 0:
        return SpotEstimate.model_construct(
            work_hours=w,
            wall_hours=math.inf,
            interruptions=math.inf,
            checkpoint_interval_hours=tau,
            checkpoint_hours=w * delta / tau,
            lost_hours=math.inf,
            restart_hours=math.inf,
        )
    wall = productive / denom
    n = lam * wall
    return SpotEstimate.model_construct(
        work_hours=w,
        wall_hours=wall,
        interruptions=n,
        checkpoint_interval_hours=tau,
        checkpoint_hours=w * delta / tau,
        lost_hours=n * tau / 2,
        restart_hours=n * r,
    )


def _from_scratch(w: float, lam: float, r: float) -> SpotEstimate:
    """No checkpoints: every preemption throws away all the work done so far."""
    exponent = lam * w
    if exponent >= 700:  # exp overflows; the job never finishes in expectation
        inf = math.inf
        return SpotEstimate.model_construct(
            work_hours=w, wall_hours=inf, interruptions=inf, lost_hours=inf, restart_hours=inf
        )
    n = math.expm1(exponent)
    wall = (1 + lam * r) * (n / lam)
    return SpotEstimate.model_construct(
        work_hours=w,
        wall_hours=wall,
        interruptions=n,
        lost_hours=wall - w - n * r,
        restart_hours=n * r,
    )
