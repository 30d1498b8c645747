"""Mandatory cost tags: a job without them is refused before anything is stored."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jobs.loading import SpecError
from scheduler.api import Scheduler
from scheduler.config import load_settings
from tests.conftest import Cli

FULL = {
    "team": "nlp",
    "project": "llama",
    "environment": "research",
    "cost_center": "cc-1",
    "owner": "alice",
}


def write(home: Path, tags: dict[str, str]) -> Path:
    spec = home / "job.yaml"
    spec.write_text(json.dumps({"name": "tagged", "run": "echo hi", "tags": tags}))
    return spec


def test_the_cli_refuses_a_job_missing_default_tags(cli: Cli, home: Path) -> None:
    del cli.env["SCHED_REQUIRED_TAGS"]  # the default set: team, project, environment, ...
    spec = write(home, {"team": "nlp", "owner": " "})
    result = cli("submit", "--queue", str(spec))
    assert result.returncode == 2
    assert result.stderr == (
        f"error: {spec}: tags: missing required tags project, environment, cost_center, owner"
        " (SCHED_REQUIRED_TAGS=team,project,environment,cost_center,owner)\n"
    )
    assert cli("list", "--json").stdout.strip() == "[]"
    accepted = cli("submit", "--queue", str(write(home, FULL)))
    assert accepted.returncode == 0, accepted.stderr
    [job] = json.loads(cli("list", "--json").stdout)
    assert job["tags"] == FULL


def test_the_required_set_is_configurable(home: Path) -> None:
    s = Scheduler(load_settings({"SCHED_HOME": str(home), "SCHED_REQUIRED_TAGS": "team"}))
    with pytest.raises(SpecError, match=r"^tags: missing required tag team \("):
        s.submit({"name": "x", "run": "echo", "tags": {"owner": "bob"}}, start=False)
    assert s.store.count_jobs() == 0
    job = s.submit({"name": "x", "run": "echo", "tags": {"team": "a"}}, start=False)
    assert s.get(job.id, refresh=False).tags == {"team": "a"}
    none = Scheduler(load_settings({"SCHED_HOME": str(home), "SCHED_REQUIRED_TAGS": "none"}))
    none.submit({"name": "untagged", "run": "echo"}, start=False)
    assert none.store.count_jobs() == 2
    s.close()
    none.close()
