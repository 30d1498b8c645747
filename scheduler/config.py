"""Settings, read once from the environment at the edge and passed down explicitly."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from string import Formatter
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)


class ConfigError(ValueError):
    """A setting that cannot be used; ``str()`` names the variable."""


ADDRESS_FIELDS = frozenset({"ip", "public_ip", "private_ip", "port"})


# The longest a duration setting may be: ten years. Longer ones are typos, and they overflow
# timedelta, datetime arithmetic and time.sleep far from where the setting was read.
MAX_SECONDS = 10 * 365 * 24 * 3600.0
MAX_HOURS = MAX_SECONDS / 3600
_REGION = re.compile(r"[a-z0-9]+(-[a-z0-9]+)+")
_TAG_KEY = re.compile(r"[a-z][a-z0-9_.-]{0,62}")  # the spec's tag key rule (jobs/spec.py)


def check_address_template(template: str) -> str:
    """ValueError naming the unknown field, so a bad setting fails at start-up."""
    for _, field, spec, _ in Formatter().parse(template):
        if field is not None and field not in ADDRESS_FIELDS:
            raise ValueError(f"unknown field {{{field}}} (use {', '.join(sorted(ADDRESS_FIELDS))})")
        if spec and re.search(r"\d{4}", spec):  # '{ip:>999999999}' would fill memory
            raise ValueError(f"format {spec!r}: a width of 1000 or more")
    # Conversions and format specs ('{ip!x}', '{port:q}') only fail when formatted.
    sample = {"ip": "10.0.0.1", "public_ip": "10.0.0.1", "private_ip": "10.0.0.2", "port": 8265}
    try:
        address = template.format(**sample)
    except (IndexError, KeyError, TypeError, OverflowError) as exc:
        raise ValueError(f"cannot be filled in: {exc}") from None
    check_url(address)
    return template


def check_url(value: str) -> str:
    """An http(s) URL with a host: ValueError saying what is wrong with it."""
    if any(c.isspace() or not c.isprintable() for c in value):
        raise ValueError("a URL cannot contain spaces or control characters")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{value!r} is not an http:// or https:// URL with a host")
    if parts.port is None and parts.netloc.endswith(":"):
        raise ValueError(f"{value!r} has an empty port")
    return value


def check_db_url(value: str) -> str:
    """A URL SQLAlchemy can parse, for a dialect it has; the driver is the store's concern."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        make_url(value).get_dialect()
    except (ArgumentError, ValueError) as exc:
        raise ValueError(f"not a database URL SQLAlchemy can use: {exc}") from None
    return value


class Settings(BaseModel):
    # NaN and infinity are never meant: they would pass every bound below.
    model_config = ConfigDict(allow_inf_nan=False)

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
    poll_interval_s: float = Field(default=1.0, gt=0, le=MAX_SECONDS)
    pool_cooldown_s: float = Field(
        default=1800,
        ge=0,
        le=MAX_SECONDS,
        description="How long a pool stays blocked after a preemption.",
    )
    price_ttl_s: float = Field(
        default=3600.0,
        gt=0,
        le=MAX_SECONDS,
        description="Refresh live prices older than this many seconds.",
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
        default=600,
        ge=0,
        le=MAX_SECONDS,
        description="Stop a cloud cluster idle for this many seconds.",
    )
    cluster_boot_timeout_s: float = Field(
        default=900,
        gt=0,
        le=MAX_SECONDS,
        description="Give up on a cluster not up after this many seconds.",
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
        default=24.0,
        gt=0,
        le=MAX_HOURS,
        description="An instance this long without work is idle.",
    )
    scavenger_on_demand: bool = Field(
        default=False,
        description="Let scavenger jobs spend on-demand money beyond commitment headroom.",
    )

    @field_validator("required_tags")
    @classmethod
    def _no_tags(cls, value: list[str]) -> list[str]:
        if [v.lower() for v in value] == ["none"]:
            return []
        for key in value:  # a key no spec may carry would refuse every job
            if not _TAG_KEY.fullmatch(key):
                raise ValueError(f"{key!r} is not a tag key (lower-case letters, digits, _ - .)")
        return value

    @field_validator("aws_regions", "gcp_regions")
    @classmethod
    def _region_names(cls, value: list[str]) -> list[str]:
        for region in value:
            if not _REGION.fullmatch(region):
                raise ValueError(f"{region!r} is not a region name like us-east-1")
        return value

    @field_validator("cluster_address")
    @classmethod
    def _known_fields(cls, value: str) -> str:
        return check_address_template(value)

    @field_validator("ray_address", "gcp_api_endpoint", "aws_metadata_url", "gcp_metadata_url")
    @classmethod
    def _urls(cls, value: str | None) -> str | None:
        return None if value is None else check_url(value)

    @field_validator("db_url")
    @classmethod
    def _db_url(cls, value: str) -> str:
        return check_db_url(value)

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
    """ConfigError when the home directory cannot be known ('~nobody/x', no HOME)."""
    try:
        if environ.get("SCHED_HOME"):
            return Path(environ["SCHED_HOME"]).expanduser()
        xdg = environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    except RuntimeError as exc:  # expanduser/home(): no such user, or no HOME at all
        var = "SCHED_HOME" if environ.get("SCHED_HOME") else "HOME"
        raise ConfigError(f"{var}: {_one_line(str(exc))}") from None
    return Path(xdg) / "sched"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _describe(err: Mapping[str, Any]) -> str:
    """pydantic's error as the person who set the variable needs it: which item, and why."""
    msg = str(err["msg"]).removeprefix("Value error, ")
    loc = err["loc"]
    if len(loc) > 1 and isinstance(loc[1], int):  # one item of a list setting
        item = repr(err["input"])
        msg = f"{item if len(item) <= 40 else item[:37] + '...'}: {msg}"
    return _one_line(msg)


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
            raise ConfigError(_describe(err)) from None
        field = str(err["loc"][0])
        var = next((k for k, v in _ENV.items() if v == field), field)
        raise ConfigError(f"{var}: {_describe(err)}") from None
