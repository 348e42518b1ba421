"""Model-level pipelines against the real compiler: the space matches the installed IREE, bad
pipelines stop before any compile, wrong numerics / failing / hanging builds end as failed
trials, the search persists and resumes after kill -9, and the proposers' pipelines."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import optuna
import pytest

from schedtune import iree
from schedtune.builds import ModelContext
from schedtune.pipelines import PassStep, Pipeline, load_pipeline_space, parse_passes, pipeline_error
from schedtune.proposers import HeuristicProposer, PipelineRequest
from schedtune.search import PipelineEvaluator, search_pipelines
from schedtune.search._pipelines import neighbours, pipeline_params, sample_pipeline
from schedtune.spaces import flag_candidates
from schedtune.store import Cache

from .conftest import DATA, FREE_STATUSES, counted_trials, kill_9_when

FLAGS = iree.target_flags("host")
MATMUL = (DATA / "matmul.mlir", ("64x128xf32", "128x96xf32"))
RGB_STEM = (DATA / "conv_rgb_stem.mlir", ("2x3x18x18xf32", "16x3x3x3xf32"))
INVERTED_RESIDUAL = (DATA / "inverted_residual_nchw.mlir", ("1x8x16x16xf32", "16x8x1x1xf32", "8x16x1x1xf32"))
ODD_STRIDED_DEPTHWISE = (DATA / "depthwise_odd_strided_nchw.mlir", ("1x5x13x13xf32", "7x5x1x1xf32"))
POOLS = (DATA / "pools_nchw.mlir", ("2x5x17x17xf32", "7x5x1x1xf32", "3x7x1x1xf32"))


def _evaluator(model, tmp_path, families, **kw) -> PipelineEvaluator:
    source, inputs = model
    ctx = ModelContext(source, "main", iree.save_inputs(inputs, tmp_path / "in", 0), FLAGS, tmp_path / "work", **kw)
    space = load_pipeline_space().for_families(families)
    return PipelineEvaluator(ctx, space, ctx.reference_outputs(), Cache(f"sqlite:///{tmp_path / 'c.db'}"), rounds=2)


def test_space_is_what_the_installed_iree_has(caplog):
    space = load_pipeline_space()
    assert "not in the installed IREE" not in caplog.text
    registered = iree.registered_passes()
    for spec in space.passes:
        if spec.template:  # a script: run by the transform interpreter, parsed by iree-opt
            assert "iree-preprocessing-transform-interpreter" in registered
            values = {o: v[-1] for o, v in spec.options}
            assert iree.pass_pipeline_error(space.text(Pipeline((PassStep(spec.name, tuple(values.items())),)))) is None
            continue
        if spec.sequence:  # a named run of registered passes
            assert set(spec.sequence) <= set(registered) and not spec.options
            continue
        assert spec.name in registered
        assert {o for o, _ in spec.options} <= registered[spec.name]
    # Today's fixed flag sets are all points of the space, so they are the search's baselines.
    families = {"matmul", "conv2d", "depthwise", "pooling", "attention", "reduction"}
    fixed, _ = flag_candidates(families)
    for candidate in fixed:
        assert space.for_families(families).from_flags(candidate.flags) is not None, candidate.name


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("iree-preprocessing-convert-conv-to-channels-lost", "does not refer to a registered pass"),
        ("iree-preprocessing-pad-linalg-ops{padding=8}", "no such option padding"),
        ("iree-preprocessing-pad-linalg-ops{pad-size=eight}", "invalid for integer argument"),
    ],
)
def test_bad_pipeline_rejected_before_compiling(tmp_path, text, reason):
    config = tmp_path / "job.yaml"
    config.write_text(
        f"name: bad\noutput: {tmp_path / 'reports'}\n"
        f"model: {{format: mlir, path: {MATMUL[0]}, entry: main, inputs: [64x128xf32, 128x96xf32]}}\n"
        f"search: {{tune_model_flags: true, pipelines: ['{text}']}}\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "schedtune.cli", "--config", str(config), "--quiet"], capture_output=True, text=True
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert (
        len(lines) == 1
        and lines[0].startswith("tune: config error: search.pipelines[0]: iree-opt rejects")
        and reason in lines[0]
    )
    assert not list(tmp_path.rglob("*.vmfb"))  # nothing was compiled


def test_unknown_pass_outside_the_space_is_a_constraint(tmp_path):
    space = load_pipeline_space()
    assert "unknown pass iree-foo" in pipeline_error(space, Pipeline((PassStep("iree-foo"),)))
    twice = Pipeline((PassStep("iree-preprocessing-transpose-matmul-pass"),) * 2)
    assert "appears twice" in pipeline_error(space, twice)
    assert "value not in" in pipeline_error(
        space, Pipeline((PassStep("iree-preprocessing-pad-linalg-ops", (("pad-size", "7"),)),))
    )


def test_pipeline_that_changes_numerics_is_wrong_result(tmp_path):
    evaluator = _evaluator(MATMUL, tmp_path, {"matmul"})
    demote = Pipeline(parse_passes("iree-global-opt-demote-contraction-inputs{operation=all type=bf16}"))
    result = evaluator.evaluate(demote, strict=False)
    assert result.status == "wrong_result", result
    # IREE's default is the reference itself: correct, and a ratio of exactly 1.
    assert evaluator.evaluate(Pipeline()).ratio == 1.0


def test_pipeline_that_fails_to_compile_is_a_failed_trial(tmp_path):
    evaluator = _evaluator(RGB_STEM, tmp_path, {"conv2d"})
    blocked = Pipeline((PassStep("iree-preprocessing-convert-conv-to-channels-last", (("tiling-factor", "8"),)),))
    assert pipeline_error(evaluator.space, blocked) is None  # valid text: only the build fails
    result = evaluator.evaluate(blocked)
    assert result.status == "compile_error" and "expand_shape" in result.error
    plain = evaluator.evaluate(Pipeline((PassStep("iree-preprocessing-convert-conv-to-channels-last"),)))
    assert plain.status == "ok" and plain.ratio > 0 and plain.default_ms > 0
    # Both verdicts are cached: a second evaluator compiles nothing.
    again = PipelineEvaluator(evaluator.model, evaluator.space, evaluator.reference, evaluator.cache)
    again.rounds = evaluator.rounds
    before = iree.compiles_so_far()
    assert again.evaluate(blocked).cached and again.evaluate(blocked).status == "compile_error"
    assert iree.compiles_so_far() == before


def test_pipeline_that_hangs_is_a_timeout(tmp_path, fake_tool):
    """A hanging pipeline build ends as a timeout, at a limit scaled from the default build's
    compile time (here the floor), not at the job's far larger one."""
    evaluator = _evaluator(MATMUL, tmp_path, {"matmul"}, compile_timeout_s=600)
    evaluator.compile_floor_s = 4
    evaluator.evaluate(Pipeline())  # the default build, before the hanging compiler is in place
    limit = evaluator.compile_timeout_s()
    assert 4 <= limit < 600
    fake_tool("iree-compile", "hanging_pipeline_compiler")
    result = evaluator.evaluate(Pipeline((PassStep("iree-preprocessing-transpose-matmul-pass"),)))
    assert result.status == "compile_timeout"
    assert f"timed out after {limit:.0f} s" in result.error


