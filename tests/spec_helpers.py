"""Parsing specs in tests: one source name, one clock, and the check every error passes."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from jobs.loading import SpecError, parse_spec
from jobs.spec import JobSpec

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
SOURCE = "job.yaml"


def parse(data: Any, **kwargs: Any) -> JobSpec:
    return parse_spec(data, source=SOURCE, now=NOW, **kwargs)


def error_of(data: Any, **kwargs: Any) -> str:
    """The SpecError message for ``data``, checked to be one line naming the source."""
    with pytest.raises(SpecError) as info:
        parse(data, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{SOURCE}: ")
    return message


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path
