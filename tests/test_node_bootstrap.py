"""Cloud node bring-up and the interruption path: the startup script run for real with a fake
`ray`, the node agent against a fake metadata service, and the agent stopping a real Ray
job with SIGTERM so it can write its last checkpoint."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from providers import node_agent
from providers.ray_bootstrap import AGENT_SOURCE, STOP_WAIT_S, Bootstrap, startup_script
from tests.conftest import REPO, RayTestCluster
from tests.fakes.http import FakeHttpServer, Request
from tests.fakes.imds import with_token_route

DEAD_METADATA = "http://127.0.0.1:9"  # nothing listens: the agent keeps retrying
ACTION_PATH = "/latest/meta-data/spot/instance-action"
PREEMPTED_PATH = "/computeMetadata/v1/instance/preempted"
TERMINATE = {"action": "terminate", "time": "2026-03-01T12:02:00Z"}


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


# -- the startup script, run for real -------------------------------------------------------------


def agent_pids(state_dir: Path) -> list[int]:
    """The node agents started from ``state_dir`` (unique to the test, so only ours)."""
    found = subprocess.run(
        ["pgrep", "-f", f"{state_dir}/node_agent.py"], capture_output=True, text=True
    )
    pids = [int(p) for p in found.stdout.split()]
    return [p for p in pids if str(state_dir).encode() in _cmdline(p)]


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def stop_agents(state_dir: Path) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in agent_pids(state_dir):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + 5
        while agent_pids(state_dir) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not agent_pids(state_dir):
            return


class Node:
    """A fake machine: a temp dir with a fake `ray` first on PATH and the real python3."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.bin = root / "bin"
        self.bin.mkdir()
        self.calls_file = root / "ray-calls"
        self.state_dir = root / "state"
        ray = self.bin / "ray"
        # One line per call: the stop wait Ray would see, then each argument.
        ray.write_text(
            "#!/bin/sh\n"
            "{ printf 'wait=%s' \"${RAY_JOB_STOP_WAIT_TIME_S:-unset}\"; printf '\\t%s' \"$@\";"
            f" printf '\\n'; }} >> '{self.calls_file}'\n"
            "exit 0\n"
        )
        ray.chmod(0o755)
        (self.bin / "python3").symlink_to(sys.executable)

    def boot(self, **fields: Any) -> Bootstrap:
        return Bootstrap(
            state_dir=str(self.state_dir),
            metadata_url={"aws": DEAD_METADATA, "gcp": DEAD_METADATA},
            agent_interval_s=0.1,
            **fields,
        )

    def run(self, script: str) -> subprocess.CompletedProcess[str]:
        path = self.root / "startup.sh"
        path.write_text(script)
        env = {**os.environ, "PATH": f"{self.bin}{os.pathsep}{os.environ['PATH']}"}
        env.pop("RAY_JOB_STOP_WAIT_TIME_S", None)
        return subprocess.run(
            ["bash", str(path)],
            capture_output=True,
            text=True,
            env=env,
            timeout=30,
            stdin=subprocess.DEVNULL,
        )

    def ray_calls(self) -> list[list[str]]:
        if not self.calls_file.exists():
            return []
        return [line.split("\t") for line in self.calls_file.read_text().splitlines()]

    def agent_log(self) -> str:
        log = self.state_dir / "agent.log"
        return log.read_text() if log.exists() else ""


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    n = Node(tmp_path)
    try:
        yield n
    finally:
        stop_agents(n.state_dir)
        assert agent_pids(n.state_dir) == [], "a node agent was left running"


def check_agent_started(n: Node, cloud: str, jobs_api: str) -> None:
    """The agent runs from the copied file, with the script's arguments, and polls."""
    [pid] = wait_for(lambda: agent_pids(n.state_dir), 10, "the node agent to start")
    args = _cmdline(pid).decode().split("\0")[:-1]
    assert args[1:] == [
        f"{n.state_dir}/node_agent.py",
        "--cloud",
        cloud,
        "--metadata",
        DEAD_METADATA,
        "--ray",
        jobs_api,
        "--interval",
        "0.1",
    ]
    # It cannot reach the metadata service, says so, and keeps polling (it is still alive).
    wait_for(lambda: n.agent_log().count("sched-agent: metadata:") >= 2, 10, "agent polls")
    assert agent_pids(n.state_dir) == [pid]