def test_encoding_round_trips_and_neighbours_are_legal():
    space = load_pipeline_space().for_families({"conv2d", "matmul"})
    pipeline = Pipeline(
        (
            PassStep("iree-preprocessing-convert-conv-to-channels-last", (("tiling-factor", "8"),)),
            PassStep("iree-preprocessing-pad-linalg-ops", (("pad-size", "16"),)),
        ),
        (("data-tiling", "on+ukernels"),),
    )
    # Flag groups have no order: sampled (space order) and read back from JSON (sorted) agree.
    both = Pipeline((), (("data-tiling", "on"), ("aggressive-fusion", "on")))
    assert both == Pipeline((), (("aggressive-fusion", "on"), ("data-tiling", "on")))
    assert Pipeline.from_json(json.loads(json.dumps(both.to_json(), sort_keys=True))) == both
    study = optuna.create_study()
    study.enqueue_trial(pipeline_params(pipeline, space))
    assert sample_pipeline(study.ask(), space) == pipeline
    moves = neighbours(pipeline, space)
    assert moves and all(not space.problems(p) for p in moves)
    for move in moves:  # every local move can be enqueued and reads back as itself
        study.enqueue_trial(pipeline_params(move, space))
        assert sample_pipeline(study.ask(), space) == move
    swapped = Pipeline(pipeline.passes[::-1], pipeline.choices)
    assert swapped in moves and Pipeline(pipeline.passes) in moves


