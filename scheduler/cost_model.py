"""Expected total cost of one job on one offering: compute, preemption, data, commitments.

Pure arithmetic over an offering, the job's figures and the parameters below. Each part
is kept apart so a plan can show where the money goes:

- **compute**: $/h x nodes x (work + boot). Boot is getting a Ray node up (provisioning,
  image, Ray start), paid on every placement.
- **preemption**: $/h x nodes x the extra wall hours spot costs (checkpoint writes, work
  redone, restarts; see scheduler/preemption.py). A cluster of N nodes is interrupted N
  times as often as one node: losing any node stops the job.
- **egress**: every data move this placement causes (scheduler/data_gravity.py).
- **credit**: the part of the compute already paid for by a commitment with headroom.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from providers.offering import MarketKind, Offering
from scheduler.data_gravity import NO_DATA, DataCost
from scheduler.preemption import SpotEstimate, spot_estimate


class CostParams(BaseModel):
    """Assumptions the model needs that no price feed gives; each is shown in plans."""

    model_config = ConfigDict(frozen=True)

    boot_hours: dict[str, float] = Field(
        default_factory=lambda: {"local": 0.005, "aws": 0.12, "gcp": 0.1},
        description="Hours from launch to a running Ray node, per cloud (GPU VMs boot in"
        " 5-8 minutes with a deep-learning image).",
    )
    tpu_boot_hours: float = Field(default=0.2, description="TPU slices take longer to create.")
    other_boot_hours: float = Field(default=0.15, description="Boot time for any other cloud.")
    restore_gb_per_hour: float = Field(
        default=1800.0, description="Checkpoint read speed on restart (0.5 GB/s)."
    )
    deadline_margin: float = Field(
        default=0.1,
        ge=0,
        description="Spot must finish this fraction of its expected wall time, plus one more"
        " restart, before the deadline.",
    )

    def boot(self, offering: Offering) -> float:
        if _is_tpu(offering):
            return self.tpu_boot_hours
        return self.boot_hours.get(offering.cloud, self.other_boot_hours)

    def restart(self, offering: Offering, checkpoint_gb: float) -> float:
        """A restart is a new boot plus reading the last checkpoint back."""
        return self.boot(offering) + checkpoint_gb / self.restore_gb_per_hour


def _is_tpu(offering: Offering) -> bool:
    return offering.instance_type.startswith("tpu-")


def run_class(offering: Offering) -> tuple[object, ...]:
    """Everything of an offering its wall time depends on (RunEstimator.key, with what
    CostParams.boot reads): offerings alike in these take equally long for any job."""
    spot = offering.market is MarketKind.SPOT
    return (spot, offering.interruption_rate if spot else 0.0, offering.cloud, _is_tpu(offering))


class CommitmentCredit(Protocol):
    """What commitments (Savings Plans, CUDs) already pay for; the commitments work fills it."""

    def covered_per_hour(self, offering: Offering, num_nodes: int) -> float:
        """$/h of this placement's price that unused commitment headroom covers."""
        ...


class NoCommitments:
    def covered_per_hour(self, offering: Offering, num_nodes: int) -> float:
        return 0.0


@dataclass(frozen=True, slots=True)
class JobFigures:
    """What the cost model needs of a job spec, read once per plan."""

    work_hours: float
    num_nodes: int = 1
    checkpoint_hours: float | None = None  # time to write one; None: the job cannot resume
    checkpoint_gb: float = 0.0


@dataclass(slots=True)
class Estimate:
    """The expected cost of one placement, in parts, with the figures behind them."""

    wall_hours: float
    boot_hours: float
    restart_hours: float
    compute: float
    preemption: float = 0.0
    egress: float = 0.0
    credit: float = 0.0
    spot: SpotEstimate | None = None
    data: DataCost = NO_DATA

    @property
    def total(self) -> float:
        return self.compute + self.preemption + self.egress - self.credit

    @property
    def interruptions(self) -> float:
        return self.spot.interruptions if self.spot is not None else 0.0


def run_estimate(offering: Offering, job: JobFigures, params: CostParams) -> Estimate:
    """Wall time and compute/preemption dollars; data and credit are added by the caller."""
    return RunEstimator(job, params)(offering)


class RunEstimator:
    """:func:`run_estimate` for many offerings of one job. Wall time depends only on the
    market, the interruption rate and the boot time, which a catalog's thousands of
    offerings share a few dozen values of, so it is worked out once per value."""

    def __init__(self, job: JobFigures, params: CostParams) -> None:
        self.job = job
        self.params = params
        self._runs: dict[tuple[bool, float, float], tuple[float, float, SpotEstimate | None]] = {}

    def key(self, offering: Offering) -> tuple[bool, float, float]:
        """What the wall time depends on: offerings with the same key take as long."""
        spot = offering.market is MarketKind.SPOT
        return (spot, offering.interruption_rate if spot else 0.0, self.params.boot(offering))

    def _run(
        self, offering: Offering, key: tuple[bool, float, float]
    ) -> tuple[float, float, SpotEstimate | None]:
        run = self._runs.get(key)
        if run is None:
            job = self.job
            spot, _, boot = key
            restart = self.params.restart(offering, job.checkpoint_gb)
            estimate = None
            if spot:
                rate = offering.interruption_rate * job.num_nodes
                estimate = spot_estimate(job.work_hours, rate, restart, job.checkpoint_hours)
            run = self._runs[key] = (boot, restart, estimate)
        return run

    def paid_hours(self, offering: Offering) -> float:
        """Node-hours paid for per $/h of the offering's price (compute + preemption is
        price x this); infinite where spot cannot make progress."""
        boot, _, estimate = self._run(offering, self.key(offering))
        extra = estimate.overhead_hours if estimate is not None else 0.0
        return self.job.num_nodes * (self.job.work_hours + boot + extra)

    def __call__(
        self, offering: Offering, key: tuple[bool, float, float] | None = None
    ) -> Estimate:
        job = self.job
        boot, restart, estimate = self._run(offering, key or self.key(offering))
        price = offering.price_per_hour * job.num_nodes
        w = job.work_hours
        if estimate is None:
            return Estimate(w + boot, boot, restart, price * (w + boot))
        return Estimate(
            estimate.wall_hours + boot,
            boot,
            restart,
            price * (w + boot),
            price * estimate.overhead_hours,
            spot=estimate,
        )


def credit_for(
    estimate: Estimate, offering: Offering, num_nodes: int, commitments: CommitmentCredit
) -> float:
    """Covered $/h x wall hours, never more than the compute and preemption it offsets."""
    covered = commitments.covered_per_hour(offering, num_nodes)
    if covered <= 0:
        return 0.0
    covered = min(covered, offering.price_per_hour * num_nodes)
    return min(covered * estimate.wall_hours, estimate.compute + estimate.preemption)
