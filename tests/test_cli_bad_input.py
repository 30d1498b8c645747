"""Bad input through the real `sched` command: one line, exit 2, no traceback, no row."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from jobs.loading import SpecError
from scheduler.api import Scheduler
from scheduler.config import Settings
from scheduler.store import Store
from tests.conftest import Cli

CASES = {
    "malformed-yaml": ("run: [unclosed\nname: x\n", r"line \d+: malformed YAML"),
    "unknown-field": ("run: echo hi\ncolour: blue\n", r": colour: unknown field"),
    "nested-unknown": (
        "run: echo hi\nconstraints:\n  max_price_per_hr: 3\n",
        r": constraints\.max_price_per_hr: unknown field",
    ),
    "accel-zero": (
        "run: echo hi\nresources:\n  accelerators: A100:zero\n",
        r": resources\.accelerators: count 'zero' in 'A100:zero' must be a positive whole number",
    ),
    "negative-price": (
        "run: echo hi\nconstraints:\n  max_price_per_hour: -2\n",
        r": constraints\.max_price_per_hour: .*greater than or equal to 0",
    ),
    "missing-run": ("name: x\nresources:\n  cpus: 1\n", r": run: required field is missing"),
    "past-deadline": (
        "run: echo hi\nconstraints:\n  deadline: '2020-01-01T00:00:00Z'\n",
        r": constraints\.deadline: deadline 2020-01-01T00:00:00\+00:00 is in the past",
    ),
    "not-a-mapping": ("- run: echo hi\n", r": the spec must be a mapping"),
}


def _rows(home: Path) -> int:
    db = home / "sched.db"
    return Store(f"sqlite:///{db}").count_jobs() if db.exists() else 0


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_spec_is_one_line_exit_2_and_no_row(case: str, cli: Cli, home: Path) -> None:
    text, pattern = CASES[case]
    path = home / f"{case}.yaml"
    path.write_text(text)
    for command in ("submit", "plan"):
        result = cli(command, str(path))
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr + result.stdout
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith(f"error: {path}: ")
        assert re.search(pattern, lines[0]), lines[0]
        assert result.stdout == ""
    assert _rows(home) == 0


def test_missing_file(cli: Cli, home: Path) -> None:
    result = cli("submit", str(home / "nope.yaml"))
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: {home / 'nope.yaml'}: file does not exist"
    assert _rows(home) == 0


def test_bad_input_keeps_what_is_stored(cli: Cli, home: Path) -> None:
    good = home / "good.yaml"
    good.write_text("name: keep\nrun: echo hi\n")
    assert cli("submit", "--queue", str(good)).returncode == 0
    bad = home / "bad.yaml"
    bad.write_text("run: echo hi\nresources:\n  accelerators: A100:zero\n")
    assert cli("submit", str(bad)).returncode == 2
    listed = cli("list", "--json")
    assert listed.returncode == 0
    assert '"name": "keep"' in listed.stdout
    assert _rows(home) == 1


def test_unknown_job_and_usage_errors_exit_2(cli: Cli) -> None:
    for args in (("status", "999"), ("logs", "999"), ("cancel", "999"), ("events", "999")):
        result = cli(*args)
        assert result.returncode == 2, args
        assert result.stderr.strip() == "error: no job 999"
    result = cli("status", "not-a-number")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert cli("frobnicate").returncode == 2


def test_bad_setting_names_the_variable(cli: Cli) -> None:
    cli.env["SCHED_RAY_PORT"] = "abc"
    result = cli("list")
    assert result.returncode == 2
    assert result.stderr.startswith("error: SCHED_RAY_PORT: ")
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"SCHED_LAUNCH_CLOUDS": "aws"}, "SCHED_AWS_IMAGE"),
        ({"SCHED_LAUNCH_CLOUDS": "gcp", "SCHED_GCP_IMAGE": "img"}, "SCHED_GCP_PROJECT"),
        ({"SCHED_LAUNCH_CLOUDS": "gcp", "SCHED_GCP_PROJECT": "p"}, "SCHED_GCP_IMAGE"),
        ({"SCHED_LAUNCH_CLOUDS": "aws,azure"}, "SCHED_LAUNCH_CLOUDS"),
        ({"SCHED_CLUSTER_ADDRESS": "http://{host}:8265"}, "SCHED_CLUSTER_ADDRESS"),
        ({"SCHED_IDLE_STOP": "-1"}, "SCHED_IDLE_STOP"),
    ],
)
def test_cloud_launch_settings_are_checked_before_anything_is_stored(
    cli: Cli, home: Path, env: dict[str, str], named: str
) -> None:
    cli.env.update(env)
    result = cli("submit", "configs/examples/quickstart.yaml")
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: {named}: ")
    assert len(result.stderr.strip().splitlines()) == 1
    assert not any(home.iterdir()), "a bad setting must not create the database"


_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=12)
)
_keys = st.sampled_from(
    [
        "name",
        "run",
        "workdir",
        "env",
        "resources",
        "accelerators",
        "any_of",
        "cpus",
        "num_nodes",
        "market",
        "constraints",
        "deadline",
        "max_price_per_hour",
        "clouds",
        "data",
        "inputs",
        "uri",
        "region",
        "size_gb",
        "checkpoint",
        "tags",
        "priority",
        "estimated_hours",
    ]
) | st.text(max_size=6)
_garbage = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_keys, inner, max_size=5),
    max_leaves=20,
)


@hsettings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.dictionaries(_keys, _garbage, max_size=6) | _garbage)
def test_garbage_specs_never_traceback_and_never_write_a_row(
    data: object, settings: Settings
) -> None:
    """Through the Python API (the CLI is a thin layer on it): a SpecError or a stored job."""
    scheduler = Scheduler(settings)
    before = scheduler.store.count_jobs()
    try:
        scheduler.submit(data, start=False)  # type: ignore[arg-type]
    except SpecError as exc:
        assert "\n" not in str(exc)
        assert scheduler.store.count_jobs() == before
    else:
        assert scheduler.store.count_jobs() == before + 1
    finally:
        scheduler.close()


@pytest.mark.parametrize("path", ["\x00", "a\nb", "x\ry"])
def test_unprintable_spec_paths_give_a_one_line_spec_error(settings: Settings, path: str) -> None:
    """Once: a NUL in the path escaped as ValueError, and a newline split the message."""
    scheduler = Scheduler(settings)
    with pytest.raises(SpecError) as info:
        scheduler.submit(path, start=False)
    assert "\n" not in str(info.value) and "\r" not in str(info.value)
    assert scheduler.list(refresh=False) == []
