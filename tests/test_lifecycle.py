"""The job state machine in jobs/lifecycle.py."""

from __future__ import annotations

from itertools import product

import pytest

from jobs.lifecycle import (
    ALLOWED,
    TERMINAL,
    AttemptState,
    IllegalTransition,
    JobState,
    check_transition,
)

ALLOWED_PAIRS = sorted((src, dst) for src, targets in ALLOWED.items() for dst in targets)
FORBIDDEN_PAIRS = sorted(
    (src, dst) for src, dst in product(JobState, JobState) if dst not in ALLOWED[src]
)


def test_table_covers_every_state() -> None:
    assert set(ALLOWED) == set(JobState)
    for targets in ALLOWED.values():
        assert targets <= set(JobState)


def test_allowed_and_forbidden_partition_all_pairs() -> None:
    assert len(ALLOWED_PAIRS) + len(FORBIDDEN_PAIRS) == len(JobState) ** 2
    assert not set(ALLOWED_PAIRS) & set(FORBIDDEN_PAIRS)


@pytest.mark.parametrize(("src", "dst"), ALLOWED_PAIRS, ids=lambda s: str(s))
def test_allowed_transition_passes(src: JobState, dst: JobState) -> None:
    assert check_transition(src, dst) is None


@pytest.mark.parametrize(("src", "dst"), FORBIDDEN_PAIRS, ids=lambda s: str(s))
def test_forbidden_transition_raises(src: JobState, dst: JobState) -> None:
    with pytest.raises(IllegalTransition) as info:
        check_transition(src, dst)
    assert str(info.value) == f"a job cannot go from {src} to {dst}"


def test_illegal_transition_is_a_runtime_error() -> None:
    # A bug or a lost race, never user input: not a ValueError.
    assert issubclass(IllegalTransition, RuntimeError)
    assert not issubclass(IllegalTransition, ValueError)


def test_some_expected_transitions() -> None:
    assert JobState.PLACED in ALLOWED[JobState.PENDING]
    assert JobState.SUCCEEDED in ALLOWED[JobState.RUNNING]
    assert JobState.MIGRATING in ALLOWED[JobState.PREEMPTED]
    assert JobState.PENDING in ALLOWED[JobState.PLACED]  # a reservation can be given back
    assert JobState.SUCCEEDED not in ALLOWED[JobState.PENDING]
    assert JobState.RUNNING not in ALLOWED[JobState.PENDING]


def test_terminal_states() -> None:
    assert {JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED} == TERMINAL
    for state in JobState:
        assert state.terminal == (state in TERMINAL)


@pytest.mark.parametrize("state", sorted(TERMINAL))
def test_terminal_states_have_no_exits(state: JobState) -> None:
    assert ALLOWED[state] == frozenset()
    for target in JobState:
        with pytest.raises(IllegalTransition):
            check_transition(state, target)


def _reachable(start: JobState) -> set[JobState]:
    seen = {start}
    todo = [start]
    while todo:
        for nxt in ALLOWED[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


@pytest.mark.parametrize("state", sorted(set(JobState) - TERMINAL))
def test_non_terminal_state_can_reach_a_terminal_state(state: JobState) -> None:
    assert ALLOWED[state], f"{state} has no exits"
    assert _reachable(state) & TERMINAL


def test_every_state_is_reachable_from_pending() -> None:
    assert _reachable(JobState.PENDING) == set(JobState)


def test_attempt_finished() -> None:
    running = {AttemptState.STARTING, AttemptState.RUNNING}
    for state in AttemptState:
        assert state.finished == (state not in running)