@pytest.mark.parametrize("cloud", ["aws", "gcp"])
def test_head_script_starts_ray_head_and_the_agent(node: Node, cloud: str) -> None:
    boot = node.boot(gcs_port=6380, dashboard_port=8266)
    result = node.run(startup_script(boot, cluster="c1", cloud=cloud))
    assert result.returncode == 0, result.stderr
    assert (node.state_dir / "node_agent.py").read_text() == AGENT_SOURCE.read_text()
    [call] = node.ray_calls()
    assert call == [
        f"wait={STOP_WAIT_S[cloud]}",
        "start",
        "--head",
        "--port=6380",
        "--dashboard-host=0.0.0.0",
        "--dashboard-port=8266",
        '--resources={"sched-cluster-c1": 1}',
        "--disable-usage-stats",
    ]
    check_agent_started(node, cloud, "http://127.0.0.1:8266")


def test_worker_script_joins_the_head_and_starts_the_agent(node: Node) -> None:
    script = startup_script(node.boot(), cluster="c1", cloud="aws", head_ip="10.0.0.5")
    result = node.run(script)
    assert result.returncode == 0, result.stderr
    assert (node.state_dir / "node_agent.py").read_text() == AGENT_SOURCE.read_text()
    [call] = node.ray_calls()
    assert call == [
        "wait=100",
        "start",
        "--address=10.0.0.5:6379",
        '--resources={"sched-cluster-c1": 1}',
        "--disable-usage-stats",
    ]
    check_agent_started(node, "aws", "http://10.0.0.5:8265")


def test_a_failing_ray_start_fails_the_script_before_the_agent(node: Node) -> None:
    (node.bin / "ray").write_text("#!/bin/sh\necho 'ray: no GPU driver' >&2\nexit 3\n")
    result = node.run(startup_script(node.boot(), cluster="c1", cloud="aws"))
    assert result.returncode == 3
    assert "no GPU driver" in result.stderr
    assert agent_pids(node.state_dir) == []
    assert not (node.state_dir / "agent.log").exists()


def test_scripts_are_valid_bash_with_each_clouds_stop_wait(tmp_path: Path) -> None:
    boot = Bootstrap(state_dir=str(tmp_path / "state"))
    for cloud, wait in (("aws", 100), ("gcp", 25)):
        for head_ip in (None, "10.0.0.5"):
            script = startup_script(boot, cluster="c9", cloud=cloud, head_ip=head_ip)
            path = tmp_path / f"{cloud}-{head_ip}.sh"
            path.write_text(script)
            checked = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
            assert checked.returncode == 0, checked.stderr
            assert f"\nexport RAY_JOB_STOP_WAIT_TIME_S={wait}\n" in script
            assert f"--metadata {boot.metadata_url[cloud]} " in script
    assert STOP_WAIT_S == {"aws": 100, "gcp": 25}


def test_unknown_cloud_has_no_script() -> None:
    with pytest.raises(ValueError, match="azure"):
        startup_script(Bootstrap(), cluster="c1", cloud="azure")


# -- the node agent against a fake metadata service ----------------------------------------------


@pytest.fixture(scope="module")
def metadata_server() -> Iterator[FakeHttpServer]:
    with FakeHttpServer() as server:
        yield server


@pytest.fixture
def imds(metadata_server: FakeHttpServer) -> FakeHttpServer:
    """IMDSv2: a token route only; each test adds instance-action when it wants one."""
    return with_token_route(metadata_server, b"TOKEN-7")


def test_aws_no_notice_is_none(imds: FakeHttpServer) -> None:
    assert node_agent.aws_instance_action(imds.url) is None  # the fake's 404
    assert node_agent.notice("aws", imds.url + "/") is None
    assert [(r.method, r.path) for r in imds.requests[:2]] == [
        ("PUT", "/latest/api/token"),
        ("GET", ACTION_PATH),
    ]
    assert imds.requests[1].headers.get("x-aws-ec2-metadata-token") == "TOKEN-7"


