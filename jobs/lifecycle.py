"""Job and attempt states, and the only transitions allowed between them.

Kept in one table so the controller, the store and the docs cannot disagree about
what may follow what.
"""

from __future__ import annotations

from enum import StrEnum


class JobState(StrEnum):
    PENDING = "PENDING"
    PLACED = "PLACED"
    PROVISIONING = "PROVISIONING"
    RUNNING = "RUNNING"
    PREEMPTED = "PREEMPTED"
    MIGRATING = "MIGRATING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED})

_S = JobState
ALLOWED: dict[JobState, frozenset[JobState]] = {
    _S.PENDING: frozenset({_S.PLACED, _S.FAILED, _S.CANCELLED}),
    # A reservation can be given back (e.g. capacity vanished before bring-up).
    _S.PLACED: frozenset({_S.PROVISIONING, _S.PENDING, _S.FAILED, _S.CANCELLED}),
    _S.PROVISIONING: frozenset({_S.RUNNING, _S.PREEMPTED, _S.FAILED, _S.CANCELLED}),
    _S.RUNNING: frozenset({_S.SUCCEEDED, _S.FAILED, _S.CANCELLED, _S.PREEMPTED}),
    _S.PREEMPTED: frozenset({_S.MIGRATING, _S.FAILED, _S.CANCELLED}),
    _S.MIGRATING: frozenset({_S.PLACED, _S.FAILED, _S.CANCELLED}),
    _S.SUCCEEDED: frozenset(),
    _S.FAILED: frozenset(),
    _S.CANCELLED: frozenset(),
}


class IllegalTransition(RuntimeError):
    """A state change the lifecycle forbids; always a bug or a lost race, never user input."""


def check_transition(current: JobState, target: JobState) -> None:
    if target not in ALLOWED[current]:
        raise IllegalTransition(f"a job cannot go from {current} to {target}")


class AttemptState(StrEnum):
    """One try at running the job on one placement."""

    STARTING = "STARTING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    STOPPED = "STOPPED"
    PREEMPTED = "PREEMPTED"
    YIELDED = "YIELDED"  # a scavenger that gave its commitment headroom to paid-for work
    NO_CAPACITY = "NO_CAPACITY"  # the cloud had no capacity for its pool: placed elsewhere
    NO_QUOTA = "NO_QUOTA"  # the account's quota in that cloud region was used up

    @property
    def finished(self) -> bool:
        return self not in (AttemptState.STARTING, AttemptState.RUNNING)
