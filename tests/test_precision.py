"""Narrower arithmetic under an accuracy budget (`precision`): demoted twins of the flag sets,
judged against IREE's f32 default build by relative L2 error, never by the f32 tolerances."""

from __future__ import annotations

import json

import numpy as np

from schedtune import iree
from schedtune.builds import ModelContext, within_budget
from schedtune.config import PrecisionSpec
from schedtune.job import demoted_twins
from schedtune.search import choose_flags
from schedtune.spaces import FlagCandidate
from schedtune.store import Cache

from .conftest import DATA, run_tune


def test_the_budget_is_a_relative_l2_error_per_output():
    ref = [[np.ones(100, np.float32), np.full(10, 100.0, np.float32)]]
    close = [[ref[0][0] * 1.001, ref[0][1] * 1.001]]
    ok, error = within_budget(close, ref, 0.01)
    assert ok and abs(error - 0.001) < 1e-6
    flipped = [[ref[0][0], -ref[0][1]]]  # one output wrong: the other's accuracy does not hide it
    assert not within_budget(flipped, ref, 0.5)[0]
    assert not within_budget([[ref[0][0], ref[0][1] * np.inf]], ref, 1.0)[0]


def test_demoted_twins_only_when_asked():
    fixed = [FlagCandidate("default", ()), FlagCandidate("data-tiling", ("--iree-global-opt-data-tiling",))]
    assert demoted_twins(fixed, PrecisionSpec()) == []
    twins = demoted_twins(fixed, PrecisionSpec(contractions="bf16", operations="matmul"))
    assert [t.name for t in twins] == ["default+bf16-matmul", "data-tiling+bf16-matmul"]
    assert twins[1].flags == (
        "--iree-global-opt-data-tiling",
        "--iree-global-opt-demote-contraction-inputs-type=bf16",
        "--iree-global-opt-demote-contraction-inputs-operations=matmul",
    )


def test_a_demoted_build_is_held_to_the_budget_not_the_f32_tolerance(tmp_path):
    inputs = iree.save_inputs(("64x128xf32", "128x96xf32"), tmp_path / "in", 0)
    model = ModelContext(DATA / "matmul.mlir", "main", inputs, iree.target_flags("host"), tmp_path / "w")
    reference = model.reference_outputs()
    precision = PrecisionSpec(contractions="bf16")
    candidates = [FlagCandidate("default", ()), *demoted_twins([FlagCandidate("default", ())], precision)]
    rows = {}
    for budget in (1e-6, 0.05):
        decision = choose_flags(
            model,
            candidates,
            reference,
            Cache(f"sqlite:///{tmp_path / 's.db'}"),
            rounds=2,
            error_budget=lambda flags, budget=budget: budget if flags else None,
        )
        rows[budget] = {r["name"]: r for r in decision.rows}["default+bf16-all"]
    # bf16 inputs keep about 3 significant digits: far over 1e-6, well within 5%.
    assert rows[1e-6]["status"] == "wrong_result" and rows[1e-6]["max_error"] > 1e-6
    assert rows[0.05]["status"] == "ok" and 1e-6 < rows[0.05]["max_error"] < 0.05
    assert rows[0.05]["error_budget"] == 0.05


def test_a_job_with_a_precision_budget_reports_each_twins_error(tmp_path, write_job):
    config = write_job(
        "mm",
        trials=2,
        extra="""\
        search:
          tune_model_flags: true
          pipeline_trials: 0
        precision:
          contractions: bf16
          max_error: 0.05
        """,
    )
    proc = run_tune(config)
    assert proc.returncode == 0, proc.stderr
    report = tmp_path / "reports" / "mm"
    summary = json.loads((report / "summary.json").read_text())
    twins = [r for r in summary["flag_candidates"] if r["name"].endswith("+bf16-all")]
    assert twins and all(r["error_budget"] == 0.05 for r in twins)
    assert all(r["status"] != "ok" or 0 < r["max_error"] < 0.05 for r in twins)
    demoted = any(f.startswith("--iree-global-opt-demote-contraction-inputs-type") for f in summary["tuned_flags"])
    assert (summary["precision"] is not None) == demoted
    assert "(error " in (report / "report.md").read_text()
