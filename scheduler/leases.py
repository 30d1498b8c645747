"""Who may advance a job: a lease per job, named for the process that holds it.

Two controllers, or a controller and a `sched submit` placing its own job, must never
both launch the same job. A process takes a job's lease (Store.lease, one conditional
UPDATE) before acting on it and gives it back after. A lease left by a process that died
is taken over at once when that process ran on this machine (its pid is gone), and after
``LEASE_S`` when it ran elsewhere: long enough for one job's step (a cloud call, a Ray
submission), short enough that a crashed host's jobs do not wait long.
"""

from __future__ import annotations

import os
import socket
import uuid

LEASE_S = 60.0


def owner_id() -> str:
    """host:pid:nonce; the nonce keeps two Controllers in one process apart."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def dead_here(owner: str, host: str | None = None) -> bool:
    """True when ``owner`` ran on this machine and its process no longer exists."""
    name, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if name != (host or socket.gethostname()) or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, someone else's
    return False
