"""The job spec: what a user asks for, as typed models whose descriptions are the docs.

Every model forbids unknown fields, because a misspelt constraint that is silently
ignored (``max_price_per_hr``) is how a job ends up costing ten times what was meant.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    SerializationInfo,
    ValidationInfo,
    field_validator,
    model_validator,
)

from jobs import secrets
from jobs.accelerators import AcceleratorRequest, parse_accelerator
from jobs.durations import looks_like_duration, parse_duration

Cloud = Literal["aws", "gcp", "local"]


class Market(StrEnum):
    SPOT = "spot"
    ON_DEMAND = "on_demand"
    AUTO = "auto"


class Priority(StrEnum):
    PRODUCTION = "production"
    STANDARD = "standard"
    SCAVENGER = "scavenger"


def _scalar_to_str(value: Any) -> Any:
    """YAML reads ``cost_center: 42`` as an int; tag values are strings."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


ScalarStr = Annotated[str, BeforeValidator(_scalar_to_str)]


def _env_value(value: Any, info: ValidationInfo) -> secrets.EnvValue:
    """A plain string, ``{from_env: NAME}``, or ``{secret: VALUE}`` sealed at once with the
    context's ``keyring`` (tests) or this process's key (SCHED_SECRET_KEY or the key file)."""
    ring = (info.context or {}).get("keyring")  # a Keyring, or what makes one when needed
    if isinstance(ring, secrets.Keyring):
        return secrets.parse_env_value(value, lambda: ring)
    return secrets.parse_env_value(value, secrets.process_keyring if ring is None else ring)


def _env_value_json(value: secrets.EnvValue, info: SerializationInfo) -> Any:
    """Stored as written, sealed values as their token; ``context={"mask_secrets": True}``
    shows them as ``***`` (for output meant for people)."""
    return secrets.env_value_json(value, mask=bool((info.context or {}).get("mask_secrets")))


EnvValue = Annotated[secrets.EnvValue, PlainValidator(_env_value), PlainSerializer(_env_value_json)]

_ENV_NAME = secrets.ENV_NAME
_TAG_KEY = re.compile(r"[a-z][a-z0-9_.-]{0,62}")
_JOB_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
_URI = re.compile(r"(s3|gs|file)://[^\s]+")


class Strict(BaseModel):
    # inf and nan are numbers to YAML (.inf) but not to a budget or an hour count.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def _parse_one(value: Any) -> Any:
    if isinstance(value, AcceleratorRequest | dict):
        return value
    if not isinstance(value, str):
        shown = repr(value)
        shown = shown if len(shown) <= 40 else shown[:37] + "..."
        raise ValueError(f"{shown} is not an accelerator like 'A100:8' or 'tpu-v5p-8'")
    return parse_accelerator(value)


class AcceleratorChoice(Strict):
    """Alternatives the job can run on; the scheduler picks the cheapest feasible one."""

    any_of: list[Annotated[AcceleratorRequest, BeforeValidator(_parse_one)]] = Field(
        min_length=1,
        description="Alternatives such as [A100:8, H100:8, tpu-v5p-8]; any one fits.",
    )


def _to_choice(value: Any) -> Any:
    """Accept ``A100:8``, a list of alternatives, or ``{any_of: [...]}``."""
    if value is None or isinstance(value, AcceleratorChoice):
        return value
    if isinstance(value, str):
        return {"any_of": [parse_accelerator(value)]}
    if isinstance(value, list):
        return {"any_of": value}
    if isinstance(value, dict):
        return value
    raise ValueError("expected 'A100:8', a list of alternatives, or {any_of: [...]}")


