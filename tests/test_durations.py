"""parse_duration: human durations like '90m', '6h' and '1d12h'."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobs.durations import looks_like_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90m", timedelta(minutes=90)),
        ("6h", timedelta(hours=6)),
        ("1d12h", timedelta(hours=36)),
        ("1.5h", timedelta(minutes=90)),
        ("45s", timedelta(seconds=45)),
        ("2d", timedelta(days=2)),
        ("1h30m", timedelta(minutes=90)),
        ("1h 30m", timedelta(minutes=90)),
        ("  6h  ", timedelta(hours=6)),
        ("0h30m", timedelta(minutes=30)),
        ("1d1h1m1s", timedelta(days=1, hours=1, minutes=1, seconds=1)),
    ],
)
def test_valid_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected
    assert looks_like_duration(text)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", r"'' is not a duration like '90m', '6h' or '1d12h'"),
        ("soon", r"'soon' is not a duration"),
        ("6", r"'6' is not a duration"),
        ("6H", r"'6H' is not a duration"),
        ("h", r"'h' is not a duration"),
        ("-1h", r"'-1h' is not a duration"),
        ("1.h", r"'1.h' is not a duration"),
        ("6h soon", r"'6h soon' is not a duration"),
        ("0h", r"duration '0h' must be longer than zero"),
        ("0d0h0m", r"duration '0d0h0m' must be longer than zero"),
    ],
)
def test_invalid_durations(text: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        parse_duration(text)


def test_looks_like_duration_is_only_about_shape() -> None:
    # '0h' has the right shape even though parse_duration rejects it as zero.
    assert looks_like_duration("0h")
    assert not looks_like_duration("2026-12-01T09:00:00Z")
    assert not looks_like_duration("soon")


_UNITS = {"d": timedelta(days=1), "h": timedelta(hours=1), "m": timedelta(minutes=1)}
_UNITS["s"] = timedelta(seconds=1)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(min_value=0, max_value=999), st.sampled_from(sorted(_UNITS))),
        min_size=1,
        max_size=5,
    ),
    st.sampled_from(["", " "]),
)
def test_sum_of_parts(parts: list[tuple[int, str]], sep: str) -> None:
    text = sep.join(f"{n}{unit}" for n, unit in parts)
    expected = sum((n * _UNITS[unit] for n, unit in parts), timedelta())
    if expected == timedelta():
        with pytest.raises(ValueError, match="must be longer than zero"):
            parse_duration(text)
    elif expected > timedelta(days=3650):
        with pytest.raises(ValueError, match="longer than 3650 days"):
            parse_duration(text)
    else:
        assert parse_duration(text) == expected


# -- regressions: bugs found here once ---------------------------------------------------------


@pytest.mark.parametrize("text", ["9" * 30 + "d", "1" * 400 + "s"])
def test_huge_duration_raises_value_error_not_overflow(text: str) -> None:
    """Once: timedelta(seconds=...) overflows and OverflowError escapes parse_duration."""
    with pytest.raises(ValueError):
        parse_duration(text)


def test_duration_below_a_microsecond_is_not_zero() -> None:
    """Once: '0.0000001s' passes the '> 0' check but rounds to timedelta(0)."""
    try:
        result = parse_duration("0.0000001s")
    except ValueError:
        return  # rejecting it is fine too
    assert result > timedelta(0)
