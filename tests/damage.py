"""Inputs damaged on purpose for the fuzz tests: hypothesis settings for them, a check that
an error is one line, and JSON-like data with a few fields deleted, retyped or wrapped."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st


def fuzz(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


def one_line(message: str, starts: str) -> None:
    assert message.startswith(starts), message
    assert len(message.splitlines()) == 1 and "\r" not in message, message
    assert "Traceback" not in message


# ---- JSON-like answers and files, damaged one field at a time ---------------------------

wrong_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([-1, 0, 10**30, 10**400]),
    st.floats(),
    st.sampled_from(["", "abc", "-1", "1e400", "nan", "inf", "0x10", "1,5", "2026-13-01"]),
    st.text(max_size=10),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if prefix:
        yield prefix
    items: Any = data.items() if isinstance(data, dict) else ()
    if isinstance(data, list):
        items = enumerate(data)
    for key, value in items:
        yield from _paths(value, (*prefix, key))


@st.composite
def damaged(draw: st.DrawFn, original: Any, max_changes: int = 3) -> Any:
    """``original`` with 1-3 fields deleted, retyped or wrapped in a list."""
    data = copy.deepcopy(original)
    for _ in range(draw(st.integers(1, max_changes))):
        paths = list(_paths(data))
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = data
        for step in path[:-1]:
            parent = parent[step]
        op = draw(st.sampled_from(["delete", "retype", "retype", "wrap"]))
        if op == "delete":
            del parent[path[-1]]
        elif op == "retype":
            parent[path[-1]] = draw(wrong_values)
        else:
            parent[path[-1]] = [parent[path[-1]]]
    return data
