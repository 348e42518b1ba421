"""IREE's Python runtime for a built module: a callable on numpy arrays, its worker count pinned."""

from __future__ import annotations

import pathlib
import time
from collections.abc import Callable

import numpy as np

from ._scheduling import current_policy


def pin_workers(threads: int) -> None:
    """Caps IREE's local-task worker count, as `iree-run-module --task_topology_max_group_count=N`.

    The in-process runtime reads the task flags once, when the local-task driver is first
    created (the Python bindings cache the driver and the device for the whole process), so
    this must run before any `iree.runtime.Config`; flags parsed later are silently ignored.
    """
    import iree.runtime as rt

    rt.flags.parse_flags(f"--task_topology_max_group_count={threads}")


def _worker_ids() -> list[int] | None:
    """Linux thread ids of IREE's task-system workers in this process (named iree-worker-N),
    or None off Linux."""
    tasks = pathlib.Path("/proc/self/task")
    if not tasks.is_dir():
        return None
    ids = []
    for task in tasks.iterdir():
        try:
            if (task / "comm").read_text().startswith("iree-worker"):
                ids.append(int(task.name))
        except (OSError, ValueError):  # the thread ended meanwhile
            pass
    return ids


def worker_threads(settle_s: float = 1.0) -> int | None:
    """IREE task-system worker threads alive in this process, or None off Linux.

    A worker names itself once it runs: the count is taken again until it stops changing.
    """
    if _worker_ids() is None:
        return None

    def count() -> int:
        return len(_worker_ids() or [])

    seen, deadline = count(), time.monotonic() + settle_s
    while time.monotonic() < deadline:
        time.sleep(0.1)
        again = count()
        if again == seen and seen:
            break
        seen = again
    return seen


def worker_policies() -> list[str]:
    """The scheduling policies IREE's worker threads run under (sorted names, empty off Linux):
    the workers must have inherited the job's policy, or the timing is not the tuner's."""
    found = set()
    for tid in _worker_ids() or []:
        try:
            found.add(current_policy(tid))
        except OSError:  # the thread ended meanwhile
            pass
    return sorted(found)


# How an IREE runner passes its numpy inputs (outputs are copied to the host on every call).
COPIED = "copied"  # IREE's default: each numpy argument copied into a new device buffer per call
ON_DEVICE = "on device"  # copied once, the device copy passed from then on
IMPORTED = "imported"  # wrapped as device buffers without a copy on every call (read in place)
IMPORT_ALIGNMENT = 64


def load_function(
    vmfb: pathlib.Path, entry: str, inputs: str = COPIED
) -> Callable[[list[np.ndarray]], list[np.ndarray]]:
    """`entry` of `vmfb` in this process's local-task device: a call takes numpy arrays and
    returns numpy arrays, its inputs passed as `inputs` says.

    Copied is what a plain `fn(numpy_array)` does: each call allocates fresh buffers, and
    large ones are fresh pages from the kernel (page faults) unless the process's allocator
    happens to reuse memory, so this row's cost depends on what else the process did.
    Imported is how an application hands numpy arrays to IREE as onnxruntime and numpy read
    theirs: in place (`import_host_allocation`). IREE needs the host memory 64-byte aligned
    for that (an unaligned import crashes the call in IREE 3.13), so an unaligned input is
    first copied once into aligned memory, as an application would allocate it."""
    import iree.runtime as rt
    from iree.runtime.array_interop import map_dtype_to_element_type

    config = rt.Config("local-task")  # the process's one cached local-task device: pinned workers
    ctx = rt.SystemContext(config=config)
    module = rt.VmModule.mmap(config.vm_instance, str(vmfb))
    ctx.add_vm_module(module)
    fn = ctx.modules[module.name][entry]
    prepared: list[tuple[np.ndarray, object]] = []  # (host array, what is passed for it)

    def once(x: np.ndarray, make) -> object:
        for host, passed in prepared:
            if host is x:
                return passed
        prepared.append((x, make(x)))
        return prepared[-1][1]

    def aligned(x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x)
        if x.ctypes.data % IMPORT_ALIGNMENT == 0:
            return x
        raw = np.empty(x.nbytes + IMPORT_ALIGNMENT, dtype=np.uint8)
        start = -raw.ctypes.data % IMPORT_ALIGNMENT
        out = raw[start : start + x.nbytes].view(x.dtype).reshape(x.shape)
        out[...] = x
        return out

    allocator = config.device.allocator
    host_memory = int(rt.MemoryType.HOST_LOCAL | rt.MemoryType.DEVICE_VISIBLE)

    def imported(x: np.ndarray):
        buffer = allocator.import_host_allocation(x, memory_type=host_memory, allowed_usage=int(rt.BufferUsage.DEFAULT))
        return rt.HalBufferView(buffer, x.shape, map_dtype_to_element_type(x.dtype))

    def arguments(given: list[np.ndarray]) -> list:
        if inputs == ON_DEVICE:
            return [once(x, lambda x: rt.asdevicearray(config.device, x)) for x in given]
        if inputs == IMPORTED:
            return [imported(once(x, aligned)) for x in given]
        return list(given)

    def call(given):
        out = fn(*arguments(given))
        outs = out if isinstance(out, (tuple, list)) else [out]
        return [np.asarray(o.to_host()) for o in outs]

    return call
