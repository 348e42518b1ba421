"""A tiny matmul tuned end to end by the real `tune` command: spec, flags, report, re-run, cache."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import optuna
import pytest
import sqlalchemy as sa

from schedtune import iree
from schedtune.config import load_config

from .conftest import DATA, FREE_STATUSES, check_exported_spec, run_tune, tiny_matmul_job


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    """Run the job once for all tests of this module (it is the expensive part)."""
    tmp = tmp_path_factory.mktemp("e2e")
    config = tiny_matmul_job(tmp)
    first = run_tune(config)
    assert first.returncode == 0, first.stderr
    job = load_config(config)
    summary = json.loads((job.report_dir / "summary.json").read_text())
    spec_text = (job.report_dir / "tuning_spec.mlir").read_text()
    return config, job, first, summary, spec_text


def test_report_files_and_summary(tuned):
    _config, job, first, summary, _spec = tuned
    for name in ("tuning_spec.mlir", "compile_flags.txt", "summary.json", "report.md"):
        assert (job.report_dir / name).exists(), name
    assert "end to end" in first.stdout
    check_exported_spec(job.report_dir)
    assert summary["compiler_version"] == iree.compiler_version()
    assert summary["entry"] == "main" and summary["inputs"] == ["64x128xf32", "128x96xf32"]
    (row,) = summary["dispatches"]
    assert row["op_kind"] == "matmul"
    assert row["loops"] == {"m": 64, "n": 96, "k": 128}
    assert row["trials"] == 5
    assert sum(row["trial_statuses"].get(s, 0) for s in ("ok", "not_applied", "compile_error", "wrong_result")) >= 5
    e2e = summary["end_to_end"]
    assert e2e["rounds"] == 3 and len(e2e["default_ms"]) == 3 and len(e2e["tuned_ms"]) == 3
    assert e2e["max_error"] < 1e-3
    report = (job.report_dir / "report.md").read_text()
    headline = report.splitlines()[2]
    # The headline says what ships: the tuned config if one was kept, else that nothing was.
    assert headline.startswith("**Exported: 1 tuned dispatch" if e2e["kept"] else "**Nothing exported**")
    assert "matmul_64x96x128" in report


def test_exported_spec_works_with_plain_iree_compile(tuned, tmp_path):
    _config, job, _first, summary, _spec = tuned
    flags = (job.report_dir / "compile_flags.txt").read_text().split()
    out = tmp_path / "tuned.vmfb"
    proc = subprocess.run(
        [
            iree.tool("iree-compile"),
            str(DATA / "matmul.mlir"),
            *summary["default_flags"],
            *flags,
            f"--iree-codegen-tuning-spec-path={job.report_dir / 'tuning_spec.mlir'}",
            "-o",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    inputs = [p for p in summary["input_files"]]
    run = iree.run_model(out, "main", [__import__("pathlib").Path(p) for p in inputs], tmp_path / "run")
    a, b = (np.load(p) for p in inputs)
    np.testing.assert_allclose(run.outputs[0], np.maximum(a @ b, 0), rtol=1e-4, atol=1e-4)


def test_rerun_compiles_nothing_and_exports_same_spec(tuned):
    config, job, _first, _summary, spec_text = tuned
    again = run_tune(config)
    assert again.returncode == 0, again.stderr
    summary = json.loads((job.report_dir / "summary.json").read_text())
    assert summary["compiles"] == 0
    assert (job.report_dir / "tuning_spec.mlir").read_text() == spec_text


def test_rerun_with_more_budget_resumes_the_study(tuned):
    config, job, _first, _summary, _spec = tuned
    text = config.read_text().replace("trials_per_dispatch: 5", "trials_per_dispatch: 7")
    more = config.with_name("mm_more.yaml")
    more.write_text(text)
    proc = run_tune(more)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((job.report_dir / "summary.json").read_text())
    assert summary["dispatches"][0]["trials"] == 7
    # Only the two new trials were built; the export may rebuild default and tuned models
    # (and more if the new winner is dropped), which is not a trial compile.
    assert summary["trial_compiles"] == summary["dispatches"][0]["compiles"] == 2
    # No config was compiled twice: one cache entry per distinct counted config.
    (study_name,) = [s.study_name for s in optuna.get_all_study_summaries(job.storage)]
    configs = [
        t.user_attrs["config"]
        for t in optuna.load_study(study_name=study_name, storage=job.storage).trials
        if t.user_attrs.get("status") not in FREE_STATUSES
    ]
    assert len(configs) == len(set(configs)) == 7
    engine = sa.create_engine(job.storage)
    with engine.connect() as conn:
        cached = conn.execute(sa.text("SELECT count(*) FROM schedtune_cache WHERE kind = 'trial'")).scalar_one()
    engine.dispose()
    assert cached == 7


def test_plots_are_pngs_of_the_summary_numbers(tuned):
    _, job, _, summary, _ = tuned
    plots = summary["plots"]
    assert {"search_history.png", "dispatch_times.png"} <= set(plots)
    for name in plots:
        data = (job.report_dir / name).read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 2000, name
        assert f"]({name})" in (job.report_dir / "report.md").read_text()
    (row,) = summary["dispatches"]
    series = plots["search_history.png"][row["label"]]
    assert series["trial_ms"] == row["timeline_ms"] and len(series["trial_ms"]) >= row["trials"]
    timed = [t for t in series["trial_ms"] if t is not None]
    assert series["best_so_far_ms"][-1] == min(timed)
    # The row's figure is the race's median (search/_race.py) when the search beat the default,
    # not necessarily a trial's time.
    assert row["tuned_ns"] > 0
    assert series["default_ms"] == row["baseline_ns"] / 1e6
    bars = plots["dispatch_times.png"][row["label"]]
    assert bars == {"default_ms": row["baseline_ns"] / 1e6, "best_ms": row["tuned_ns"] / 1e6}


def test_search_history_of_a_target_with_one_good_trial_draws_cleanly(tmp_path):
    """A target whose only good trial is IREE's default (every other one failed or was not
    applied) gives a panel whose times are all one value: drawn with an axis of some height,
    without matplotlib's divide-by-zero warnings on stderr."""
    import warnings

    from schedtune.report._plots import write_plots

    row = {
        "build": "default",
        "label": "pooling_1x20x32x32x3x3",
        "share": 0.1,
        "timeline_ms": [0.0518982, None, None, None, None, None],
        "baseline_ns": 51898.2,  # the same time: the default was the one good trial
        "in_model_ns": None,
    }
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        drawn = write_plots(tmp_path, {"dispatches": [row]})
    assert drawn["search_history.png"]["pooling_1x20x32x32x3x3"]["trial_ms"][0] == 0.0518982
    assert (tmp_path / "search_history.png").stat().st_size > 0


def test_report_advises_passing_large_inputs_in_place_only():
    from schedtune.report._write import _call_advice, _input_bytes

    assert _input_bytes(["1024x1024xf32", "2x3xi8", "4xbf16"]) == 4 * 1024 * 1024 + 6 + 8
    assert _call_advice(["8x3x32x32xf32"]) == []  # 96 KiB: a copy per call costs little
    (line,) = _call_advice(["1024x1024xf32", "1024x1024xf32"])
    assert line.startswith("- call:") and "(8.0 MiB)" in line and "import_host_allocation" in line
