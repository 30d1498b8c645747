"""Reading the shipped YAML tables (snapshot, Spot Advisor, egress rates) into models.

Every table is user-editable, so every failure must name the file and the entry in one
line, the same way for all of them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from jobs import strict_yaml

M = TypeVar("M", bound=BaseModel)


MAX_VALUES = 1_000_000
"""Values a table may hold once YAML aliases are expanded: far beyond any real table, far
below what a few lines of aliases can stand for."""


def read_yaml(path: Path, error: type[ValueError] = ValueError) -> Any:
    """Plain data, strictly (jobs/strict_yaml.py: a key given twice is refused, not won by
    the last); ``error`` says "<file>: ..." in one line."""
    try:
        return strict_yaml.load(path.read_text(encoding="utf-8"), max_values=MAX_VALUES)
    except OSError as exc:
        raise error(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:
        # YAML's own types raise these: a date like 2026-13-01, nesting too deep.
        raise error(f"{path}: not valid YAML: {' '.join(str(exc).split())[:200]}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise error(f"{path}: not valid YAML: {where}{' '.join(str(problem).split())}") from None


def load_model(path: Path, model: type[M], error: type[ValueError] = ValueError) -> M:
    """The file as ``model``; ``error`` says "<file>: <field.path>: <why>"."""
    data = read_yaml(path, error)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        # A nested model can repeat its field name ("tiers.tiers"): say it once.
        loc = [str(p) for i, p in enumerate(err["loc"]) if i == 0 or p != err["loc"][i - 1]]
        where = ".".join(loc)
        msg = err["msg"].removeprefix("Value error, ")
        raise error(f"{path}: {where}: {msg}" if where else f"{path}: {msg}") from None
