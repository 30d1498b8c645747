"""`sched controller` stops cleanly on SIGTERM and refuses bad options."""

from __future__ import annotations

import signal
import subprocess
import time

from tests.conftest import REPO, SCHED, Cli


def test_sigterm_stops_the_loop_cleanly(cli: Cli) -> None:
    proc = subprocess.Popen(
        [SCHED, "controller", "--interval", "0.1"],
        env=cli.env,
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(1.5)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert err.splitlines()[0] == "controller: reconciling every 0.1 s (Ctrl-C to stop)"
    assert err.splitlines()[-1] == "controller: stopped"


def test_an_idle_controller_can_exit_at_once_and_bad_intervals_are_refused(cli: Cli) -> None:
    idle = cli("controller", "--exit-when-idle")
    assert idle.returncode == 0 and "no unfinished jobs; stopping" in idle.stderr
    bad = cli("controller", "--interval", "0")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