def test_search_measures_proposals_then_searches(tmp_path):
    evaluator = _evaluator(MATMUL, tmp_path, {"matmul"})
    fixed, _ = flag_candidates({"matmul"})
    request = PipelineRequest(evaluator.space, tuple(fixed), {"matmul": 1.0})
    proposals = list(HeuristicProposer().propose_pipelines(request).pipelines)
    assert proposals[0] == (Pipeline(), "heuristic") and len(proposals) == len(fixed)
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 's.db'}")
    result = search_pipelines(
        evaluator, proposals, storage, study_name="p", trials=len(proposals) + 3, patience=10, seed=0, min_gain=0.05
    )
    sources = [t.source for t in result.tried]
    assert sources[: len(proposals)] == ["heuristic"] * len(proposals)
    assert {"search", "search:local"} & set(sources[len(proposals) :])
    assert len({t.pipeline for t in result.tried}) == len(result.tried)
    statuses = {t.result.status for t in result.tried}
    assert statuses <= {"ok", "compile_error", "wrong_result", "run_error", "compile_timeout"}
    assert result.ranked() and all(t.result.ratio > 0 for t in result.ranked())
    # A second run of the study adds nothing: the budget is met and persisted.
    again = search_pipelines(
        evaluator, proposals, storage, study_name="p", trials=len(proposals) + 3, patience=10, seed=0, min_gain=0.05
    )
    assert [t.pipeline for t in again.tried] == [t.pipeline for t in result.tried]


def _pipeline_trials(url):
    return [
        t
        for name, t in counted_trials(url)
        if ":pipelines:" in name
        and t.user_attrs.get("status") not in FREE_STATUSES
        and t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL)
    ]


def test_pipeline_search_resumes_after_kill_9(tmp_path):
    budget = 9
    config = tmp_path / "job.yaml"
    config.write_text(
        f"name: pipes\noutput: {tmp_path / 'reports'}\n"
        f"model: {{format: mlir, path: {MATMUL[0]}, entry: main, inputs: [64x128xf32, 128x96xf32]}}\n"
        "budget: {trials_per_dispatch: 2, confirm_rounds: 2}\n"
        f"search: {{seed: 0, tune_model_flags: true, pipeline_trials: {budget}, pipeline_patience: 20,\n"
        "  pipelines: ['iree-preprocessing-transpose-matmul-pass{input=rhs}']}\n"
    )
    url = f"sqlite:///{tmp_path / 'reports' / 'pipes' / 'study.db'}"
    cmd = [sys.executable, "-m", "schedtune.cli", "--config", str(config), "--quiet"]
    kill_9_when(cmd, tmp_path / "stderr.txt", lambda: len(_pipeline_trials(url)) >= 3, poll_s=0.25, polls=1200)
    before = _pipeline_trials(url)
    assert 3 <= len(before) < budget

    again = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr
    after = _pipeline_trials(url)
    assert len(after) == budget
    assert {t.number for t in before} <= {t.number for t in after}
    assert not [t for _, t in counted_trials(url) if t.state == optuna.trial.TrialState.RUNNING]
    pipelines = [t.user_attrs["pipeline"] for t in after]
    assert len(set(pipelines)) == len(pipelines)  # nothing measured twice
    summary = json.loads((tmp_path / "reports" / "pipes" / "summary.json").read_text())
    search = summary["pipeline_search"]
    assert search["measured"] == budget and len(search["tried"]) >= budget
    names = {row["name"] for row in summary["flag_candidates"]}
    assert {"default", "data-tiling", "user-1"} <= names  # the job's own pipeline is measured beside the fixed sets
    assert "user" in {row["source"] for row in search["tried"]}
    assert set(search["carried"]) <= names
    report = (tmp_path / "reports" / "pipes" / "report.md").read_text()
    assert "## Pipeline search" in report


def test_script_step_pads_the_rgb_stem_so_channels_last_can_block_it(tmp_path, monkeypatch):
    monkeypatch.setenv("SCHEDTUNE_SCRIPT_DIR", str(tmp_path / "scripts"))
    evaluator = _evaluator(RGB_STEM, tmp_path, {"conv2d"})
    padded = Pipeline(
        (
            PassStep("script:pad-conv-input-channels", (("multiple", "8"),)),
            PassStep("iree-preprocessing-convert-conv-to-channels-last", (("tiling-factor", "8"),)),
        )
    )
    assert pipeline_error(evaluator.space, padded) is None
    flags = evaluator.space.flags(padded)
    assert "iree-preprocessing-transform-interpreter{transform-spec-path=" in flags[0]
    scripts = list((tmp_path / "scripts" / f"schedtune-scripts-{os.getuid()}").glob("pad-conv-input-channels-*.mlir"))
    assert len(scripts) == 1 and "pad_to_multiple_of [8]" in scripts[0].read_text()
    result = evaluator.evaluate(padded)  # channels-last{tiling-factor=8} alone fails on 3 channels
    assert result.status == "ok", result.error

    # Exported flags point at a copy next to the report, not at the temporary file.
    from schedtune.export import write_exports

    class Confirmed:
        spec_text = "module {}\n"

    written = write_exports(tmp_path / "report", Confirmed(), flags)
    copy = tmp_path / "report" / "pipeline_scripts" / scripts[0].name
    assert copy.read_text() == scripts[0].read_text()
    assert written == [flags[0].replace(str(scripts[0]), str(copy.resolve()))]
    assert (tmp_path / "report" / "compile_flags.txt").read_text().split() == written


