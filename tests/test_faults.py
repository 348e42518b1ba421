"""Fault injection: a crashing or hanging compiler, a segfaulting benchmark, wrong numerics.

Each fake wraps the real tool (REAL_TOOL) and misbehaves only on trial builds; the job must
record the failure per trial, finish, and never export a failed candidate.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

from schedtune import iree

from .conftest import DATA

FAKES = pathlib.Path(__file__).parent / "fakes"


def _run_job(tmp_path, tool_name: str, fake: str, *, timeout_s: int = 120) -> dict:
    config = tmp_path / "job.yaml"
    config.write_text(
        f"name: faulty\noutput: {tmp_path / 'reports'}\n"
        f"model: {{format: mlir, path: {DATA / 'matmul.mlir'}, entry: main, inputs: [64x128xf32, 128x96xf32]}}\n"
        f"budget: {{trials_per_dispatch: 3, confirm_rounds: 2, compile_timeout_s: {timeout_s}}}\n"
        "search: {sampler: random, seed: 0, tune_model_flags: false}\n"
    )
    env = dict(os.environ)
    env[f"SCHEDTUNE_{tool_name.upper().replace('-', '_')}"] = str(FAKES / fake)
    env["REAL_TOOL"] = iree.tool(tool_name)
    proc = subprocess.run(
        [sys.executable, "-m", "schedtune.cli", "--config", str(config), "--quiet"],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    report = tmp_path / "reports" / "faulty"
    summary = json.loads((report / "summary.json").read_text())
    # Nothing that failed may reach the export.
    assert "match_op" not in (report / "tuning_spec.mlir").read_text()
    assert summary["dispatches"][0]["winning_config"] is None
    return summary


def test_crashing_compiler_is_a_failed_trial(tmp_path):
    summary = _run_job(tmp_path, "iree-compile", "crashing_compiler")
    row = summary["dispatches"][0]
    assert row["trial_statuses"] == {"compile_crash": 3}
    assert row["trials"] == 3


def test_hanging_compiler_times_out(tmp_path):
    summary = _run_job(tmp_path, "iree-compile", "hanging_compiler", timeout_s=3)
    # The fake's `sleep 600` child is killed with it (process group), else this run would hang.
    assert summary["dispatches"][0]["trial_statuses"] == {"compile_timeout": 3}


def test_segfaulting_benchmark_is_a_failed_trial(tmp_path):
    summary = _run_job(tmp_path, "iree-benchmark-module", "segfaulting_benchmark")
    assert summary["dispatches"][0]["trial_statuses"] == {"run_error": 3}


def test_wrong_numerics_never_exported(tmp_path):
    summary = _run_job(tmp_path, "iree-run-module", "wrong_numerics_run")
    assert summary["dispatches"][0]["trial_statuses"] == {"wrong_result": 3}