def test_aws_pending_action_is_returned(imds: FakeHttpServer) -> None:
    def action(req: Request) -> tuple[int, Any]:
        if req.headers.get("x-aws-ec2-metadata-token") != "TOKEN-7":
            return 401, b""
        return 200, TERMINATE

    imds.route("GET", ACTION_PATH, action)
    assert node_agent.aws_instance_action(imds.url) == TERMINATE
    assert node_agent.notice("aws", imds.url) == "aws terminate at 2026-03-01T12:02:00Z"


def test_aws_without_the_token_endpoint_reads_without_a_token(imds: FakeHttpServer) -> None:
    imds.routes.clear()  # PUT /latest/api/token now answers 404: IMDSv1 only
    imds.route("GET", ACTION_PATH, lambda r: {"action": "stop", "time": "t"})
    assert node_agent.aws_instance_action(imds.url) == {"action": "stop", "time": "t"}
    assert "x-aws-ec2-metadata-token" not in imds.requests[-1].headers


@pytest.mark.parametrize("body", [{"action": "terminate"}, {"time": "t"}, ["terminate"], "x"])
def test_aws_action_without_action_and_time_is_an_error(imds: FakeHttpServer, body: Any) -> None:
    imds.route("GET", ACTION_PATH, lambda r: body)
    with pytest.raises(ValueError, match="without action and time"):
        node_agent.aws_instance_action(imds.url)


def test_aws_metadata_errors_are_not_taken_for_no_notice(imds: FakeHttpServer) -> None:
    import urllib.error

    imds.route("GET", ACTION_PATH, lambda r: (500, b"boom"))
    with pytest.raises(urllib.error.HTTPError):
        node_agent.aws_instance_action(imds.url)
    imds.routes.clear()
    imds.route("PUT", "/latest/api/token", lambda r: (403, b"forbidden"))
    with pytest.raises(urllib.error.HTTPError):
        node_agent.aws_instance_action(imds.url)
    with pytest.raises(OSError):
        node_agent.aws_instance_action(DEAD_METADATA, timeout=1)