def test_script_that_computes_the_wrong_thing_is_wrong_result(tmp_path):
    """A transform script of the user's own that pads the reduction with ones, not zeros."""
    script = tmp_path / "pad_with_ones.mlir"
    template = (load_pipeline_space().pass_spec("script:pad-conv-input-channels")).template
    script.write_text(template.replace("{{multiple}}", "8").replace("0.0 : f32, 0.0 : f32", "1.0 : f32, 1.0 : f32"))
    evaluator = _evaluator(RGB_STEM, tmp_path, {"conv2d"})
    wrong = Pipeline(parse_passes(f"iree-preprocessing-transform-interpreter{{transform-spec-path={script}}}"))
    assert pipeline_error(evaluator.space, wrong, strict=False) is None
    assert evaluator.evaluate(wrong, strict=False).status == "wrong_result"


def _depthwise_pipeline(evaluator: PipelineEvaluator, flags: list[str], folder) -> str:
    """The IREE pipeline of the model's one depthwise op when built with `flags`."""
    from schedtune.dispatches import analyze_model

    ctx = evaluator.model
    analysis = analyze_model(ModelContext(ctx.source, "main", ctx.inputs, FLAGS + flags, folder))
    (root,) = [d.root for d in analysis.dispatches.values() if d.root and d.root.family == "depthwise"]
    return root.pipeline


def test_depthwise_script_moves_nchw_depthwise_convs_to_iree_depthwise_pipeline(tmp_path, monkeypatch):
    """channels-last alone leaves an NCHW depthwise conv on IREE's generic path (it reads NHWC,
    writes NCHW, gathers its filter); with the script after it the op is an NHWC depthwise on
    ConvTileAndDecomposeExpert, the numerics are the default build's, and the fixed flag set
    that names the script is rendered to a file iree-compile reads."""
    from schedtune.pipelines import compile_ready

    monkeypatch.setenv("SCHEDTUNE_SCRIPT_DIR", str(tmp_path / "scripts"))
    families = {"conv2d", "depthwise"}
    evaluator = _evaluator(INVERTED_RESIDUAL, tmp_path, families)
    space = evaluator.space
    fixed, _ = flag_candidates(families)
    ready = {c.name: c for c in compile_ready(space, fixed)}
    named = {c.name: c for c in fixed}["channels-last+depthwise"]
    assert "script:depthwise-channels-last" in named.flags[0]
    flags = ready["channels-last+depthwise"].flags
    assert "script:" not in flags[0] and "transform-spec-path=" in flags[0]
    assert _depthwise_pipeline(evaluator, list(ready["channels-last"].flags), tmp_path / "cl") == "DoubleTilingExpert"
    assert _depthwise_pipeline(evaluator, list(flags), tmp_path / "cl_dw") == "ConvTileAndDecomposeExpert"
    result = evaluator.evaluate(space.from_flags(named.flags))
    assert result.status == "ok", result.error


def test_depthwise_script_handles_odd_channels_strides_and_dilations(tmp_path, monkeypatch):
    monkeypatch.setenv("SCHEDTUNE_SCRIPT_DIR", str(tmp_path / "scripts"))
    evaluator = _evaluator(ODD_STRIDED_DEPTHWISE, tmp_path, {"conv2d", "depthwise"})
    pipeline = Pipeline(
        (PassStep("iree-preprocessing-convert-conv-to-channels-last"), PassStep("script:depthwise-channels-last"))
    )
    result = evaluator.evaluate(pipeline)
    assert result.status == "ok", result.error
    assert (
        _depthwise_pipeline(evaluator, evaluator.space.flags(pipeline), tmp_path / "a") == "ConvTileAndDecomposeExpert"
    )


