"""Executable-level trial builds: only the target's executable is recompiled, the rest is the
default build's, and the trial's verdict is the one a whole-model build gives."""

from __future__ import annotations

import dataclasses

from schedtune import iree
from schedtune.builds import ModelContext
from schedtune.dispatches import read_configured_executables
from schedtune.evaluation import Evaluator
from schedtune.spec import CompilationConfig, render_spec
from schedtune.store import Cache, TrialStatus

from .conftest import DATA, matmul_config

MODEL = DATA / "two_matmuls.mlir"
INPUTS = ("64x128xf32", "128x96xf32", "96x32xf32")


def _model(tmp_path, trial_build: str) -> ModelContext:
    inputs = iree.save_inputs(INPUTS, tmp_path / "in", 0)
    return ModelContext(MODEL, "main", inputs, iree.target_flags("host"), tmp_path / "w", trial_build=trial_build)


def _first_matmul(tmp_path):
    """The 64x96x128 matmul (the tiny matmul's shape, so `matmul_config` is legal for it)."""
    built = iree.compile_model(MODEL, tmp_path / "d.vmfb", iree.target_flags("host"), configs_dir=tmp_path / "cfg")
    assert built.ok, built.error
    from schedtune.dispatches import TuningTarget

    ((name, dispatch),) = [
        (n, d)
        for n, d in read_configured_executables(tmp_path / "cfg").items()
        if d.root and [l.bound for l in d.root.loops] == [64, 96, 128]
    ]
    return TuningTarget(dispatch.root, (name,), 1.0, 1.0, (dispatch.source_hash,))


def test_only_the_target_executable_is_recompiled_and_its_config_applies(tmp_path):
    model = _model(tmp_path, "executable")
    target = _first_matmul(tmp_path)
    # Distribution tiles other than the default's: another workgroup count, which the host
    # code of the default build does not ask for (a splice that missed it computes garbage).
    config = CompilationConfig.make(
        "DoubleTilingExpert",
        {
            "distribution": [8, 16, 0],
            "cache_parallel": [8, 16, 0],
            "vector_common_parallel": [4, 16, 0],
            "vector_reduction": [0, 0, 1],
        },
    )
    default = target.root.default_config.tile_map["distribution"]
    assert -(-64 // default[0]) * -(-96 // default[1]) != 8 * 6
    builds = model.prepare_trial_builds()
    assert builds is not None and model.trial_build == "executable"
    built = model.compile_trial(tmp_path / "t", target.dispatches, render_spec([(target.root.matcher, config)]))
    assert built.ok, built.error
    configured = read_configured_executables(built.configs_dir)
    assert list(configured) == list(target.dispatches)  # the other matmul was not compiled
    assert configured[target.dispatches[0]].root.default_config.canonical() == config.canonical()
    # The spliced build computes what IREE's default build computes.
    assert model.check(built.vmfb, tmp_path / "t", model.reference_outputs()).ok


def test_executable_and_whole_model_trials_agree_on_the_verdict(tmp_path):
    target = _first_matmul(tmp_path)
    results = {}
    for mode in ("executable", "model"):
        evaluator = Evaluator(_model(tmp_path / mode, mode), Cache(f"sqlite:///{tmp_path / 'c.db'}"))
        good = evaluator.evaluate(target, matmul_config())
        # Vector tiles over IREE's limit on any x86 CPU: both builds must fail to compile.
        too_big = CompilationConfig.make(
            "DoubleTilingExpert",
            {
                "distribution": [64, 96, 0],
                "vector_common_parallel": [64, 96, 0],
                "vector_reduction": [0, 0, 128],
            },
        )
        bad = evaluator.evaluate(target, too_big)
        results[mode] = (good, bad)
        assert good.status == TrialStatus.OK and good.time_ns > 0, (mode, good.error)
        assert bad.status == TrialStatus.COMPILE_ERROR, (mode, bad.status, bad.error)
    # One cache, two keys: a verdict from one kind of trial build is never reused for the other.
    assert not results["model"][0].cached


def test_a_model_that_cannot_be_split_falls_back_to_whole_model_trials(tmp_path, fake_tool):
    model = _model(tmp_path, "executable")
    fake_tool("iree-compile", "unsplittable_compiler")
    assert model.prepare_trial_builds() is None
    assert model.trial_build == "model"
    target = _first_matmul(tmp_path)
    built = model.compile_trial(
        tmp_path / "t", target.dispatches, render_spec([(target.root.matcher, matmul_config())])
    )
    assert built.ok, built.error  # a whole-model build
    assert len(read_configured_executables(built.configs_dir)) == 2
    assert dataclasses.replace(model, trial_build="executable").measurement()["trial_build"] == "executable"
