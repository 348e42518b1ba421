"""kill -9 in the middle of a job, then the same command: it continues and meets the budget."""

from __future__ import annotations

import json
import subprocess
import sys

import optuna

from .conftest import DATA, FREE_STATUSES, check_exported_spec, counted_trials, kill_9_when


def _counted(url):
    return [
        t
        for _, t in counted_trials(url)
        if t.user_attrs.get("status") not in FREE_STATUSES
        and t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL)
    ]


def test_kill_9_then_resume(tmp_path):
    config = tmp_path / "job.yaml"
    config.write_text(
        f"name: resume\noutput: {tmp_path / 'reports'}\n"
        f"model: {{format: mlir, path: {DATA / 'matmul.mlir'}, entry: main, inputs: [64x128xf32, 128x96xf32]}}\n"
        "budget: {trials_per_dispatch: 8, confirm_rounds: 2}\n"
        "search: {sampler: tpe, seed: 0, tune_model_flags: false}\n"
    )
    url = f"sqlite:///{tmp_path / 'reports' / 'resume' / 'study.db'}"
    cmd = [sys.executable, "-m", "schedtune.cli", "--config", str(config), "--quiet"]
    # Wait (bounded) until some trials are finished, then kill mid-search.
    kill_9_when(cmd, tmp_path / "stderr.txt", lambda: len(_counted(url)) >= 2, poll_s=0.5, polls=600)
    before = _counted(url)
    assert 2 <= len(before) < 8

    again = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr
    after = _counted(url)
    states = sorted((t.number, t.state.name, t.user_attrs.get("status")) for _, t in counted_trials(url))
    assert len(after) == 8, (states, again.stderr[-3000:])  # the budget of an uninterrupted run
    finished_before = {t.number for t in before}
    assert finished_before <= {t.number for t in after}  # nothing finished was lost
    assert not [t for _, t in counted_trials(url) if t.state == optuna.trial.TrialState.RUNNING]
    summary = json.loads((tmp_path / "reports" / "resume" / "summary.json").read_text())
    assert summary["dispatches"][0]["trials"] == 8
    check_exported_spec(tmp_path / "reports" / "resume")


_ASK_THEN_DIE = """
import os, signal, sys, time, optuna
from schedtune.search import join_study
study = optuna.load_study(study_name="s", storage=sys.argv[1])
join_study(study)
study.ask()  # killed before it could tag the trial with its worker
print("asked", flush=True)
if sys.argv[2] == "die":
    os.kill(os.getpid(), signal.SIGKILL)
time.sleep(600)
"""


def test_a_trial_killed_before_its_worker_tag_is_recovered_at_once(tmp_path):
    """The resumed job must not wait for, or count, a trial its killed predecessor had just
    asked for: with a 30 s grace it held a budget slot, and the re-run ended one trial short."""
    from schedtune.search import recover_lost_trials

    url = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(study_name="s", storage=url)

    subprocess.run([sys.executable, "-c", _ASK_THEN_DIE, url, "die"], check=False, timeout=120)
    assert recover_lost_trials(study, stale_after_s=3600) == 1
    (trial,) = study.get_trials()
    assert trial.state == optuna.trial.TrialState.FAIL and trial.user_attrs["status"] == "lost"

    # A live worker's untagged trial is left alone (it may be about to tag it), until it dies.
    alive = subprocess.Popen([sys.executable, "-c", _ASK_THEN_DIE, url, "live"], stdout=subprocess.PIPE, text=True)
    try:
        assert alive.stdout.readline().strip() == "asked"
        assert recover_lost_trials(study, stale_after_s=3600) == 0
    finally:
        alive.kill()
        alive.wait()
    assert recover_lost_trials(study, stale_after_s=3600) == 1
    assert not study.get_trials(states=(optuna.trial.TrialState.RUNNING,))
