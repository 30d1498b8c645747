"""Schema migrations (alembic), applied by sched itself when it opens a database.

A database is at ``HEAD`` or is brought there, inside one transaction that holds the
database's write lock (SQLite: BEGIN IMMEDIATE; PostgreSQL: an advisory lock), so that
several processes opening a new database at once migrate it once. A database made before
migrations existed has no version table: the baseline keeps the tables it finds.

New revision: `alembic -c scheduler/migrations/alembic.ini revision --autogenerate -m "..."`
against a database at head, then set ``HEAD`` below (a test checks they agree).
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Connection, Engine, inspect, text

HEAD = "0002_job_lease"
HERE = Path(__file__).resolve().parent
_PG_LOCK = 0x5C4ED  # the advisory lock key migrations hold on PostgreSQL


def current(connection: Connection) -> str | None:
    """The revision the database is at; None when it has never been migrated."""
    if not inspect(connection).has_table("alembic_version"):
        return None
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def upgrade(engine: Engine, *, check: Engine | None = None) -> str:
    """Bring the database to HEAD unless it is there already; the revision it is at.
    ``check``: an engine for the first look that takes no write lock (SQLite)."""
    with (check or engine).connect() as connection:
        if current(connection) == HEAD:
            return HEAD
    # alembic is imported only when there is something to do: opening an up-to-date
    # database (every CLI call) does not pay for it.
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(HERE))
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK})
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
        at = current(connection)
    return at or HEAD
