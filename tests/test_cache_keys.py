"""Results are reused only where they are valid, and a wrong result is never let through.

Each test here failed on the code before the op-family registry issue: a verdict reused for
another dispatch with the same root op, an analysis reused after an IREE upgrade, a small or a
second output that was never compared, ENOSPC cached as a failed trial, a cached winner that
broke the export, a hung export build that threw the whole result away.
"""

from __future__ import annotations

import json
import os
import subprocess

import numpy as np
import pytest

from schedtune import iree
from schedtune.builds import ModelContext, outputs_match
from schedtune.dispatches import analyze_model
from schedtune.evaluation import Evaluator
from schedtune.export import confirm, select_winners
from schedtune.search import TargetOutcome
from schedtune.spec import CompilationConfig
from schedtune.store import Cache, TrialStatus

from .conftest import DATA, FAKES, matmul_config, run_tune, target_of

FLAGS = iree.target_flags("host")
MM_INPUTS = ("64x128xf32", "128x96xf32")
MM_CONFIG = matmul_config()


def _model(path, tmp_path, inputs=MM_INPUTS, **kwargs) -> ModelContext:
    timing, *check = iree.save_input_sets(inputs, tmp_path / "in", 0)
    return ModelContext(path, "main", timing, FLAGS, tmp_path / "work", check_inputs=tuple(check), **kwargs)


def test_verdict_for_a_matmul_is_not_reused_for_matmul_relu(tmp_path):
    """(a) Same root op, different dispatch (a fused ReLU): a separate cache entry."""
    cache = Cache(f"sqlite:///{tmp_path / 'c.db'}")
    plain = target_of(DATA / "matmul_plain.mlir", tmp_path / "plain", "matmul")
    fused = target_of(DATA / "matmul.mlir", tmp_path / "fused", "matmul")
    assert plain.root.text == fused.root.text  # the root op alone cannot tell them apart
    plain_eval = Evaluator(_model(DATA / "matmul_plain.mlir", tmp_path / "p"), cache)
    assert plain_eval.evaluate(plain, MM_CONFIG).status == TrialStatus.OK
    fused_eval = Evaluator(_model(DATA / "matmul.mlir", tmp_path / "f"), cache)
    assert fused_eval.lookup(fused, MM_CONFIG) is None
    assert fused_eval.key(fused, MM_CONFIG) != plain_eval.key(plain, MM_CONFIG)
    result = fused_eval.evaluate(fused, MM_CONFIG)
    assert result.status == TrialStatus.OK and not result.cached
    assert cache.count("trial") == 2


def test_a_new_compiler_version_runs_the_analysis_again(tmp_path, fake_tool):
    """(b) An IREE upgrade must not reuse the old compiler's dispatches, defaults and timings."""
    model = _model(DATA / "matmul.mlir", tmp_path)
    first = analyze_model(model)
    before = iree.compiles_so_far()
    assert analyze_model(model).dispatches.keys() == first.dispatches.keys()
    assert iree.compiles_so_far() == before  # same compiler: read back, no compile
    old_key = model.build_key()
    fake_tool("iree-compile", "other_version_compiler")
    assert iree.compiler_version() == "99.0.0 @ fake"
    assert model.build_key() != old_key
    analyze_model(model)
    assert iree.compiles_so_far() == before + 1
    assert len(list(model.workdir.glob("analysis_*"))) == 2


def test_small_outputs_that_are_wrong_are_caught(tmp_path, fake_tool):
    """(c) Outputs of about 1e-4 that are all zeros: a fixed 1e-3 tolerance passed them."""
    ref = [np.full((8, 8), 1e-4, dtype=np.float32)]
    assert not outputs_match([np.zeros((8, 8), np.float32)], ref)[0]
    assert outputs_match([ref[0] * (1 + 1e-6)], ref)[0]
    target = target_of(DATA / "small_outputs.mlir", tmp_path / "t", "matmul")
    evaluator = Evaluator(_model(DATA / "small_outputs.mlir", tmp_path), Cache(f"sqlite:///{tmp_path / 'c.db'}"))
    reference = evaluator.reference_outputs()
    assert 1e-6 < float(np.max(np.abs(reference[0][0]))) < 1e-2
    fake_tool("iree-run-module", "zeroing_run")
    result = evaluator.evaluate(target, MM_CONFIG)
    assert result.status == TrialStatus.WRONG_RESULT, (result.status, result.error)


def test_a_wrong_second_output_is_caught(tmp_path, fake_tool):
    """(d) Every output is compared, not only the first."""
    target = target_of(DATA / "two_outputs.mlir", tmp_path / "t", "matmul")
    evaluator = Evaluator(_model(DATA / "two_outputs.mlir", tmp_path), Cache(f"sqlite:///{tmp_path / 'c.db'}"))
    reference = evaluator.reference_outputs()
    assert len(reference) == len(iree.INPUT_DISTRIBUTIONS) and all(len(outs) == 2 for outs in reference)
    assert evaluator.evaluate(target, MM_CONFIG).status == TrialStatus.OK
    fake_tool("iree-run-module", "zeroing_run")  # zeroes the last (second) output only
    other = CompilationConfig.make(MM_CONFIG.pipeline, MM_CONFIG.tile_map, loop_peeling=False)
    result = evaluator.evaluate(target, other)
    assert result.status == TrialStatus.WRONG_RESULT, (result.status, result.error)


