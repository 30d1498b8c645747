"""Alembic's entry point: runs the migrations on the connection sched hands it.

sched upgrades its database itself when it opens one (scheduler/migrations/__init__.py)
and passes its connection, already inside the transaction that holds the write lock. Run
by hand (`alembic -c scheduler/migrations/alembic.ini ...`, to make a new revision) it
connects to SCHED_DB_URL instead.
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine
from sqlmodel import SQLModel

import scheduler.price_records
import scheduler.records  # noqa: F401


def run(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=SQLModel.metadata,
        render_as_batch=True,  # SQLite alters tables by copying them
    )
    with context.begin_transaction():
        context.run_migrations()


given = context.config.attributes.get("connection")
if given is not None:
    run(given)
else:
    engine = create_engine(os.environ.get("SCHED_DB_URL", "sqlite:///sched-dev.db"))
    with engine.begin() as connection:
        run(connection)
