"""The `tune` command's forms: `tune run`, the original `tune --config`, and `tune build`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

from .conftest import DATA, run_tune


def tune(*args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "schedtune.cli", *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=900
    )


def test_run_subcommand_and_bare_form_read_the_same_config(tmp_path):
    for form in (["run", "--config"], ["--config"]):
        proc = tune(*form, tmp_path / "missing.yaml")
        assert proc.returncode == 2
        assert proc.stderr.strip().count("\n") == 0 and "config file not found" in proc.stderr


def test_no_subcommand_prints_the_commands():
    proc = tune()
    assert proc.returncode == 2
    for command in ("run", "build", "compare", "db"):
        assert command in proc.stdout


def test_build_of_a_folder_without_an_export_is_one_line(tmp_path):
    proc = tune("build", "--report", tmp_path, "-o", tmp_path / "m.vmfb")
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0 and "no summary.json" in proc.stderr
    assert not (tmp_path / "m.vmfb").exists()


def test_build_from_the_report_and_from_the_users_own_mlir(tmp_path, write_job):
    """`tune build` builds the export, checks it against IREE's default build, from the job's
    model or the user's own copy of it, and refuses another compiler's report."""
    config = write_job("mm", trials=2)
    assert run_tune(config).returncode == 0
    report = tmp_path / "reports" / "mm"
    own = tmp_path / "own" / "matmul.mlir"
    own.parent.mkdir()
    shutil.copy(DATA / "matmul.mlir", own)
    for extra in ([], ["--model", own]):
        out = tmp_path / f"mm{len(extra)}.vmfb"
        proc = tune("build", "--report", report, "-o", out, *extra, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert "outputs match IREE's default build" in proc.stdout and out.stat().st_size > 0

    summary = json.loads((report / "summary.json").read_text())
    summary["compiler_version"] = "0.0.0 (another build)"
    (report / "summary.json").write_text(json.dumps(summary))
    refused = tune("build", "--report", report, "-o", tmp_path / "other.vmfb")
    assert refused.returncode == 1 and "--any-compiler" in refused.stderr
    assert not (tmp_path / "other.vmfb").exists()
    forced = tune("build", "--report", report, "-o", tmp_path / "other.vmfb", "--any-compiler")
    assert forced.returncode == 0, forced.stderr
