"""The README's field table is generated from the spec models; it must not drift."""

from __future__ import annotations

from jobs.reference import BEGIN, END, rows, splice, table
from tests.conftest import REPO


def test_readme_field_table_matches_the_models() -> None:
    readme = (REPO / "README.md").read_text()
    assert BEGIN in readme and END in readme
    assert splice(readme) == readme, "run: python -m jobs.reference --write README.md"


def test_every_field_is_documented() -> None:
    undocumented = [path for path, _, _, description in rows() if not description]
    assert undocumented == []
    assert "`resources.accelerators`" in table()
    assert "`data.inputs[].size_gb`" in table()
