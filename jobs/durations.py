"""Human durations (``90m``, ``6h``, ``1d12h``) used by deadlines and other time limits."""

from __future__ import annotations

import re
from datetime import timedelta

_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*(d|h|m|s)")
_WHOLE = re.compile(r"\s*(?:[0-9]+(?:\.[0-9]+)?\s*[dhms]\s*)+")
_UNIT_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
MAX_SECONDS = 3650 * 86400  # ten years: beyond it a "deadline" is a typo, and dates overflow


def parse_duration(text: str) -> timedelta:
    """Read a sum of parts like ``1d12h30m``; raise ValueError on anything else."""
    if not _WHOLE.fullmatch(text):
        raise ValueError(f"{text!r} is not a duration like '90m', '6h' or '1d12h'")
    seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in _PART.findall(text))
    if seconds <= 0:
        raise ValueError(f"duration {text!r} must be longer than zero")
    if seconds < 1:
        raise ValueError(f"duration {text!r} must be at least one second")
    if seconds > MAX_SECONDS:
        raise ValueError(f"duration {text!r} is longer than {MAX_SECONDS // 86400} days")
    return timedelta(seconds=seconds)


def looks_like_duration(text: str) -> bool:
    return bool(_WHOLE.fullmatch(text))
