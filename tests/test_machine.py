"""Busy-machine detection: other processes' CPU load is seen and reported, not mistaken for speed."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from schedtune.evaluation import busy_fraction, busy_warning

from .conftest import run_tune

SPIN = "import time\nend = time.time() + 60\nwhile time.time() < end: pass\n"


def _spinners():
    return [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(os.cpu_count() or 1)]


def test_other_processes_load_is_measured():
    spinners = _spinners()
    try:
        busy = busy_fraction(1.0)
        warning = busy_warning("at the start", 1.0)
    finally:
        for p in spinners:
            p.kill()
            p.wait()
    # One spinner per CPU: the machine is (nearly) all busy, whatever else CI runs.
    assert busy is not None and busy > 0.6
    assert warning is not None and warning.startswith("at the start: other processes used")


def test_job_on_a_busy_machine_says_so(write_job):
    """The job still runs (its trials are real), but the report and the console carry the warning."""
    config = write_job("busy", trials=1)
    spinners = _spinners()
    try:
        proc = run_tune(config)
    finally:
        for p in spinners:
            p.kill()
            p.wait()
    assert proc.returncode == 0, proc.stderr
    assert "tune: warning: at the start: other processes used" in proc.stderr
    summary = json.loads((config.parent / "reports" / "busy" / "summary.json").read_text())
    assert summary["busy_warnings"] and summary["busy_warnings"][0].startswith("at the start")
    report = (config.parent / "reports" / "busy" / "report.md").read_text()
    assert "**Warning**: at the start: other processes used" in report
