"""Bad input and a full disk: one clear line, non-zero exit, no finished work lost."""

from __future__ import annotations

import json
import os
import subprocess

import optuna
import pytest

from schedtune import iree

from .conftest import DATA, FREE_STATUSES, counted_trials, run_tune

FAKES = DATA.parent / "fakes"


def _job(tmp_path, model, inputs, extra=""):
    config = tmp_path / "job.yaml"
    config.write_text(
        f"name: bad\noutput: {tmp_path / 'reports'}\n"
        f"model: {{format: mlir, path: {model}, entry: main, inputs: [{', '.join(inputs)}]}}\n"
        "budget: {trials_per_dispatch: 4, confirm_rounds: 2}\n"
        "search: {sampler: random, seed: 0, tune_model_flags: false}\n" + extra
    )
    return config


def test_mlir_that_does_not_parse(tmp_path):
    model = tmp_path / "broken.mlir"
    model.write_text(
        "func.func @main(%a: tensor<4xf32>) -> tensor<4xf32> {\n  %b = arith.addf %a, %a : tensor<4xf32\n}\n"
    )
    proc = run_tune(_job(tmp_path, model, ["4xf32"]))
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1
    assert "broken.mlir:2:" in proc.stderr and "error" in proc.stderr


def test_unreachable_storage(tmp_path):
    proc = run_tune(
        _job(
            tmp_path,
            DATA / "matmul.mlir",
            ["64x128xf32", "128x96xf32"],
            "storage: postgresql+psycopg2://someone:secret@127.0.0.1:1/nothing\n",
        )
    )
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1
    assert "storage 127.0.0.1:1/nothing unusable" in proc.stderr
    assert "secret" not in proc.stderr  # credentials never printed


def test_op_no_space_knows_is_reported_not_tuned(tmp_path):
    model = tmp_path / "elementwise.mlir"  # no family tunes elementwise ops (yet)
    model.write_text(
        "func.func @main(%x: tensor<64x128xf32>) -> tensor<64x128xf32> {\n"
        "  %e = math.exp %x : tensor<64x128xf32>\n"
        "  return %e : tensor<64x128xf32>\n}\n"
    )
    proc = run_tune(_job(tmp_path, model, ["64x128xf32"]))
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((tmp_path / "reports" / "bad" / "summary.json").read_text())
    assert summary["dispatches"] == []
    assert summary["untuned_dispatches"] and all(u["reason"] for u in summary["untuned_dispatches"])
    assert "Not tuned" in (tmp_path / "reports" / "bad" / "report.md").read_text()


def test_full_disk_mid_job_keeps_finished_trials(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("needs root to mount a small tmpfs (CI runs as root)")
    try:
        config = _job(
            tmp_path,
            DATA / "matmul.mlir",
            ["64x128xf32", "128x96xf32"],
            f"storage: sqlite:///{tmp_path / 'study.db'}\n",
        )
        env = dict(
            os.environ,
            SCHEDTUNE_IREE_COMPILE=str(FAKES / "disk_filling_compiler"),
            REAL_TOOL=iree.tool("iree-compile"),
            COUNTER=str(tmp_path / "count"),
            FILL_DIR=str(disk),
        )
        proc = run_tune(config, "--output", str(disk), env=env)
        assert proc.returncode == 1
        assert proc.stderr.count("\n") == 1 and "No space left on device" in proc.stderr
        url = f"sqlite:///{tmp_path / 'study.db'}"
        kept = [
            t
            for _, t in counted_trials(url)
            if t.user_attrs.get("status") not in FREE_STATUSES
            and t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL)
        ]
        assert len(kept) == 2  # the two trials compiled before the disk filled

        # Room again: the same command resumes and finishes the budget.
        (disk / "filler").unlink()
        env["COUNTER"] = str(tmp_path / "count2")
        env.pop("SCHEDTUNE_IREE_COMPILE")
        again = run_tune(config, "--output", str(disk), env=env)
        assert again.returncode == 0, again.stderr
        summary = json.loads((disk / "bad" / "summary.json").read_text())
        assert summary["dispatches"][0]["trials"] == 4
        assert "compile_error" not in summary["dispatches"][0]["trial_statuses"]
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)