def test_metadata_is_never_read_through_a_proxy(
    imds: FakeHttpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("http_proxy", DEAD_METADATA)
    monkeypatch.setenv("HTTP_PROXY", DEAD_METADATA)
    imds.route("GET", ACTION_PATH, lambda r: TERMINATE)
    assert node_agent.aws_instance_action(imds.url) == TERMINATE


@pytest.mark.parametrize(
    ("body", "preempted"), [(b"TRUE", True), (b"FALSE", False), (b"true\n", True)]
)
def test_gcp_preempted(metadata_server: FakeHttpServer, body: bytes, preempted: bool) -> None:
    metadata_server.routes.clear()
    metadata_server.requests.clear()
    metadata_server.route("GET", PREEMPTED_PATH, lambda r: body)
    assert node_agent.gcp_preempted(metadata_server.url) is preempted
    assert metadata_server.requests[-1].headers.get("metadata-flavor") == "Google"
    assert node_agent.notice("gcp", metadata_server.url) == ("gcp preempted" if preempted else None)


def test_gcp_garbage_and_silence_are_errors(metadata_server: FakeHttpServer) -> None:
    import urllib.error

    metadata_server.routes.clear()
    metadata_server.route("GET", PREEMPTED_PATH, lambda r: b"<html>captive portal</html>")
    with pytest.raises(ValueError, match="expected TRUE or FALSE"):
        node_agent.gcp_preempted(metadata_server.url)
    metadata_server.routes.clear()  # 404
    with pytest.raises(urllib.error.HTTPError):
        node_agent.notice("gcp", metadata_server.url)


def test_notice_refuses_an_unknown_cloud() -> None:
    with pytest.raises(ValueError, match="unknown cloud 'azure'"):
        node_agent.notice("azure", DEAD_METADATA)


# -- the SIGTERM path on a real Ray ---------------------------------------------------------------


TRAINER = textwrap.dedent(
    """
    import signal, sys, time
    from pathlib import Path

    out = Path(sys.argv[1])
    step = 0

    def on_term(signum, frame):
        out.write_text(f"checkpoint written at step {step}")
        print(f"SIGTERM at step {step}", flush=True)
        sys.exit(0)

    signal.signal(signal.SIGTERM, on_term)
    while True:
        step += 1
        print(f"step {step}", flush=True)
        time.sleep(0.1)
    """
)


def test_an_interruption_notice_stops_the_job_with_sigterm(
    ray_cluster: RayTestCluster, tmp_path: Path
) -> None:
    from ray.job_submission import JobStatus, JobSubmissionClient

    client = JobSubmissionClient(ray_cluster.address)
    trainer = tmp_path / "trainer.py"
    trainer.write_text(TRAINER)
    checkpoint = tmp_path / "last-checkpoint"
    sid = client.submit_job(
        entrypoint=f"python {trainer} {checkpoint}",
        runtime_env={"env_vars": {"RAY_JOB_STOP_WAIT_TIME_S": "100"}},
    )
    agent: subprocess.Popen[str] | None = None
    try:
        wait_for(lambda: client.get_job_status(sid) == JobStatus.RUNNING, 30, "job RUNNING")
        wait_for(lambda: "step 1" in client.get_job_logs(sid), 15, "the job's first step")
        active = JobStatus.PENDING, JobStatus.RUNNING
        running = [j.submission_id for j in client.list_jobs() if j.status in active]
        assert sid in running

        notice = {"given": False}
        with FakeHttpServer() as meta:
            meta.route("PUT", "/latest/api/token", lambda r: (200, b"TOKEN"))
            meta.route("GET", ACTION_PATH, lambda r: TERMINATE if notice["given"] else (404, b""))
            agent = subprocess.Popen(
                [
                    *(sys.executable, "providers/node_agent.py", "--cloud", "aws"),
                    *("--metadata", meta.url, "--ray", ray_cluster.address, "--interval", "0.2"),
                ],
                cwd=REPO,
                env={**os.environ, "RAY_AUTH_MODE": "disabled"},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                stdin=subprocess.DEVNULL,
            )
            # No notice yet: the agent polls and leaves the job alone.
            wait_for(
                lambda: sum(r.path == ACTION_PATH for r in meta.requests) >= 2, 10, "two polls"
            )
            assert agent.poll() is None
            assert client.get_job_status(sid) == JobStatus.RUNNING
            notice["given"] = True
            out, err = agent.communicate(timeout=20)
        assert agent.returncode == 0, err
        assert out.strip() == (
            f"sched-agent: aws terminate at {TERMINATE['time']}:"
            f" stopped {len(running)} job(s): {' '.join(running)}"
        )
        wait_for(lambda: client.get_job_status(sid) == JobStatus.STOPPED, 15, "job STOPPED")
        # The job got SIGTERM and had the time to write its checkpoint before any SIGKILL.
        assert checkpoint.exists(), client.get_job_logs(sid)
        written = checkpoint.read_text()
        assert written.startswith("checkpoint written at step ")
        assert int(written.rsplit(" ", 1)[1]) >= 1
        wait_for(lambda: "SIGTERM at step" in client.get_job_logs(sid), 5, "the handler's log")
    finally:
        if agent is not None and agent.poll() is None:
            agent.kill()
            agent.wait()
        if client.get_job_status(sid) in (JobStatus.PENDING, JobStatus.RUNNING):
            client.stop_job(sid)


def test_a_notice_with_the_jobs_api_down_is_retried_not_dropped() -> None:
    """A worker's agent reaches the head over the network; if it cannot on the first try
    it keeps trying (and says why) instead of exiting and leaving the job to SIGKILL."""
    with FakeHttpServer() as meta:
        meta.route("PUT", "/latest/api/token", lambda r: (200, b"TOKEN"))
        meta.route("GET", ACTION_PATH, lambda r: TERMINATE)
        agent = subprocess.Popen(
            [
                *(sys.executable, "providers/node_agent.py", "--cloud", "aws"),
                *("--metadata", meta.url, "--ray", "http://127.0.0.1:9", "--interval", "0.1"),
            ],
            cwd=REPO,
            env={**os.environ, "RAY_AUTH_MODE": "disabled"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            stdin=subprocess.DEVNULL,
        )
        try:
            with pytest.raises(subprocess.TimeoutExpired):
                agent.wait(timeout=4)
        finally:
            agent.kill()
            _, err = agent.communicate()
    assert err.count("sched-agent: stopping jobs:") >= 2, err
    assert "Traceback" not in err
