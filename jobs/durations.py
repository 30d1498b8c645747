"""Human durations (``90m``, ``6h``, ``1d12h``) used by deadlines and other time limits."""

from __future__ import annotations

import re
from datetime import timedelta

_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(d|h|m|s)")
_WHOLE = re.compile(r"^\s*(?:\d+(?:\.\d+)?\s*[dhms]\s*)+$")
_UNIT_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def parse_duration(text: str) -> timedelta:
    """Read a sum of parts like ``1d12h30m``; raise ValueError on anything else."""
    if not _WHOLE.match(text):
        raise ValueError(f"{text!r} is not a duration like '90m', '6h' or '1d12h'")
    seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in _PART.findall(text))
    if seconds <= 0:
        raise ValueError(f"duration {text!r} must be longer than zero")
    return timedelta(seconds=seconds)


def looks_like_duration(text: str) -> bool:
    return bool(_WHOLE.match(text))
