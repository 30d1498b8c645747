"""Database tables: jobs, their attempts, and the append-only log of state changes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
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
