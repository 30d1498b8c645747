"""Cloud Ray clusters in the database: who holds which, and claiming a warm one atomically.

Two controllers may look for a warm cluster at the same moment; the claim is one write
transaction (``BEGIN IMMEDIATE`` on SQLite, ``FOR UPDATE`` on PostgreSQL) that only takes
a cluster nobody holds, so a cluster never serves two attempts.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from scheduler.records import ClusterRecord, ClusterState
from scheduler.store import Store


class ClusterStore:
    def __init__(self, store: Store) -> None:
        self.store = store

    def held_by(self, attempt_id: int) -> ClusterRecord | None:
        query = select(ClusterRecord).where(ClusterRecord.attempt_id == attempt_id)
        with self.store.reading() as session:
            return session.exec(query).first()

    def by_name(self, name: str) -> ClusterRecord | None:
        with self.store.reading() as session:
            return session.exec(select(ClusterRecord).where(ClusterRecord.name == name)).first()

    def get(self, cluster_id: int) -> ClusterRecord:
        with self.store.reading() as session:
            found = session.get(ClusterRecord, cluster_id)
        if found is None:
            raise LookupError(f"no cluster {cluster_id}")
        return found

    def create(self, record: ClusterRecord) -> ClusterRecord:
        """Insert, or return the cluster of that name when another process made it first."""
        try:
            with self.store.writing() as session:
                session.add(record)
                session.flush()
                session.refresh(record)
            return record
        except IntegrityError:
            existing = self.by_name(record.name)
            assert existing is not None
            return existing

    def claim_idle(self, shape: dict[str, Any], attempt_id: int) -> ClusterRecord | None:
        """Take an idle UP cluster of exactly this shape (cloud, zone, instance type,
        market, nodes) for the attempt; the one idle longest goes first."""
        query = select(ClusterRecord).where(
            ClusterRecord.state == ClusterState.UP, col(ClusterRecord.attempt_id).is_(None)
        )
        for key, value in shape.items():
            query = query.where(getattr(ClusterRecord, key) == value)
        query = query.order_by(col(ClusterRecord.last_used_at)).limit(1).with_for_update()
        with self.store.writing() as session:
            found = session.exec(query).first()
            if found is None:
                return None
            found.attempt_id = attempt_id
            session.add(found)
            session.flush()
            session.refresh(found)
            return found

    def update(self, cluster_id: int, **fields: Any) -> ClusterRecord:
        with self.store.writing() as session:
            found = session.get(ClusterRecord, cluster_id)
            if found is None:
                raise LookupError(f"no cluster {cluster_id}")
            for key, value in fields.items():
                setattr(found, key, value)
            session.add(found)
            session.flush()
            session.refresh(found)
            return found

    def live(self) -> list[ClusterRecord]:
        """Every cluster not yet terminated, oldest first."""
        query = (
            select(ClusterRecord)
            .where(ClusterRecord.state != ClusterState.TERMINATED)
            .order_by(col(ClusterRecord.id))
        )
        with self.store.reading() as session:
            return list(session.exec(query).all())

    def all(self) -> list[ClusterRecord]:
        with self.store.reading() as session:
            return list(session.exec(select(ClusterRecord).order_by(col(ClusterRecord.id))).all())
