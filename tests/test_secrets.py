"""Secrets and access: secret env values reach the job and nothing else we keep or print;
YAML is loaded safely; no value is pasted into a shell; the key file is the owner's alone."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import sqlite3
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from jobs.lifecycle import JobState
from jobs.loading import SpecError, load_spec
from jobs.secrets import (
    KEY_ENV,
    KEY_FILE,
    FromEnv,
    Keyring,
    Sealed,
    SecretError,
    new_key,
    process_keyring,
    resolve_env,
)
from jobs.spec import JobSpec
from providers.config_files import read_yaml
from providers.local import LocalRayCluster, LocalRayConfig
from providers.network import load_network_prices
from providers.ray_bootstrap import startup_script
from scheduler.api import Scheduler
from scheduler.cli_views import plan_json
from scheduler.config import Settings, load_settings
from scheduler.job_env import runtime_env
from scheduler.placement import plan
from scheduler.pricebook import Refresh
from scheduler.records import AttemptRecord, JobRecord
from tests.conftest import Cli, RayTestCluster
from tests.offerings import offering
from tests.spec_helpers import NOW, error_of
from tests.test_node_bootstrap import Node, stop_agents

SECRET = f"s3cr3t-{uuid.uuid4().hex}"  # unique: "found nowhere" then means something
FROM_ENV = f"hf_{uuid.uuid4().hex}"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def injection(marker: Path) -> str:
    return f'x"; touch {marker}; echo "'


@pytest.fixture
def key(monkeypatch: pytest.MonkeyPatch) -> str:
    """SCHED_SECRET_KEY for this process, so no key file is made anywhere."""
    value = new_key()
    monkeypatch.setenv(KEY_ENV, value)
    return value


# ---- the spec: what is stored and shown ----------------------------------------------------


def test_spec_stores_the_name_and_a_token_and_shows_neither_value() -> None:
    ring = Keyring.generate()
    data = {"run": "x", "env": {"A": 1, "HF": {"from_env": "HF_TOKEN"}, "K": {"secret": SECRET}}}
    spec = JobSpec.model_validate(data, context={"keyring": ring})
    assert spec.env["A"] == "1" and spec.env["HF"] == FromEnv("HF_TOKEN")
    stored = spec.model_dump_json()
    assert SECRET not in stored and SECRET not in repr(spec) and SECRET not in str(spec)
    env = json.loads(stored)["env"]
    assert env["HF"] == {"from_env": "HF_TOKEN"} and set(env["K"]) == {"encrypted"}
    again = JobSpec.model_validate_json(stored)  # the controller reads it back: no key needed
    assert isinstance(again.env["K"], Sealed) and ring.open(again.env["K"]) == SECRET
    shown = spec.model_dump(mode="json", context={"mask_secrets": True})["env"]
    assert shown["K"] == {"secret": "***"} and shown["HF"] == {"from_env": "HF_TOKEN"}


@pytest.mark.parametrize(
    "value",
    [
        {"secert": SECRET},  # misspelt: the secret sits under an unknown key
        {"secret": [SECRET]},
        {"secret": SECRET, "from_env": "X"},
        [SECRET],
        {"from_env": f"{SECRET}!"},
    ],
)
def test_errors_about_env_values_never_repeat_them(value: Any, key: str) -> None:
    message = error_of({"run": "x", "env": {"API_KEY": value}})
    assert message.startswith("job.yaml: env.API_KEY: ")
    assert SECRET not in message
    with pytest.raises(ValidationError) as info:  # pydantic's own message, for API users
        JobSpec.model_validate({"run": "x", "env": {"API_KEY": value}})
    assert SECRET not in str(info.value)


def test_env_written_as_a_list_is_refused_without_quoting_it() -> None:
    message = error_of({"run": "x", "env": [{"API_KEY": {"secret": SECRET}}]})
    assert message == "job.yaml: env: expected a mapping of NAME: value, got a list"


def test_another_fields_error_does_not_show_the_env(key: str) -> None:
    with pytest.raises(ValidationError) as info:
        JobSpec.model_validate({"run": "x", "env": {"1BAD": {"secret": SECRET}}})
    assert SECRET not in str(info.value)
    assert error_of({"run": "x", "env": {"1BAD": {"secret": SECRET}}}).endswith(
        "'1BAD' is not a valid environment variable name"
    )


def test_a_malformed_key_is_one_line_without_the_key() -> None:
    with pytest.raises(SecretError) as info:
        Keyring.parse("not-a-key-at-all", KEY_ENV)
    message = str(info.value)
    assert message.startswith(f"{KEY_ENV} is not a Fernet key") and "\n" not in message
    assert "not-a-key-at-all" not in message


# ---- resolving at provisioning (pure) ------------------------------------------------------


def test_resolve_env_opens_and_reads_and_names_what_is_missing() -> None:
    ring = Keyring.generate()
    env = {"K": ring.seal(SECRET), "HF": FromEnv("HF_SRC"), "A": "plain"}
    assert resolve_env(env, {"HF_SRC": FROM_ENV}, lambda: ring) == {
        "K": SECRET,
        "HF": FROM_ENV,
        "A": "plain",
    }
    with pytest.raises(SecretError, match=r"^env HF: from_env HF_SRC is not set in the"):
        resolve_env(env, {}, lambda: ring)
    with pytest.raises(SecretError, match=r"^env K: cannot decrypt it with other: not the key"):
        resolve_env(env, {"HF_SRC": "x"}, lambda: Keyring.generate("other"))
    assert resolve_env({"A": "a"}, {}, lambda: pytest.fail("no key needed")) == {"A": "a"}


# ---- the key file --------------------------------------------------------------------------


def test_key_file_is_created_0600_whatever_the_umask_and_reused(tmp_path: Path) -> None:
    environ = {"SCHED_HOME": str(tmp_path / "home")}
    old = os.umask(0)
    try:
        ring = process_keyring(environ)
    finally:
        os.umask(old)
    path = tmp_path / "home" / KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert process_keyring(environ).open(ring.seal("v")) == "v"  # the same key next time
    assert [p.name for p in path.parent.iterdir()] == [KEY_FILE]  # no temp file left


def test_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    environ = {"SCHED_HOME": str(tmp_path)}
    process_keyring(environ)
    (tmp_path / KEY_FILE).chmod(0o644)
    with pytest.raises(SecretError, match=r"is readable by others \(mode 0644\): chmod 600"):
        process_keyring(environ)


def test_opening_never_makes_a_new_key(tmp_path: Path) -> None:
    with pytest.raises(SecretError, match="no key to decrypt with"):
        process_keyring({"SCHED_HOME": str(tmp_path)}, create=False)
    assert not (tmp_path / KEY_FILE).exists()


def test_local_ray_does_not_pass_the_key_to_jobs(key: str) -> None:
    env = LocalRayCluster(LocalRayConfig())._env()
    assert KEY_ENV not in env and key not in env.values()


# ---- end to end: the CLI on a real Ray cluster ---------------------------------------------


def write_spec(path: Path, out: Path, marker: Path) -> Path:
    run = (
        'printf %s "$API_KEY" | sha256sum; printf %s "$HF_TOKEN" | sha256sum;'
        f' printf %s "$INJECT" > {shlex.quote(str(out))}'
    )
    spec = {
        "name": "secrets",
        "run": run,
        "env": {
            "API_KEY": {"secret": SECRET},
            "HF_TOKEN": {"from_env": "HF_SOURCE"},
            "INJECT": injection(marker),
        },
        "tags": {"team": injection(marker)},
    }
    path.write_text(yaml.safe_dump(spec))
    return path


def files_holding(root: Path, text: str) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and text.encode() in p.read_bytes()]


def test_secrets_reach_the_job_and_nothing_we_keep_or_print(
    ray_cli: Cli, ray_cluster: RayTestCluster, home: Path, tmp_path: Path
) -> None:
    out, marker = tmp_path / "inject.out", tmp_path / "pwned"
    spec = write_spec(tmp_path / "job.yaml", out, marker)  # the user's file, outside SCHED_HOME
    ray_cli.env["HF_SOURCE"] = FROM_ENV
    result = ray_cli("submit", str(spec), "--wait")
    job = result.stdout.strip()
    assert result.returncode == 0, result.stderr

    logs = ray_cli("logs", job).stdout
    assert sha(SECRET) in logs and sha(FROM_ENV) in logs  # the job saw the right values
    assert out.read_text() == injection(marker) and not marker.exists()  # literal, not run
    status = ray_cli("status", job, "--json").stdout
    assert json.loads(status)["state"] == "SUCCEEDED"
    shown = [logs, status, ray_cli("events", job).stdout, result.stderr]
    for value in (SECRET, FROM_ENV):
        assert not any(value in text for text in shown)
        assert files_holding(home, value) == []  # database (and WAL), key file, checkpoints
    assert (home / "sched.db").exists()
    [(stored,)] = sqlite3.connect(home / "sched.db").execute("SELECT spec_json FROM job")
    env = json.loads(stored)["env"]
    assert env["HF_TOKEN"] == {"from_env": "HF_SOURCE"} and set(env["API_KEY"]) == {"encrypted"}
    assert stat.S_IMODE((home / KEY_FILE).stat().st_mode) == 0o600

    # The caveat in the README: Ray keeps the runtime_env, values included, with the job.
    from ray.job_submission import JobSubmissionClient

    info = JobSubmissionClient(ray_cluster.address).get_job_info(
        json.loads(status)["submission_id"]
    )
    assert info.runtime_env["env_vars"]["API_KEY"] == SECRET


def test_a_malformed_key_at_submit_is_one_line_and_stores_nothing(
    cli: Cli, home: Path, tmp_path: Path
) -> None:
    spec = write_spec(tmp_path / "job.yaml", tmp_path / "out", tmp_path / "pwned")
    cli.env[KEY_ENV] = "not-a-key-at-all"
    result = cli("submit", str(spec))
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"error: {spec}: env.API_KEY: {KEY_ENV} is not a Fernet key")
    assert "not-a-key-at-all" not in line and SECRET not in line
    db = home / "sched.db"
    assert not db.exists() or sqlite3.connect(db).execute(
        "SELECT count(*) FROM job"
    ).fetchone() == (0,)


@pytest.fixture
def api(ray_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Scheduler]:
    monkeypatch.delenv("HF_SOURCE", raising=False)
    s = Scheduler(ray_settings)
    yield s
    s.close()


def last_reason(s: Scheduler, job_id: int) -> str:
    return s.events(job_id)[-1].reason


def test_another_key_at_provisioning_fails_the_job_with_one_line(
    api: Scheduler, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(KEY_ENV, new_key())
    monkeypatch.setenv("HF_SOURCE", FROM_ENV)
    job = api.submit(write_spec(tmp_path / "job.yaml", tmp_path / "o", tmp_path / "p"), start=False)
    monkeypatch.setenv(KEY_ENV, new_key())  # `sched controller` started with another key
    api.reconcile([job.id])
    assert api.get(job.id).state is JobState.FAILED
    reason = last_reason(api, job.id)
    assert reason == (
        f"could not submit to Ray: env API_KEY: cannot decrypt it with {KEY_ENV}:"
        " not the key it was encrypted with"
    )


def test_a_missing_variable_at_provisioning_fails_the_job_with_one_line(
    api: Scheduler, key: str, tmp_path: Path
) -> None:
    spec = write_spec(tmp_path / "job.yaml", tmp_path / "o", tmp_path / "p")
    plan = plan_json(api.plan(spec, refresh=Refresh.NEVER), top=3, launchable={"local"})
    assert plan["placements"] and SECRET not in json.dumps(plan)  # what `sched plan --json` prints
    job = api.submit(spec)
    assert api.get(job.id).state is JobState.FAILED
    assert last_reason(api, job.id) == (
        "could not submit to Ray: env HF_TOKEN: from_env HF_SOURCE is not set in the"
        " environment of the process handing the job to Ray"
    )


# ---- YAML is loaded safely -----------------------------------------------------------------


@pytest.mark.parametrize(
    "document",
    [
        "!!python/object/apply:os.system ['touch {marker}']\n",
        "run: !!python/object/apply:os.system ['touch {marker}']\n",
        "run: x\nenv: {{A: !!python/object/new:os.system ['touch {marker}']}}\n",
    ],
)
def test_python_tags_in_yaml_are_refused_and_nothing_runs(document: str, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "job.yaml"
    path.write_text(document.format(marker=marker))
    with pytest.raises(SpecError) as info:
        load_spec(path, now=NOW)
    assert re.fullmatch(
        rf"{re.escape(str(path))}: line \d: malformed YAML: could not determine a constructor"
        r" for the tag 'tag:yaml.org,2002:python/object/(apply|new):os.system'",
        str(info.value),
    )
    with pytest.raises(ValueError, match="not valid YAML"):  # the shipped tables' reader
        read_yaml(path)
    assert not marker.exists()


# ---- no value is pasted into a shell -------------------------------------------------------


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    n = Node(tmp_path)
    try:
        yield n
    finally:
        stop_agents(n.state_dir)


def test_startup_script_keeps_every_value_literal(node: Node, tmp_path: Path) -> None:
    """Once (ray_bootstrap.py): the cluster name went raw into the script's comment line,
    so a newline in it started a command."""
    marker = tmp_path / "pwned"
    cluster = f"c\ntouch {marker}\n{injection(marker)}"
    head_ip = f"10.0.0.5{injection(marker)}"
    version = f"2.0'; touch {marker}; '"
    script = startup_script(
        node.boot(ray_version=version), cluster=cluster, cloud="aws", head_ip=head_ip
    )
    result = node.run(script)
    assert result.returncode == 0, result.stderr
    assert not marker.exists()
    # The install line runs only on an image without Ray; its argument is one literal word.
    [install] = [line for line in script.splitlines() if "pip install" in line]
    assert shlex.split(install)[-1] == f"ray[default]=={version}"
    [call] = node.ray_calls()
    resources = json.dumps({f"sched-cluster-{cluster}": 1})
    assert call[1:] == [
        "start",
        f"--address={head_ip}:6379",
        f"--resources={resources}",
        "--disable-usage-stats",
    ]


def test_the_key_file_is_the_one_beside_the_schedulers_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Scheduler built for another home (a pipeline pointing at the team's directory)
    seals with that home's key and its jobs open with it, whatever SCHED_HOME says."""
    monkeypatch.delenv(KEY_ENV, raising=False)
    monkeypatch.setenv("SCHED_HOME", str(tmp_path / "process"))
    team = tmp_path / "team"
    settings = load_settings({"SCHED_HOME": str(team), "SCHED_REQUIRED_TAGS": "none"})
    s = Scheduler(settings)
    try:
        spec = s.load({"run": "python train.py", "env": {"K": {"secret": SECRET}}})
    finally:
        s.close()
    assert (team / KEY_FILE).is_file() and not (tmp_path / "process").exists()
    sealed = spec.env["K"]
    assert isinstance(sealed, Sealed) and SECRET not in spec.model_dump_json()
    here = offering(cloud="local", region="local", instance_type="local", price=0.0)
    placement = plan(spec, [here], load_network_prices()).placements[0]
    job = JobRecord(
        id=1, name="j", state="PROVISIONING", priority="standard", spec_json="{}",
        submitted_at=NOW, updated_at=NOW,
    )  # fmt: skip
    attempt = AttemptRecord(
        job_id=1, number=1, state="STARTING", cloud="local", region="local", zone="local",
        instance_type="local", market="on_demand", price_per_hour=0.0, num_nodes=1,
        placement_json=placement.model_dump_json(), submission_id="s", created_at=NOW,
    )  # fmt: skip
    settings.checkpoint_root.mkdir(parents=True, exist_ok=True)
    env = runtime_env(settings, job, attempt, spec, environ={})["env_vars"]
    assert env["K"] == SECRET
