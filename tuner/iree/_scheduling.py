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
    """Put the calling thread, and every thread it starts from now on, under `policy`
    (for in-process runtimes: call it before any of them creates its threads)."""
    setup = child_setup(policy)
    if setup is not None:
        setup()


def current_policy() -> str:
    """This thread's policy by the names above ("other" when it is neither)."""
    if not hasattr(os, "sched_getscheduler"):
        return "normal"
    found = os.sched_getscheduler(0)
    return {os.SCHED_BATCH: "batch", os.SCHED_OTHER: "normal"}.get(found, "other")
