"""Turning YAML files and dicts into a JobSpec, with errors a person can act on.

Every failure becomes one ``SpecError`` line naming the file and the field path, so
the CLI can print it and exit 2 without a traceback.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from jobs.spec import JobSpec


class SpecError(ValueError):
    """A job spec that cannot be accepted; ``str()`` is the one-line explanation."""


def _field_path(loc: tuple[int | str, ...], data: Any) -> str:
    """Name the field as the user wrote it, walking their data alongside pydantic's loc.

    pydantic puts schema steps in ``loc`` too (union members such as ``str``, validator
    names); those are not in the user's data, so they are left out.
    """
    parts: list[str] = []
    current = data
    for position, item in enumerate(loc):
        last = position == len(loc) - 1
        if isinstance(current, list) and isinstance(item, int) and item < len(current):
            parts.append(f"[{item}]")
            current = current[item]
        elif isinstance(current, dict) and (item in current or last):
            parts.append(("." if parts else "") + _key(item))
            current = current.get(item)
    return "".join(parts) or "(top level)"


def _key(item: int | str) -> str:
    text = str(item)
    return text if text.isprintable() and "." not in text and text.strip() == text else repr(text)


def _first_error(source: str, error: ValidationError, data: Any) -> SpecError:
    # A misspelt field also shows up as the right one "missing": name the misspelling.
    errors = sorted(error.errors(include_url=False), key=lambda e: e["type"] != "extra_forbidden")
    first = errors[0]
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = "unknown field"
    elif first["type"] == "missing":
        message = "required field is missing"
    elif not first["type"].startswith("value_error") and not isinstance(first["input"], dict):
        message += f" (got {_short(first['input'])})"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    message = " ".join(message.split())  # one line, whatever the input held
    return SpecError(f"{source}: {_field_path(tuple(first['loc']), data)}: {message}{more}")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def parse_spec(
    data: Any, *, source: str = "<spec>", now: datetime, base_dir: Path | None = None
) -> JobSpec:
    """Validate a mapping; ``now`` judges timestamps, ``base_dir`` anchors ``workdir``."""
    if not isinstance(data, dict):
        raise SpecError(
            f"{source}: the spec must be a mapping of fields, got {type(data).__name__}"
        )
    try:
        spec = JobSpec.model_validate(data, context={"now": now})
    except ValidationError as exc:
        raise _first_error(source, exc, data) from None
    except (ValueError, TypeError, RecursionError, OverflowError) as exc:
        raise SpecError(f"{source}: {' '.join(str(exc).split())}") from None
    if spec.workdir is not None:
        try:
            workdir = Path(spec.workdir).expanduser()
        except RuntimeError as exc:  # '~nobody/x': no such user
            raise SpecError(f"{source}: workdir: {exc}") from None
        if not workdir.is_absolute() and base_dir is not None:
            workdir = base_dir / workdir
        if not workdir.is_dir():
            raise SpecError(f"{source}: workdir: directory {str(workdir)!r} does not exist")
        spec = spec.model_copy(update={"workdir": str(workdir.resolve())})
    return spec


def load_spec(path: str | Path, *, now: datetime) -> JobSpec:
    """Read a YAML file; the job name defaults to the file's stem."""
    path = Path(path)
    source = str(path) if str(path).isprintable() else repr(str(path))  # errors stay one line
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"{source}: file does not exist") from None
    except IsADirectoryError:
        raise SpecError(f"{source}: is a directory, not a spec file") from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path, or not UTF-8
        raise SpecError(f"{source}: cannot read: {exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError(f"{source}: {where}malformed YAML: {problem}") from None
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:
        # PyYAML builds dates itself: 'deadline: 2026-13-01' fails outside YAMLError.
        raise SpecError(f"{source}: malformed YAML value: {exc}") from None
    if isinstance(data, dict) and "name" not in data:
        data = {"name": _default_name(path), **data}
    return parse_spec(data, source=source, now=now, base_dir=path.parent)


def _default_name(path: Path) -> str:
    stem = "".join(c if c.isalnum() or c in "-_." else "-" for c in path.stem).strip("-._")
    return (stem or "job")[:63]
