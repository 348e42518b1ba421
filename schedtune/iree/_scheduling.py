"""The Linux scheduling policy that compiled models run under when the tuner measures them.

IREE's host thread waits for a call on a semaphore. When the last worker posts it, the woken
host thread spins until that worker has also marked the wait complete (the timepoint cleanup
in `iree/async/semaphore.c`, not configurable in the released runtime). With as many workers
as cores, the woken host thread often preempts the very worker it waits for, and spins until
the scheduler runs that worker again: a call then takes up to a time slice longer, at random,
and the default and tuned builds suffer alike. Under SCHED_BATCH a waking thread does not
preempt the running one, so the worker finishes first; nothing else about the run changes.

"batch" runs IREE's tools under SCHED_BATCH, "normal" under the caller's own policy. The
export's report tells users to deploy the same way (`chrt --batch 0 ...`).
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Callable

POLICIES = ("batch", "normal")
DEFAULT_POLICY = "batch"


def check_policy(policy: str) -> str:
    if policy not in POLICIES:
        raise ValueError(f"scheduling policy {policy!r}: expected one of {', '.join(POLICIES)}")
    return policy


def _use_batch() -> None:
    os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))


def child_setup(policy: str) -> Callable[[], None] | None:
    """The `preexec_fn` that puts a tool's process under `policy` (None: nothing to change).

    It must act before the runtime starts its worker threads, which inherit the policy: set
    after the start, the workers would keep the old one."""
    if check_policy(policy) == "batch" and hasattr(os, "SCHED_BATCH"):
        return _use_batch
    return None


def apply_to_this_process(policy: str) -> None:
    """Put every thread of this process under `policy`, and with them the threads they start
    from now on (for in-process runtimes: IREE's, onnxruntime's, BLAS thread pools).

    "normal" leaves the process as it is."""
    if child_setup(policy) is None:
        return
    tasks = pathlib.Path("/proc/self/task")
    threads = [int(t.name) for t in tasks.iterdir()] if tasks.is_dir() else [0]
    for tid in threads:
        try:
            os.sched_setscheduler(tid, os.SCHED_BATCH, os.sched_param(0))
        except ProcessLookupError:  # the thread ended meanwhile
            pass


def current_policy(thread: int = 0) -> str:
    """The policy of `thread` (a Linux thread id; 0: the calling one) by the names above
    ("other" when it is neither)."""
    if not hasattr(os, "sched_getscheduler"):
        return "normal"
    found = os.sched_getscheduler(thread)
    return {os.SCHED_BATCH: "batch", os.SCHED_OTHER: "normal"}.get(found, "other")
