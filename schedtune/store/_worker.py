"""Who is working: `host:pid` identities, and whether one on this host is still alive.

Used to take over trials and cache claims of a process that was killed (kill -9, OOM) at
once on its own host, and after a timeout from other hosts.
"""

from __future__ import annotations

import os
import socket


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def worker_dead(worker: str) -> bool:
    """True only when `worker` ran on this host and its process is gone."""
    host, _, pid = worker.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
