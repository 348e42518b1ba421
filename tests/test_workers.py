"""Scale-out: two `tune` processes on one PostgreSQL study split the budget, nothing twice."""

from __future__ import annotations

import json
import subprocess
import sys

import optuna
import sqlalchemy as sa

from .conftest import DATA, FREE_STATUSES, check_exported_spec, counted_trials


def test_two_workers_share_one_study(tmp_path, postgres_url):
    config = tmp_path / "job.yaml"
    config.write_text(
        f"name: shared\nstorage: {postgres_url}\n"
        f"model: {{format: mlir, path: {DATA / 'matmul.mlir'}, entry: main, inputs: [64x128xf32, 128x96xf32]}}\n"
        "budget: {trials_per_dispatch: 8, confirm_rounds: 2}\n"
        "search: {sampler: tpe, seed: 0, tune_model_flags: false}\n"
    )
    # Two machines: each its own output folder, one storage. The helper only searches.
    cmd = [sys.executable, "-m", "schedtune.cli", "--config", str(config), "--quiet"]
    main = subprocess.Popen(
        cmd + ["--output", str(tmp_path / "a")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    helper = subprocess.Popen(
        cmd + ["--output", str(tmp_path / "b"), "--search-only"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out_h, err_h = helper.communicate(timeout=900)
    out_m, err_m = main.communicate(timeout=900)
    assert helper.returncode == 0, err_h
    assert main.returncode == 0, err_m

    trials = counted_trials(postgres_url)
    assert {name for name, _ in trials} and all(name.startswith("shared:") for name, _ in trials)
    counted = [
        t
        for _, t in trials
        if t.user_attrs.get("status") not in FREE_STATUSES
        and t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL)
    ]
    assert len(counted) == 8, [t.user_attrs.get("status") for _, t in trials]
    assert not [t for _, t in trials if t.state == optuna.trial.TrialState.RUNNING]
    configs = [t.user_attrs["config"] for t in counted]
    assert len(set(configs)) == len(configs), "a config was evaluated twice"
    workers = {t.user_attrs["worker"] for t in counted}
    assert len(workers) == 2, workers

    # Each evaluated config compiled once, by one worker, into the shared cache.
    engine = sa.create_engine(postgres_url)
    with engine.connect() as conn:
        cached = conn.execute(sa.text("SELECT count(*) FROM schedtune_cache WHERE kind = 'trial'")).scalar_one()
        claims = conn.execute(sa.text("SELECT count(*) FROM schedtune_claims")).scalar_one()
    engine.dispose()
    assert cached == len(set(configs))
    assert claims == 0

    # One export, by the main worker, covering both workers' trials.
    summary = json.loads((tmp_path / "a" / "shared" / "summary.json").read_text())
    assert summary["dispatches"][0]["trials"] == 8
    check_exported_spec(tmp_path / "a" / "shared")
    assert not (tmp_path / "b" / "shared" / "tuning_spec.mlir").exists()
