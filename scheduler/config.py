"""Settings, read once from the environment at the edge and passed down explicitly."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError


class ConfigError(ValueError):
    """A setting that cannot be used; ``str()`` names the variable."""


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

    @property
    def checkpoint_root(self) -> Path:
        return self.home / "checkpoints"


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
}
# Variables holding lists: SCHED_CATALOG is split like PATH, regions on commas.
_LIST_SEPARATORS = {"catalogs": os.pathsep, "aws_regions": ",", "gcp_regions": ","}


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
        field = str(err["loc"][0])
        var = next((k for k, v in _ENV.items() if v == field), field)
        raise ConfigError(f"{var}: {err['msg']}") from None
