"""The one rule for mandatory cost tags, shared by submit, budgets and the audit."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def missing_tags(tags: Mapping[str, object], required: Sequence[str]) -> list[str]:
    """Required keys that are absent or blank: an empty ``team`` names no team to ask."""
    return [key for key in required if not str(tags.get(key, "")).strip()]