class Resources(Strict):
    """What one node of the job needs."""

    accelerators: Annotated[AcceleratorChoice | None, BeforeValidator(_to_choice)] = Field(
        default=None,
        description="'A100:8', 'H100', 'tpu-v5p-8', a list of alternatives, or {any_of: [...]}."
        " Omit for a CPU-only job.",
    )
    cpus: float | None = Field(default=None, gt=0, description="vCPUs per node (at least).")
    memory_gb: float | None = Field(default=None, gt=0, description="RAM per node in GB.")
    gpu_memory_gb: float | None = Field(
        default=None, gt=0, description="Memory per accelerator device in GB (at least)."
    )
    disk_gb: float | None = Field(default=None, gt=0, description="Boot disk per node in GB.")
    num_nodes: int = Field(default=1, ge=1, le=1024, description="Nodes in the cluster.")

    @model_validator(mode="after")
    def _gpu_memory_needs_accelerators(self) -> Resources:
        if self.gpu_memory_gb is not None and self.accelerators is None:
            raise ValueError("gpu_memory_gb needs accelerators")
        return self


class Constraints(Strict):
    """Limits every placement must respect; infeasible placements are never chosen."""

    max_price_per_hour: float | None = Field(
        default=None, ge=0, description="Highest $/hour for the whole cluster."
    )
    max_total_cost: float | None = Field(
        default=None, ge=0, description="Highest expected total cost in $, all included."
    )
    max_interruptions: int | None = Field(
        default=None, ge=0, description="Spot preemptions tolerated before moving to on-demand."
    )
    deadline: str | datetime | None = Field(
        default=None,
        description="Finish by: a duration from submission ('6h', '1d12h') or an ISO 8601"
        " timestamp ('2026-12-01T09:00:00Z').",
    )
    clouds: list[Cloud] | None = Field(
        default=None, description="Clouds allowed: aws, gcp, local. Default: all configured."
    )
    regions: list[str] | None = Field(default=None, description="Regions allowed.")
    zones: list[str] | None = Field(default=None, description="Zones allowed.")

    @field_validator("deadline")
    @classmethod
    def _deadline(cls, value: str | datetime | None, info: ValidationInfo) -> Any:
        if value is None:
            return None
        if isinstance(value, str) and looks_like_duration(value):
            parse_duration(value)
            return value.strip()
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
            except ValueError:
                raise ValueError(
                    f"{value!r} is neither a duration ('6h') nor an ISO timestamp"
                ) from None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        now = (info.context or {}).get("now")
        if now is not None and value <= now:
            raise ValueError(f"deadline {value.isoformat()} is in the past")
        return value


class DataLocation(Strict):
    """A dataset or output: where it lives decides what reading it elsewhere costs."""

    uri: str = Field(description="s3://bucket/path, gs://bucket/path or file:///path.")
    region: str | None = Field(
        default=None, description="Region holding the data (required for s3:// and gs://)."
    )
    size_gb: float = Field(default=0, ge=0, description="Size in GB.")
    reads: int = Field(default=1, ge=1, description="Times the job reads it in full (inputs).")

    @field_validator("uri")
    @classmethod
    def _uri(cls, value: str) -> str:
        if not _URI.fullmatch(value):
            raise ValueError(f"{value!r} is not an s3://, gs:// or file:// URI")
        return value

    @model_validator(mode="after")
    def _region_for_cloud(self) -> DataLocation:
        if self.uri.startswith(("s3://", "gs://")) and not self.region:
            raise ValueError(f"region is required for {self.uri}")
        return self

    @property
    def cloud(self) -> Cloud:
        return {"s3": "aws", "gs": "gcp"}.get(self.uri.split("://", 1)[0], "local")  # type: ignore[return-value]


class Data(Strict):
    inputs: list[DataLocation] = Field(default_factory=list, description="Datasets read.")
    outputs: list[DataLocation] = Field(default_factory=list, description="Results written.")


