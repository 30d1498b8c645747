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

    @property
    def checkpoint_root(self) -> Path:
        return self.home / "checkpoints"


_ENV = {
    "SCHED_DB_URL": "db_url",
    "SCHED_RAY_ADDRESS": "ray_address",
    "SCHED_RAY_PORT": "ray_gcs_port",
    "SCHED_RAY_DASHBOARD_PORT": "ray_dashboard_port",
    "SCHED_RAY_TEMP_DIR": "ray_temp_dir",
    "SCHED_RAY_NUM_CPUS": "ray_num_cpus",
    "SCHED_LOCAL_PRICE_PER_HOUR": "local_price_per_hour",
    "SCHED_POLL_INTERVAL": "poll_interval_s",
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
            values[field] = environ[var]
    try:
        return Settings.model_validate(values)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        field = str(err["loc"][0])
        var = next((k for k, v in _ENV.items() if v == field), field)
        raise ConfigError(f"{var}: {err['msg']}") from None
