"""Settings, read once from the environment at the edge and passed down explicitly."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from string import Formatter
from typing import Literal

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator


class ConfigError(ValueError):
    """A setting that cannot be used; ``str()`` names the variable."""


ADDRESS_FIELDS = frozenset({"ip", "public_ip", "private_ip", "port"})


def check_address_template(template: str) -> str:
    """ValueError naming the unknown field, so a bad setting fails at start-up."""
    for _, field, _, _ in Formatter().parse(template):
        if field is not None and field not in ADDRESS_FIELDS:
            raise ValueError(f"unknown field {{{field}}} (use {', '.join(sorted(ADDRESS_FIELDS))})")
    return template


class Settings(BaseModel):
    home: Path = Field(description="Data directory: database, checkpoints, cluster marker.")
    db_url: str = Field(description="SQLAlchemy URL: sqlite:///... (default) or postgresql://...")
    ray_address: str | None = Field(
        default=None, description="Jobs API address of an existing Ray cluster to use."
    )
    ray_gcs_port: int = Field(default=6379, ge=1, le=65535)
    ray_dashboard_port: int = Field(default=8265, ge=1, le=65535)
    ray_temp_dir: str | None = None
    ray_num_cpus: int | None = Field(default=None, ge=1, description="CPUs the local Ray offers.")
    local_price_per_hour: float = Field(default=0.0, ge=0)
    poll_interval_s: float = Field(default=1.0, gt=0)
    pool_cooldown_s: float = Field(
        default=1800, ge=0, description="How long a pool stays blocked after a preemption."
    )
    price_ttl_s: float = Field(
        default=3600.0, gt=0, description="Refresh live prices older than this many seconds."
    )
    catalogs: list[Path] = Field(
        default_factory=list, description="SkyPilot-format vms.csv files to load as prices."
    )
    aws_regions: list[str] = Field(
        default_factory=lambda: list(DEFAULT_AWS_REGIONS),
        description="AWS regions to fetch live prices for.",
    )
    gcp_regions: list[str] = Field(
        default_factory=lambda: list(DEFAULT_GCP_REGIONS),
        description="GCP regions to fetch live prices for.",
    )
    gcp_project: str | None = Field(default=None, description="GCP project to launch in.")
    gcp_api_endpoint: str | None = Field(
        default=None, description="Base URL for every Google API (REST); for fakes and proxies."
    )
    gcp_anonymous: bool = Field(
        default=False, description="Call Google APIs without credentials (fakes only)."
    )
    aws_metadata_url: str = Field(
        default="http://169.254.169.254", description="EC2 instance metadata base URL."
    )
    gcp_metadata_url: str = Field(
        default="http://metadata.google.internal", description="GCE metadata server base URL."
    )
    launch_clouds: list[Literal["aws", "gcp"]] = Field(
        default_factory=list,
        description="Clouds sched may bring Ray clusters up on (default: none, local only).",
    )
    aws_image: str | None = Field(default=None, description="AMI for cloud Ray nodes (ami-...).")
    gcp_image: str | None = Field(default=None, description="GCE image for cloud Ray nodes.")
    cluster_address: str = Field(
        default="http://{ip}:{port}",
        description="A cloud head's Jobs API: {ip}, {public_ip}, {private_ip}, {port}.",
    )
    cluster_idle_stop_s: float = Field(
        default=600, ge=0, description="Stop a cloud cluster idle for this many seconds."
    )
    cluster_boot_timeout_s: float = Field(
        default=900, gt=0, description="Give up on a cluster not up after this many seconds."
    )

    required_tags: list[str] = Field(
        default_factory=lambda: list(DEFAULT_REQUIRED_TAGS),
        description="Tags every job must carry; SCHED_REQUIRED_TAGS=none requires none.",
    )
    commitments_file: Path | None = Field(
        default=None, description="YAML file declaring Savings Plans and CUDs."
    )
    commitments_live: list[Literal["aws", "gcp"]] = Field(
        default_factory=list,
        description="Clouds to read commitments from (Savings Plans API, Compute CUDs).",
    )
    budgets_file: Path | None = Field(default=None, description="YAML file declaring budgets.")
    keep_tag: str = Field(
        default="sched:keep", min_length=1, description="Machines with this tag are never stopped."
    )
    audit_idle_hours: float = Field(
        default=24.0, gt=0, description="An instance this long without work is idle."
    )
    scavenger_on_demand: bool = Field(
        default=False,
        description="Let scavenger jobs spend on-demand money beyond commitment headroom.",
    )

    @field_validator("required_tags")
    @classmethod
    def _no_tags(cls, value: list[str]) -> list[str]:
        return [] if [v.lower() for v in value] == ["none"] else value

    @field_validator("cluster_address")
    @classmethod
    def _known_fields(cls, value: str) -> str:
        return check_address_template(value)

    @model_validator(mode="after")
    def _can_launch(self) -> Settings:
        """A cloud to launch on needs what every launch there needs; said at start-up,
        before a job is stored, not when the first job reaches the cloud."""
        if "aws" in self.launch_clouds and not self.aws_image:
            raise ValueError("SCHED_AWS_IMAGE: needed to launch on aws (an AMI id, ami-...)")
        if "gcp" in self.launch_clouds and not self.gcp_project:
            raise ValueError("SCHED_GCP_PROJECT: needed to launch on gcp")
        if "gcp" in self.commitments_live and not self.gcp_project:
            raise ValueError("SCHED_GCP_PROJECT: needed to read commitments from gcp")
        if "gcp" in self.launch_clouds and not self.gcp_image:
            raise ValueError("SCHED_GCP_IMAGE: needed to launch on gcp (a GCE image)")
        return self

    @property
    def checkpoint_root(self) -> Path:
        return self.home / "checkpoints"


DEFAULT_REQUIRED_TAGS = ("team", "project", "environment", "cost_center", "owner")
DEFAULT_AWS_REGIONS = ("us-east-1", "us-east-2", "us-west-2", "eu-west-1", "eu-central-1")
DEFAULT_GCP_REGIONS = (
    "us-central1",
    "us-east1",
    "us-east4",
    "us-east5",
    "us-west1",
    "europe-west4",
)

_ENV = {
    "SCHED_DB_URL": "db_url",
    "SCHED_RAY_ADDRESS": "ray_address",
    "SCHED_RAY_PORT": "ray_gcs_port",
    "SCHED_RAY_DASHBOARD_PORT": "ray_dashboard_port",
    "SCHED_RAY_TEMP_DIR": "ray_temp_dir",
    "SCHED_RAY_NUM_CPUS": "ray_num_cpus",
    "SCHED_LOCAL_PRICE_PER_HOUR": "local_price_per_hour",
    "SCHED_POLL_INTERVAL": "poll_interval_s",
    "SCHED_PRICE_TTL": "price_ttl_s",
    "SCHED_POOL_COOLDOWN": "pool_cooldown_s",
    "SCHED_CATALOG": "catalogs",
    "SCHED_AWS_REGIONS": "aws_regions",
    "SCHED_GCP_REGIONS": "gcp_regions",
    "SCHED_GCP_PROJECT": "gcp_project",
    "SCHED_GCP_API_ENDPOINT": "gcp_api_endpoint",
    "SCHED_GCP_ANONYMOUS": "gcp_anonymous",
    "SCHED_AWS_METADATA_URL": "aws_metadata_url",
    "SCHED_GCP_METADATA_URL": "gcp_metadata_url",
    "SCHED_LAUNCH_CLOUDS": "launch_clouds",
    "SCHED_AWS_IMAGE": "aws_image",
    "SCHED_GCP_IMAGE": "gcp_image",
    "SCHED_CLUSTER_ADDRESS": "cluster_address",
    "SCHED_IDLE_STOP": "cluster_idle_stop_s",
    "SCHED_BOOT_TIMEOUT": "cluster_boot_timeout_s",
    "SCHED_REQUIRED_TAGS": "required_tags",
    "SCHED_COMMITMENTS": "commitments_file",
    "SCHED_BUDGETS": "budgets_file",
    "SCHED_COMMITMENTS_LIVE": "commitments_live",
    "SCHED_KEEP_TAG": "keep_tag",
    "SCHED_AUDIT_IDLE_HOURS": "audit_idle_hours",
    "SCHED_SCAVENGER_ON_DEMAND": "scavenger_on_demand",
}
# Variables holding lists: SCHED_CATALOG is split like PATH, regions on commas.
_LIST_SEPARATORS = {
    "catalogs": os.pathsep,
    "aws_regions": ",",
    "gcp_regions": ",",
    "launch_clouds": ",",
    "required_tags": ",",
    "commitments_live": ",",
}


def default_home(environ: Mapping[str, str]) -> Path:
    if environ.get("SCHED_HOME"):
        return Path(environ["SCHED_HOME"]).expanduser()
    xdg = environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg) / "sched"


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    environ = os.environ if environ is None else environ
    home = default_home(environ)
    values: dict[str, object] = {"home": home, "db_url": f"sqlite:///{home / 'sched.db'}"}
    for var, field in _ENV.items():
        if environ.get(var):
            raw = environ[var]
            sep = _LIST_SEPARATORS.get(field)
            values[field] = [p.strip() for p in raw.split(sep) if p.strip()] if sep else raw
    try:
        return Settings.model_validate(values)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        if not err["loc"]:  # a check across settings: its message names the variable
            raise ConfigError(str(err["msg"]).removeprefix("Value error, ")) from None
        field = str(err["loc"][0])
        var = next((k for k, v in _ENV.items() if v == field), field)
        raise ConfigError(f"{var}: {err['msg']}") from None
