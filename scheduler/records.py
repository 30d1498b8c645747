"""Database tables: jobs, their attempts, and the append-only log of state changes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import DateTime, TypeDecorator
from sqlmodel import Field, SQLModel


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC, returns aware datetimes: SQLite would otherwise hand back naive ones."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class JobRecord(SQLModel, table=True):
    __tablename__ = "job"

    id: int | None = Field(default=None, primary_key=True)
    uid: str = Field(
        default_factory=lambda: uuid.uuid4().hex[:10],
        unique=True,
        description="Globally unique: names the job on clusters other databases share.",
    )
    name: str = Field(index=True)
    state: str = Field(index=True)
    priority: str
    spec_json: str = Field(description="The validated JobSpec as JSON.")
    tags_json: str = "{}"
    submitted_at: datetime = Field(sa_type=UTCDateTime, index=True)
    updated_at: datetime = Field(sa_type=UTCDateTime)
    deadline_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    cancel_requested: bool = False
    interruptions: int = 0
    exit_code: int | None = None
    message: str | None = None
    cost: float = 0.0
    current_attempt_id: int | None = None
    lease_owner: str | None = Field(
        default=None, description="The process advancing this job now (Store.lease)."
    )
    lease_until: datetime | None = Field(default=None, sa_type=UTCDateTime)


class AttemptRecord(SQLModel, table=True):
    __tablename__ = "attempt"

    id: int | None = Field(default=None, primary_key=True)
    job_id: int = Field(foreign_key="job.id", index=True)
    number: int
    state: str = Field(index=True)
    cloud: str
    region: str
    zone: str
    instance_type: str
    market: str
    price_per_hour: float
    num_nodes: int = 1
    placement_json: str = Field(default="{}", description="The placement and its cost breakdown.")
    cluster_address: str | None = None
    submission_id: str = Field(unique=True)
    created_at: datetime = Field(sa_type=UTCDateTime)
    started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    exit_code: int | None = None
    message: str | None = None
    cost: float = 0.0


class EventRecord(SQLModel, table=True):
    """One row per state transition; never updated or deleted."""

    __tablename__ = "event"

    id: int | None = Field(default=None, primary_key=True)
    job_id: int = Field(foreign_key="job.id", index=True)
    attempt_id: int | None = None
    from_state: str | None = None
    to_state: str
    at: datetime = Field(sa_type=UTCDateTime)
    reason: str = ""


class ClusterState(StrEnum):
    LAUNCHING = "LAUNCHING"
    UP = "UP"
    TERMINATED = "TERMINATED"


class ClusterRecord(SQLModel, table=True):
    """A Ray cluster sched brought up on cloud machines, held by at most one attempt.

    ``attempt_id`` is the attempt using it; None means idle (warm, reusable, and stopped
    once idle longer than the setting)."""

    __tablename__ = "cluster"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, description="Also the launch idempotency key's stem.")
    cloud: str
    region: str
    zone: str
    instance_type: str
    market: str
    num_nodes: int
    price_per_hour: float = Field(description="Per node, when launched.")
    image: str | None = None
    state: str = Field(index=True)
    attempt_id: int | None = Field(default=None, index=True)
    head_address: str | None = None
    instances_json: str = Field(default="[]", description="Instance ids, head first.")
    created_at: datetime = Field(sa_type=UTCDateTime)
    up_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_used_at: datetime = Field(sa_type=UTCDateTime)
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    end_reason: str | None = None


class LedgerRecord(SQLModel, table=True):
    """What one attempt cost, settled when it ended: compute (price x nodes x hours) and
    the data it moved, kept apart so reports can say which is which."""

    __tablename__ = "ledger"

    id: int | None = Field(default=None, primary_key=True)
    attempt_id: int = Field(foreign_key="attempt.id", unique=True)
    job_id: int = Field(foreign_key="job.id", index=True)
    cloud: str
    region: str
    market: str
    hours: float
    compute_usd: float
    egress_usd: float
    total_usd: float
    outcome: str
    settled_at: datetime = Field(sa_type=UTCDateTime, index=True)


class AlertRecord(SQLModel, table=True):
    """A budget level, forecast or spend anomaly, raised once per key (say, per budget,
    level and month) however many scheduling ticks it lasts."""

    __tablename__ = "alert"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True)
    kind: str = Field(index=True, description="budget, budget-forecast or anomaly.")
    message: str
    at: datetime = Field(sa_type=UTCDateTime, index=True)
