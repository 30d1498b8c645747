"""Schema migrations on SQLite and PostgreSQL: new databases, databases made before
migrations, several processes opening one at once, and the database file's permissions."""

from __future__ import annotations

import stat
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.command import upgrade as alembic_upgrade
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text
from sqlmodel import SQLModel

import scheduler.price_records  # noqa: F401  (every table the models declare)
from jobs.lifecycle import JobState
from jobs.loading import parse_spec
from scheduler import migrations
from scheduler.store import Store
from tests.conftest import REPO

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def _config(connection: object) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations.HERE))
    config.attributes["connection"] = connection
    return config


def test_head_constant_is_the_newest_revision() -> None:
    script = ScriptDirectory.from_config(_config(None))
    assert script.get_current_head() == migrations.HEAD


def test_new_database_is_at_head_and_matches_the_models(db_url: str) -> None:
    Store(db_url).close()
    engine = create_engine(db_url)
    with engine.connect() as conn:
        assert migrations.current(conn) == migrations.HEAD
        # What the migrations built is what the models declare: no column, index or
        # table that autogenerate would still have to add or drop.
        diffs = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    engine.dispose()
    assert diffs == []


def test_database_from_before_migrations_keeps_its_jobs(db_url: str) -> None:
    """The baseline's tables, a job in them, and no version table: what a database made
    by an earlier sched looks like. Opening it adds the lease columns and loses nothing."""
    engine = create_engine(db_url)
    with engine.begin() as conn:
        alembic_upgrade(_config(conn), "0001_baseline")
        conn.execute(
            text(
                "INSERT INTO job (uid, name, state, priority, spec_json, tags_json,"
                " submitted_at, updated_at, cancel_requested, interruptions, cost)"
                " VALUES ('u1', 'old', 'SUCCEEDED', 'standard', :spec, '{}', :at, :at,"
                " false, 0, 1.5)"
            ),
            {
                "spec": parse_spec({"name": "old", "run": "true"}, now=NOW).model_dump_json(),
                "at": NOW.replace(tzinfo=None),
            },
        )
        conn.execute(text("DROP TABLE alembic_version"))
    store = Store(db_url)
    [job] = store.list_jobs()
    assert (job.name, job.state, job.cost, job.lease_owner) == (
        "old",
        JobState.SUCCEEDED,
        1.5,
        None,
    )
    with engine.connect() as conn:
        assert migrations.current(conn) == migrations.HEAD
        columns = {c["name"] for c in inspect(conn).get_columns("job")}
    assert {"lease_owner", "lease_until"} <= columns
    store.close()
    engine.dispose()


def test_processes_opening_a_new_database_at_once_migrate_it_once(db_url: str) -> None:
    code = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(REPO)!r})
        from scheduler.store import Store
        Store({db_url!r}).close()
        """
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE) for _ in range(6)
    ]
    errors = [p.communicate(timeout=120)[1].decode() for p in procs]
    assert [p.returncode for p in procs] == [0] * 6, errors
    engine = create_engine(db_url)
    with engine.connect() as conn:
        versions = conn.execute(text("SELECT version_num FROM alembic_version")).all()
    engine.dispose()
    assert versions == [(migrations.HEAD,)]


def test_sqlite_file_is_created_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "new" / "sched.db"
    store = Store(f"sqlite:///{path}")
    store.add_job(
        parse_spec({"name": "a", "run": "true"}, now=NOW), submitted_at=NOW, deadline_at=None
    )
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    for extra in (path.with_name("sched.db-wal"), path.with_name("sched.db-shm")):
        if extra.exists():  # SQLite gives them the database file's permissions
            assert stat.S_IMODE(extra.stat().st_mode) == 0o600
    store.close()