class Checkpoint(Strict):
    """How the job checkpoints. Present: the job saves to $SCHED_CHECKPOINT_DIR and resumes
    from $SCHED_RESUME_FROM, so a preemption costs half a checkpoint interval. Absent: a
    preemption restarts it from zero, which the cost model charges for."""

    uri: str | None = Field(
        default=None,
        description="Where checkpoints go (s3://, gs://, file://). Default: a directory per job"
        " under the sched data directory.",
    )
    region: str | None = Field(
        default=None,
        description="Region of the checkpoint bucket; with it, writing and restoring"
        " checkpoints across regions is priced as egress.",
    )
    size_gb: float = Field(default=0, ge=0, description="Size of one checkpoint in GB.")
    write_seconds: float = Field(default=60, ge=0, description="Time to write one checkpoint.")

    @field_validator("uri")
    @classmethod
    def _uri(cls, value: str | None) -> str | None:
        if value is not None and not _URI.fullmatch(value):
            raise ValueError(f"{value!r} is not an s3://, gs:// or file:// URI")
        return value


class JobSpec(Strict):
    """A job: the command, what it needs, what it may cost, and who pays."""

    # pydantic's own message (str of a ValidationError) repeats the input, which for env
    # may hold a secret; parse_spec's one-line errors name fields, never secret values.
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    name: str | None = Field(
        default=None, description="Job name (letters, digits, '-', '_', '.'). Default: file name."
    )
    run: str = Field(min_length=1, description="Shell command that runs the job.")
    workdir: str | None = Field(
        default=None,
        description="Directory shipped to the cluster and used as the working directory;"
        " relative to the spec file.",
    )
    env: dict[str, EnvValue] = Field(
        default_factory=dict,
        description="Environment variables: a string, {from_env: NAME} (read from the"
        " environment of the process that hands the job to Ray) or {secret: VALUE}"
        " (stored encrypted). See Secrets and access.",
    )
    resources: Resources = Field(default_factory=Resources, description="What each node needs.")
    market: Market = Field(
        default=Market.AUTO, description="spot, on_demand, or auto (cheapest expected total)."
    )
    constraints: Constraints = Field(default_factory=Constraints, description="Hard limits.")
    data: Data = Field(default_factory=Data, description="Inputs and outputs, for data gravity.")
    checkpoint: Checkpoint | None = Field(
        default=None,
        description="Checkpointing; leave it out if the job cannot resume (spot then costs more).",
    )
    estimated_hours: float = Field(
        default=1.0, gt=0, description="Hours of work on the requested resources, for costing."
    )
    priority: Priority = Field(
        default=Priority.STANDARD,
        description="production, standard, or scavenger (runs only on idle committed capacity).",
    )
    tags: dict[str, ScalarStr] = Field(
        default_factory=dict,
        description="Cost tags: team, project, environment, cost_center, owner, or any other.",
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is not None and not _JOB_NAME.fullmatch(value):
            raise ValueError(f"{value!r}: use 1-63 letters, digits, '-', '_' or '.'")
        return value

    @field_validator("run")
    @classmethod
    def _run(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("run must be a non-empty command")
        return value

    @field_validator("env", mode="before")
    @classmethod
    def _env_is_a_mapping(cls, value: Any) -> Any:
        # Said here, without the input: pydantic's type error would quote a list of
        # {NAME: {secret: ...}} items back, secret included.
        if value is not None and not isinstance(value, Mapping):
            raise ValueError(f"expected a mapping of NAME: value, got a {type(value).__name__}")
        return value

    @field_validator("env")
    @classmethod
    def _env(cls, value: dict[str, secrets.EnvValue]) -> dict[str, secrets.EnvValue]:
        for key in value:
            if not _ENV_NAME.fullmatch(key):
                raise ValueError(f"{key!r} is not a valid environment variable name")
        return value

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if not _TAG_KEY.fullmatch(key):
                raise ValueError(f"tag key {key!r}: use lower-case letters, digits, '_', '-', '.'")
        return value

    def deadline_at(self, submitted_at: datetime) -> datetime | None:
        """The absolute deadline, given when the job was submitted."""
        deadline = self.constraints.deadline
        if deadline is None:
            return None
        if isinstance(deadline, datetime):
            return deadline
        return submitted_at + parse_duration(deadline)

    @property
    def accelerator_options(self) -> list[AcceleratorRequest]:
        choice = self.resources.accelerators
        return list(choice.any_of) if choice else []
