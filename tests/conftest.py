"""Shared fixtures: a real local Ray cluster, a real PostgreSQL, and the `sched` CLI."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from benchmarks.common import postgres_installed, postgres_server
from providers.local import LocalRayCluster, LocalRayConfig
from scheduler.config import Settings, load_settings

REPO = Path(__file__).resolve().parent.parent
SCHED = str(Path(sys.executable).with_name("sched"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class RayTestCluster:
    gcs_port: int
    dashboard_port: int
    temp_dir: str

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"

    def env(self) -> dict[str, str]:
        return {
            "SCHED_RAY_PORT": str(self.gcs_port),
            "SCHED_RAY_DASHBOARD_PORT": str(self.dashboard_port),
            "SCHED_RAY_TEMP_DIR": self.temp_dir,
            "SCHED_RAY_NUM_CPUS": "4",
        }


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[RayTestCluster]:
    """One real single-node Ray cluster for the session, started the way `sched up` does."""
    # A short temp dir: Ray's socket paths must fit in 107 bytes.
    temp_dir = tempfile.mkdtemp(prefix="sray-", dir="/tmp")
    cluster = RayTestCluster(free_port(), free_port(), temp_dir)
    local = LocalRayCluster(
        LocalRayConfig(
            gcs_port=cluster.gcs_port,
            dashboard_port=cluster.dashboard_port,
            temp_dir=temp_dir,
            num_cpus=4,
        )
    )
    assert local.start(), "a Ray cluster already answered on the test ports"
    yield cluster
    local.stop()
    shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def settings(home: Path) -> Settings:
    return load_settings(
        {"SCHED_HOME": str(home), "SCHED_POLL_INTERVAL": "0.2", "SCHED_REQUIRED_TAGS": "none"}
    )


@pytest.fixture
def ray_settings(home: Path, ray_cluster: RayTestCluster) -> Settings:
    return load_settings(
        {
            "SCHED_HOME": str(home),
            "SCHED_POLL_INTERVAL": "0.2",
            "SCHED_REQUIRED_TAGS": "none",
            **ray_cluster.env(),
        }
    )


@dataclass
class Cli:
    env: dict[str, str]

    def __call__(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [SCHED, *args],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=timeout,
            cwd=REPO,
            stdin=subprocess.DEVNULL,
        )


def _base_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SCHED_", "RAY_"))}
    # Tests submit small specs without cost tags; tests/test_tags.py checks the requirement.
    env.update(
        {
            "SCHED_HOME": str(home),
            "SCHED_POLL_INTERVAL": "0.2",
            "COLUMNS": "200",
            "SCHED_REQUIRED_TAGS": "none",
        }
    )
    return env


@pytest.fixture
def cli(home: Path) -> Cli:
    """The installed `sched` command, with its own data directory and no Ray cluster."""
    return Cli(_base_env(home))


@pytest.fixture
def ray_cli(home: Path, ray_cluster: RayTestCluster) -> Cli:
    """The installed `sched` command pointed at the session's Ray cluster."""
    return Cli({**_base_env(home), **ray_cluster.env()})


# -- PostgreSQL ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL server on loopback, for the PostgreSQL path of the store
    and the controller."""
    if not postgres_installed():
        if os.environ.get("SCHED_TEST_POSTGRES") == "require":  # .ci/run installs it
            pytest.fail("SCHED_TEST_POSTGRES=require but initdb/pg_ctl are not on PATH")
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    with postgres_server() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A new, empty database on each engine sched supports: a SQLite file, and a database
    of its own on the session's PostgreSQL server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'sched.db'}"
        return
    server = request.getfixturevalue("postgres_url")
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    yield server.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))
    admin.dispose()
