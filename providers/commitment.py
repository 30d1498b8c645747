"""Commitments a cloud account has bought: AWS Savings Plans and GCP CUDs, as data.

Declared in a file (configs/commitments.yaml) or read from the clouds' APIs; what they
cover and how much of them is used is worked out in scheduler/commitments.py.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class CommitmentKind(StrEnum):
    AWS_COMPUTE_SP = "aws_compute_savings_plan"
    AWS_EC2_INSTANCE_SP = "aws_ec2_instance_savings_plan"
    GCP_SPEND_CUD = "gcp_spend_cud"
    GCP_RESOURCE_CUD = "gcp_resource_cud"

    @property
    def cloud(self) -> str:
        return self.value.split("_", 1)[0]


class Commitment(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1, description="The plan or commitment id (or a name of yours).")
    kind: CommitmentKind
    hourly_commitment: float = Field(gt=0, description="$/h paid whether used or not.")
    discount: float = Field(gt=0, lt=1, description="Off on-demand for covered usage (0.6 = 60%).")
    regions: list[str] = Field(
        default_factory=list, description="Regions it applies in; empty means every region."
    )
    family: str | None = Field(
        default=None,
        description="Instance family (p4d, a2) or accelerator (A100) it is limited to.",
    )
    start: datetime
    end: datetime
    source: str = Field(default="config", description="config, or the API it was read from.")

    @field_validator("start", "end")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        """A date or a time without a zone is UTC, which is what both clouds bill in."""
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    @model_validator(mode="after")
    def _scoped(self) -> Commitment:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        if self.kind is CommitmentKind.AWS_EC2_INSTANCE_SP and (
            not self.family or len(self.regions) != 1
        ):
            raise ValueError("an EC2 Instance Savings Plan needs one region and a family")
        if self.kind is CommitmentKind.GCP_RESOURCE_CUD and len(self.regions) != 1:
            raise ValueError("a resource-based CUD needs one region")
        return self

    @property
    def cloud(self) -> str:
        return self.kind.cloud

    @property
    def capacity(self) -> float:
        """On-demand $/h of usage it can cover."""
        return self.hourly_commitment / (1 - self.discount)

    def active(self, at: datetime) -> bool:
        return self.start <= at < self.end

    @property
    def specificity(self) -> int:
        return (2 if self.family else 0) + (1 if self.regions else 0)
