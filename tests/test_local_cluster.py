"""`sched up` / `sched down`, an existing cluster by address, and following logs."""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

from providers.local import ExistingRayCluster, LocalMachine, LocalProvider, jobs_api_answers
from scheduler.api import utc_now
from tests.conftest import SCHED, Cli, RayTestCluster, free_port


def test_up_reports_a_running_cluster(ray_cli: Cli, ray_cluster: RayTestCluster) -> None:
    result = ray_cli("up")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"already running: {ray_cluster.address}"


def test_up_and_down_touch_only_their_own_cluster(cli: Cli, ray_cluster: RayTestCluster) -> None:
    temp_dir = tempfile.mkdtemp(prefix="sray-", dir="/tmp")
    cli.env.update(
        {
            "SCHED_RAY_PORT": str(free_port()),
            "SCHED_RAY_DASHBOARD_PORT": str(free_port()),
            "SCHED_RAY_TEMP_DIR": temp_dir,
        }
    )
    address = f"http://127.0.0.1:{cli.env['SCHED_RAY_DASHBOARD_PORT']}"
    up = cli("up")
    assert up.returncode == 0, up.stderr
    assert up.stdout.strip() == f"started: {address}"
    assert jobs_api_answers(address)
    down = cli("down")
    assert down.returncode == 0, down.stderr
    assert down.stdout.strip() == "stopped"
    assert not jobs_api_answers(address)
    assert jobs_api_answers(ray_cluster.address), "down stopped another cluster too"
    assert cli("down").stdout.strip() == "not running"


def test_existing_cluster_by_address_is_used_but_never_stopped(
    cli: Cli, ray_cluster: RayTestCluster, home: Path
) -> None:
    cli.env["SCHED_RAY_ADDRESS"] = ray_cluster.address
    spec = home / "hello.yaml"
    spec.write_text("name: hello\nrun: echo hello-existing\n")
    result = cli("submit", str(spec), "--wait")
    assert result.returncode == 0, result.stderr
    assert "hello-existing" in cli("logs", result.stdout.strip()).stdout
    down = cli("down")
    assert down.returncode == 1
    assert "not managed by sched" in down.stderr
    assert jobs_api_answers(ray_cluster.address)


def test_unreachable_cluster_fails_the_job_with_the_reason(cli: Cli, home: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    cli.env["SCHED_RAY_ADDRESS"] = dead
    spec = home / "hello.yaml"
    spec.write_text("name: hello\nrun: echo hi\n")
    result = cli("submit", str(spec), "--wait")
    assert result.returncode == 1
    status = json.loads(cli("status", result.stdout.strip(), "--json").stdout)
    assert status["state"] == "FAILED"
    assert status["message"] == f"cluster bring-up failed: SCHED_RAY_ADDRESS {dead} does not answer"


def test_logs_follow_streams_until_the_job_ends(ray_cli: Cli, home: Path) -> None:
    spec = home / "ticks.yaml"
    spec.write_text(
        "name: ticks\nrun: for i in 1 2 3; do echo tick-$i; sleep 1; done; echo end-$((1+1))\n"
    )
    job_id = ray_cli("submit", str(spec)).stdout.strip()
    follow = subprocess.run(
        [SCHED, "logs", job_id, "--follow"],
        env=ray_cli.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert follow.returncode == 0, follow.stderr
    lines = [line for line in follow.stdout.splitlines() if line.startswith(("tick-", "end-"))]
    assert lines == ["tick-1", "tick-2", "tick-3", "end-2"]


def test_local_provider_offers_this_machine_at_its_configured_price() -> None:
    machine = LocalMachine(
        hostname="box", vcpus=8, memory_gb=32, gpu_name="L4", gpu_count=2, gpu_memory_gb=24
    )
    nothing_there = ExistingRayCluster(f"http://127.0.0.1:{free_port()}")  # no pools to list
    provider = LocalProvider(cluster=nothing_there, machine=machine, price_per_hour=1.25)
    (offering,) = provider.offerings(utc_now())
    assert offering.instance_type == "local-8cpu-2xL4"
    assert offering.price_per_hour == 1.25
    assert offering.accelerators is not None and offering.accelerators.count == 2
    assert offering.max_nodes == 1
