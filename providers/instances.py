"""Machines a provider launched: the request, what the cloud reports back, and the interface.

Launch is idempotent by construction: the request carries a key derived from the attempt
(EC2 ``ClientToken``, GCP ``requestId``), so a retried launch never makes a second machine.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from providers.offering import Offering


class InstanceState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    STOPPING = "stopping"
    TERMINATED = "terminated"
    PREEMPTED = "preempted"


class LaunchRequest(BaseModel):
    model_config = ConfigDict(frozen=True)

    offering: Offering
    count: int = Field(default=1, ge=1)
    idempotency_key: str = Field(
        min_length=1, max_length=64, description="Same key, same machines."
    )
    name: str = Field(min_length=1, description="Name prefix for the machines.")
    tags: dict[str, str] = Field(default_factory=dict)
    user_data: str | None = Field(default=None, description="Start-up script run on boot.")
    image: str | None = Field(default=None, description="AMI id, GCE image or TPU runtime version.")


class Instance(BaseModel):
    model_config = ConfigDict(frozen=True)

    cloud: str
    zone: str
    instance_id: str
    instance_type: str
    state: InstanceState
    spot: bool
    name: str = ""
    private_ip: str | None = None
    public_ip: str | None = None
    launched_at: datetime | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    interrupted: bool = Field(default=False, description="The cloud took it back.")
    detail: str = Field(default="", description="The cloud's own words for the state.")


class Compute(Protocol):
    """Launch, look at and stop machines on one cloud."""

    cloud: str

    def launch(self, request: LaunchRequest) -> list[Instance]: ...

    def describe(self, zone: str, instance_ids: Sequence[str]) -> list[Instance]: ...

    def terminate(self, zone: str, instance_ids: Sequence[str]) -> None: ...
