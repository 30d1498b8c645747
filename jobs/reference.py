"""The README's job-spec field table, generated from the models' own descriptions.

``python -m jobs.reference`` prints it; ``python -m jobs.reference --write README.md``
replaces the table between the markers. A test fails when the README drifts.
"""

from __future__ import annotations

import sys
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from jobs.spec import AcceleratorChoice, JobSpec

BEGIN = "<!-- BEGIN FIELD TABLE (python -m jobs.reference --write README.md) -->"
END = "<!-- END FIELD TABLE -->"

# Shown as their YAML shape instead of being expanded field by field.
_LEAF_MODELS: set[type[BaseModel]] = {AcceleratorChoice}


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in typing.get_args(annotation):
        found.extend(_models_in(arg))
    return found


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _type_name(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        names = [_type_name(a) for a in typing.get_args(annotation) if a is not type(None)]
        return " / ".join(names)
    if origin is typing.Literal:
        return " / ".join(str(a) for a in typing.get_args(annotation))
    if origin is list:
        return f"list[{_type_name(typing.get_args(annotation)[0])}]"
    if origin is dict:
        return "map"
    if isinstance(annotation, type):
        if annotation in _LEAF_MODELS:
            return "accelerators"
        if issubclass(annotation, BaseModel):
            return "mapping"
        if hasattr(annotation, "__members__"):
            return " / ".join(m.value for m in annotation.__members__.values())
        return {"str": "string", "float": "number", "int": "integer", "datetime": "timestamp"}.get(
            annotation.__name__, annotation.__name__
        )
    return str(annotation)


def _default(field: Any) -> str:
    if field.is_required():
        return "**required**"
    if field.default is PydanticUndefined or field.default is None:
        return ""
    value = getattr(field.default, "value", field.default)
    return f"`{value}`"


def rows(model: type[BaseModel] = JobSpec, prefix: str = "") -> list[tuple[str, str, str, str]]:
    out: list[tuple[str, str, str, str]] = []
    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        nested = [m for m in _models_in(field.annotation) if m not in _LEAF_MODELS]
        out.append((path, _type_name(field.annotation), _default(field), field.description or ""))
        for sub in nested:
            suffix = "[]." if typing.get_origin(field.annotation) is list else "."
            out.extend(rows(sub, f"{path}{suffix}"))
    return out


def table() -> str:
    lines = ["| field | type | default | meaning |", "|---|---|---|---|"]
    for path, kind, default, description in rows():
        lines.append(f"| `{path}` | {kind} | {default} | {description.replace('|', '/')} |")
    return "\n".join(lines)


def splice(readme: str) -> str:
    head, _, rest = readme.partition(BEGIN)
    _, _, tail = rest.partition(END)
    return f"{head}{BEGIN}\n{table()}\n{END}{tail}"


def main(argv: list[str]) -> None:
    if len(argv) == 2 and argv[0] == "--write":
        path = Path(argv[1])
        path.write_text(splice(path.read_text()))
    else:
        print(table())


if __name__ == "__main__":
    main(sys.argv[1:])
