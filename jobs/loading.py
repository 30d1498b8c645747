"""Turning YAML files and dicts into a JobSpec, with errors a person can act on.

Every failure becomes one ``SpecError`` line naming the file and the field path, so
the CLI can print it and exit 2 without a traceback.
"""

from __future__ import annotations

import reprlib
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from jobs import strict_yaml
from jobs.secrets import Keyring
from jobs.spec import JobSpec

# A spec has tens of values; YAML aliases can make a few lines stand for billions, which
# validation, error messages and the stored JSON would all expand.
MAX_VALUES = 20_000
MAX_MESSAGE = 240  # characters of the reason in an error line; the file and field come first


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
    message = _clip(message)
    return SpecError(f"{source}: {_field_path(tuple(first['loc']), data)}: {message}{more}")


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother = 3, 40, 40


def _clip(text: str) -> str:
    """One line, and short: validators quote the input, which can be any size."""
    text = " ".join(text.split())
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 3] + "..."


def _short(value: Any) -> str:
    """A bounded repr: the input may be huge, deeply nested or an int too long to print."""
    try:
        text = _REPR.repr(value)
    except ValueError:  # an int past sys.get_int_max_str_digits()
        text = f"an integer of {abs(value).bit_length()} bits"
    return text if len(text) <= 40 else text[:37] + "..."


def parse_spec(
    data: Any,
    *,
    source: str = "<spec>",
    now: datetime,
    base_dir: Path | None = None,
    keyring: Callable[[], Keyring] | None = None,
) -> JobSpec:
    """Validate a mapping; ``now`` judges timestamps, ``base_dir`` anchors ``workdir``,
    ``keyring`` seals ``{secret: ...}`` values (default: this process's key)."""
    if not isinstance(data, dict):
        raise SpecError(
            f"{source}: the spec must be a mapping of fields, got {type(data).__name__}"
        )
    try:
        context: dict[str, Any] = {"now": now}
        if keyring is not None:
            context["keyring"] = keyring
        spec = JobSpec.model_validate(data, context=context)
    except ValidationError as exc:
        raise _first_error(source, exc, data) from None
    except (ValueError, TypeError, RecursionError, OverflowError) as exc:
        raise SpecError(f"{source}: {_clip(str(exc))}") from None
    if spec.workdir is not None:
        try:
            workdir = Path(spec.workdir).expanduser()
        except RuntimeError as exc:  # '~nobody/x': no such user
            raise SpecError(f"{source}: workdir: {exc}") from None
        if not workdir.is_absolute() and base_dir is not None:
            workdir = base_dir / workdir
        try:
            found = workdir.is_dir()  # False for most errors, but not a name too long
            resolved = workdir.resolve()
        except OSError as exc:
            raise SpecError(f"{source}: workdir: {exc.strerror or exc}") from None
        if not found:
            raise SpecError(f"{source}: workdir: directory {str(workdir)!r} does not exist")
        spec = spec.model_copy(update={"workdir": str(resolved)})
    return spec


def load_spec(
    path: str | Path, *, now: datetime, keyring: Callable[[], Keyring] | None = None
) -> JobSpec:
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
        data = strict_yaml.load(text, max_values=MAX_VALUES, exact_marks=True)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError(f"{source}: {where}malformed YAML: {_clip(str(problem))}") from None
    except RecursionError:
        raise SpecError(f"{source}: malformed YAML: nested too deeply") from None
    except (ValueError, TypeError, OverflowError) as exc:
        # PyYAML builds dates itself: 'deadline: 2026-13-01' fails outside YAMLError.
        raise SpecError(f"{source}: malformed YAML value: {_clip(str(exc))}") from None
    if isinstance(data, dict) and data.get("name") is None:  # absent or `name:` left empty
        data = {**data, "name": _default_name(path)}
    return parse_spec(data, source=source, now=now, base_dir=path.parent, keyring=keyring)


def _default_name(path: Path) -> str:
    stem = "".join(c if c.isalnum() or c in "-_." else "-" for c in path.stem).strip("-._")
    return (stem or "job")[:63]
