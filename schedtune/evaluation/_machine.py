"""Is anything else using the CPU? Timings taken on a busy machine rank configs by noise.

Measured from /proc/stat over a short window while this process does nothing, so what is
seen is other processes' load: a second tuning job, a build, a test run. (The load average
would be no use: it still holds this job's own compiles from the last minute.)
"""

from __future__ import annotations

import pathlib
import time

BUSY_THRESHOLD = 0.25


def _cpu_times() -> tuple[int, int] | None:
    """(busy, total) jiffies over all CPUs, or None where /proc/stat does not exist."""
    try:
        fields = pathlib.Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except (OSError, IndexError):
        return None
    values = [int(v) for v in fields[:8]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


def busy_fraction(window_s: float = 1.0) -> float | None:
    """Share of all CPUs busy during `window_s` (0..1); None if it cannot be read."""
    before = _cpu_times()
    time.sleep(window_s)
    after = _cpu_times()
    if before is None or after is None or after[1] <= before[1]:
        return None
    return (after[0] - before[0]) / (after[1] - before[1])


def busy_warning(stage: str, window_s: float = 1.0) -> str | None:
    """A one-line warning when other processes use more than BUSY_THRESHOLD of the machine."""
    busy = busy_fraction(window_s)
    if busy is None or busy <= BUSY_THRESHOLD:
        return None
    return (
        f"{stage}: other processes used {100 * busy:.0f}% of the CPUs; timings taken now are unreliable "
        "(run one tuning job per machine, on an otherwise idle machine)"
    )
