"""Nightly / incremental behaviour: a new build re-verifies old winners; --max-minutes exports."""

from __future__ import annotations

import json
import subprocess
import sys

import optuna

from schedtune.proposers import HeuristicProposer, ProposalRequest, default_values
from schedtune.search import tune_target
from schedtune.spaces import load_space

from .conftest import DATA, check_exported_spec, matmul_setup


def test_new_build_study_re_verifies_previous_winners_first(tmp_path):
    target, url, evaluator = matmul_setup(tmp_path)
    space = load_space("matmul")
    request = ProposalRequest(target, space)
    skeletons = HeuristicProposer().propose(request).skeletons
    defaults = {skeletons[0].name: default_values(skeletons[0], request)}
    old = tune_target(
        target,
        space,
        skeletons,
        defaults,
        evaluator,
        storage=url,
        study_name="job:k:oldbuild",
        history_prefix="job:k:",
        trials=6,
        sampler="random",
        seed=1,
    )
    old_study = optuna.load_study(study_name="job:k:oldbuild", storage=url)
    top = sorted((t for t in old_study.get_trials() if t.value is not None), key=lambda t: t.value)[:3]

    # A new compiler version (or new flags) means a new build tag, hence a new study.
    new = tune_target(
        target,
        space,
        (),
        {},
        evaluator,
        storage=url,
        study_name="job:k:newbuild",
        history_prefix="job:k:",
        trials=3,
        sampler="random",
        seed=2,
    )
    new_study = optuna.load_study(study_name="job:k:newbuild", storage=url)
    first = sorted(new_study.get_trials(), key=lambda t: t.number)[:3]
    assert [t.user_attrs["config"] for t in first] == [t.user_attrs["config"] for t in top]
    assert new.skeletons == old.skeletons  # the old study's skeletons carry over


def test_max_minutes_ends_search_and_still_exports(tmp_path):
    config = tmp_path / "job.yaml"
    config.write_text(
        f"name: short\noutput: {tmp_path / 'reports'}\n"
        f"model: {{format: mlir, path: {DATA / 'matmul.mlir'}, entry: main, inputs: [64x128xf32, 128x96xf32]}}\n"
        "budget: {trials_per_dispatch: 50, confirm_rounds: 2}\n"
        "search: {sampler: random, seed: 0, tune_model_flags: false}\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "schedtune.cli", "--config", str(config), "--quiet", "--max-minutes", "0"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((tmp_path / "reports" / "short" / "summary.json").read_text())
    assert summary["dispatches"][0]["trials"] < 50
    check_exported_spec(tmp_path / "reports" / "short")
    assert summary["end_to_end"]["rounds"] == 2