def test_inputs_come_from_more_than_one_distribution(tmp_path):
    sets = iree.save_input_sets(("16x16xf32", "4xi64"), tmp_path, 0)
    assert len(sets) == 2
    normal, wide = (np.load(s[0]) for s in sets)
    assert np.max(np.abs(wide)) > 8 * np.max(np.abs(normal))
    for paths in sets:
        ints = np.load(paths[1])
        assert ints.dtype == np.int64 and ints.min() >= 0


def test_disk_full_during_the_benchmark_ends_the_job_and_caches_nothing(tmp_path):
    """(e) ENOSPC while profiling a trial is the machine's problem, never the config's."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("needs root to mount a small tmpfs (CI runs as root)")
    try:
        config = tmp_path / "job.yaml"
        config.write_text(
            f"name: full\nstorage: sqlite:///{tmp_path / 'study.db'}\n"
            f"model: {{format: mlir, path: {DATA / 'matmul.mlir'}, entry: main, inputs: [64x128xf32, 128x96xf32]}}\n"
            "budget: {trials_per_dispatch: 2, confirm_rounds: 2}\n"
            "search: {sampler: random, seed: 0, tune_model_flags: false}\n"
        )
        env = dict(
            os.environ,
            SCHEDTUNE_IREE_BENCHMARK_MODULE=str(FAKES / "disk_filling_benchmark"),
            REAL_TOOL=iree.tool("iree-benchmark-module"),
            FILL_DIR=str(disk),
        )
        proc = run_tune(config, "--output", str(disk), env=env)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert proc.stderr.count("\n") == 1 and "No space left on device" in proc.stderr
        cache = Cache(f"sqlite:///{tmp_path / 'study.db'}")
        assert cache.count("trial") == 0  # nothing was cached as a failed (or any) trial

        (disk / "filler").unlink()
        env.pop("SCHEDTUNE_IREE_BENCHMARK_MODULE")
        again = run_tune(config, "--output", str(disk), env=env)
        assert again.returncode == 0, again.stderr
        summary = json.loads((disk / "full" / "summary.json").read_text())
        assert "run_error" not in summary["dispatches"][0]["trial_statuses"]
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def test_cached_winner_that_fails_at_the_export_is_dropped_and_marked(tmp_path, fake_tool):
    """(f) The export finds the merged build wrong: the winner is dropped, its cached verdict
    withdrawn (no later run picks it), and the export still completes."""
    model = _model(DATA / "matmul.mlir", tmp_path)
    cache = Cache(f"sqlite:///{tmp_path / 'c.db'}")
    target = target_of(DATA / "matmul.mlir", tmp_path / "t", "matmul")
    evaluator = Evaluator(model, cache)
    assert evaluator.evaluate(target, MM_CONFIG).status == TrialStatus.OK  # a cached winner
    fake_tool("iree-run-module", "spec_wrong_run")
    result = confirm(
        model,
        FLAGS,
        [(target, MM_CONFIG)],
        evaluator.reference_outputs(),
        cache,
        rounds=2,
        on_wrong=evaluator.mark_failed,
    )
    assert result.kept == [] and "match_op" not in result.spec_text
    assert "the tuned build fails with it" in result.dropped[target.label]
    assert evaluator.lookup(target, MM_CONFIG).status == TrialStatus.WRONG_RESULT
    # The next run's winner selection skips the withdrawn verdict.
    outcome = TargetOutcome(target, "s", 3, {}, MM_CONFIG, 1.0, 100.0, (), ranked=((MM_CONFIG, 1.0),))
    assert select_winners([outcome], evaluator.usable) == []


def test_export_survives_a_compiler_that_hangs_on_the_merged_build(tmp_path, fake_tool):
    """(h) The merged build hangs every time: it is retried once, then the winners are added one
    at a time; the one whose addition hangs is dropped with the reason, the rest ships."""
    inputs = ("64x128xf32", "128x96xf32", "96x32xf32")
    model = _model(DATA / "two_matmuls.mlir", tmp_path, inputs, compile_timeout_s=15.0)
    cache = Cache(f"sqlite:///{tmp_path / 'c.db'}")
    built = iree.compile_model(DATA / "two_matmuls.mlir", tmp_path / "d.vmfb", FLAGS, configs_dir=tmp_path / "cfg")
    assert built.ok
    from schedtune.dispatches import TuningTarget, read_configured_executables

    targets = [
        TuningTarget(d.root, (n,), 1.0, 0.5, (d.source_hash,))
        for n, d in sorted(read_configured_executables(tmp_path / "cfg").items())
        if d.root and d.root.matcher
    ]
    assert len(targets) == 2
    winners = [(t, t.root.default_config) for t in targets]
    fake_tool("iree-compile", "hanging_merged_compiler")
    result = confirm(model, FLAGS, winners, model.reference_outputs(), cache, rounds=2)
    first, second = targets
    assert "compile timeout" in result.dropped[second.label]
    assert "the tuned build fails" not in result.dropped.get(first.label, "")
    assert result.tuned_ms and result.default_ms  # the A/B ran: the export completed