def test_pooling_script_moves_nchw_pools_to_iree_pooling_pipeline(tmp_path, monkeypatch):
    """channels-last alone leaves a padded 3x3 stride-2 max pool over 7 channels NCHW, on IREE's
    generic path; with the script after it both pools (max, and the average pool's sum) are
    NHWC ops on ConvTileAndDecomposeExpert (the script's loop interchange is what gets them
    there), its transposes add no dispatch, and the numerics are the default build's, through
    the fixed flag set that names it."""
    from schedtune.dispatches import analyze_model
    from schedtune.pipelines import compile_ready

    monkeypatch.setenv("SCHEDTUNE_SCRIPT_DIR", str(tmp_path / "scripts"))
    families = {"conv2d", "pooling"}
    evaluator = _evaluator(POOLS, tmp_path, families)
    space = evaluator.space
    fixed = {c.name: c for c in flag_candidates(families)[0]}
    ready = {c.name: c for c in compile_ready(space, list(fixed.values()))}
    assert "script:pooling-channels-last" in fixed["channels-last+pooling"].flags[0]

    def pools(name: str) -> tuple[list[str], list[str]]:
        """The pools' pipelines, and the families of every dispatch."""
        ctx = evaluator.model
        flags = FLAGS + list(ready[name].flags)
        analysis = analyze_model(ModelContext(ctx.source, "main", ctx.inputs, flags, tmp_path / name))
        roots = [d.root for d in analysis.dispatches.values() if d.root]
        return sorted(r.pipeline for r in roots if r.family == "pooling"), sorted(r.family for r in roots)

    assert pools("channels-last")[0] == ["ConvTileAndDecomposeExpert", "DoubleTilingExpert"]
    moved, families_after = pools("channels-last+pooling")
    assert moved == ["ConvTileAndDecomposeExpert"] * 2
    assert families_after == ["matmul", "matmul", "pooling", "pooling"]
    result = evaluator.evaluate(space.from_flags(fixed["channels-last+pooling"].flags))
    assert result.status == "ok", result.error


@pytest.mark.parametrize(
    "model",
    [
        (DATA / "attention.mlir", ("2x4x32x16xf32", "2x4x48x16xf32", "2x4x48x8xf32")),
        (DATA / "attention_causal.mlir", ("2x4x32x16xf32", "2x4x32x16xf32", "2x4x32x8xf32")),
        (DATA / "attention_masked.mlir", ("2x4x32x16xf32", "2x4x48x16xf32", "2x4x48x8xf32", "2x4x32x48xf32")),
    ],
    ids=["sdpa", "causal", "masked"],
)
def test_decompose_attention_step_builds_data_tiled_batch_matmuls(model, tmp_path):
    """The sequence step `decompose-attention` is one slot of the space, exported as its two
    passes; the fixed flag set reads back as that step; the build has no attention op left,
    its two matmuls are data-tiled `batch_mmt4d` ops a spec can tune, and the numerics (no
    mask, causal, an additive mask input) are the default build's."""
    from schedtune.dispatches import analyze_model

    families = {"attention", "matmul"}
    evaluator = _evaluator(model, tmp_path, families)
    space = evaluator.space
    (fixed,) = [c for c in flag_candidates(families)[0] if c.name == "decompose-attention+data-tiling+ukernels"]
    pipeline = space.from_flags(fixed.flags)
    assert pipeline == Pipeline((PassStep("decompose-attention"),), (("data-tiling", "on+ukernels"),))
    assert space.flags(pipeline) == list(fixed.flags)
    assert "convert-attention-to-online-attention,iree-linalg-ext-decompose-attention" in fixed.flags[-1]
    assert not space.problems(pipeline)
    result = evaluator.evaluate(pipeline)
    assert result.status == "ok", result.error
    ctx = evaluator.model
    analysis = analyze_model(
        ModelContext(ctx.source, "main", ctx.inputs, FLAGS + space.flags(pipeline), tmp_path / "a")
    )
    roots = [d.root for d in analysis.dispatches.values() if d.root]
    assert not [r for r in roots if r.family == "attention"]
    assert len([r for r in roots if r.op_name == "linalg.batch_mmt4d" and r.family == "mmt4d"]) == 2


def test_sequence_step_needs_two_passes_and_no_options(tmp_path):
    from schedtune.errors import SpaceError

    (tmp_path / "pipelines.yaml").write_text(
        "passes:\n  - name: lone\n    sequence: [iree-linalg-ext-decompose-attention]\nglobal_flags: []\n"
    )
    with pytest.raises(SpaceError, match="two or more passes"):
        load_pipeline_space(tmp_path)
