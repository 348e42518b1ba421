"""The transform-dialect tier: a codegen script per dispatch, rendered from the config's tiles,
validated with iree-opt, compiled with a timeout and checked like every candidate."""

from __future__ import annotations

import json
import pathlib
import subprocess
import time

import optuna
import pytest

from schedtune import iree
from schedtune.builds import ModelContext
from schedtune.config import load_config
from schedtune.evaluation import Evaluator
from schedtune.export._confirm import Confirmation, write_exports
from schedtune.spaces import load_space
from schedtune.spec import TRANSFORM_DIALECT, CompilationConfig, DispatchOps, _transform, render_spec
from schedtune.store import Cache, attrs

from .conftest import DATA, mlir_job, run_tune, target_of

MODEL = DATA / "depthwise_nchw_relu.mlir"  # fill, depthwise (n, oh, ow, c, kh, kw), bias + ReLU6
INPUTS = ("2x16x18x18xf32", "16x3x3xf32", "16xf32")


@pytest.fixture(scope="module")
def target(tmp_path_factory):
    return target_of(MODEL, tmp_path_factory.mktemp("td"), "depthwise")


def _config(distribution=(1, 4, 16, 0, 0, 0), vector=(1, 1, 8, 1, 0, 0), steps=(0, 0, 0, 0, 1, 1)):
    return CompilationConfig.make(
        TRANSFORM_DIALECT,
        {"distribution": list(distribution), "vector_common_parallel": list(vector), "vector_reduction": list(steps)},
    )


def _evaluator(tmp_path, compile_timeout_s: float = 120.0) -> Evaluator:
    model = ModelContext(
        MODEL,
        "main",
        iree.save_inputs(INPUTS, tmp_path / "in", 0),
        iree.target_flags("host"),
        tmp_path / "w",
        compile_timeout_s=compile_timeout_s,
    )
    return Evaluator(model, Cache(f"sqlite:///{tmp_path / 'cache.db'}"))


def test_the_dispatch_is_read_for_the_script(target, tmp_path):
    # The consumer's loops (n, c, h, w) are the root's loops 0, 3, 1, 2.
    assert target.root.matcher.dispatch_ops == DispatchOps(3, 1, (0, 3, 1, 2))
    nhwc = target_of(DATA / "depthwise_nhwc.mlir", tmp_path / "nhwc", "depthwise")
    assert nhwc.root.matcher.dispatch_ops == DispatchOps(2, 1, None)  # the root writes the result


def test_constraints_name_what_cannot_be_built(target):
    space = load_space("depthwise").offering_transform_dialect(target.root)
    assert TRANSFORM_DIALECT in space.pipelines
    assert space.check_config(_config(), target.root) == []
    four = space.check_config(_config(distribution=(1, 4, 8, 8, 0, 0)), target.root)
    assert any("workgroup grid takes 1 to 3" in e for e in four)
    uneven = space.check_config(_config(distribution=(1, 3, 16, 0, 0, 0)), target.root)
    assert any("does not divide" in e for e in uneven)
    tiled_reduction = space.check_config(_config(vector=(1, 1, 8, 1, 1, 0)), target.root)
    assert any("is a reduction" in e for e in tiled_reduction)
    skeleton = space.transform_skeleton(target.root)
    assert not space.check_skeleton(skeleton, target.root)


def test_script_applies_and_computes_the_same(target, tmp_path):
    spec = render_spec([(target.root.matcher, _config())])
    assert iree.mlir_error(spec) is None
    result = _evaluator(tmp_path).evaluate(target, _config())
    # `ok` includes: the build's config read back is this one (pipeline and tiles), and the
    # outputs match IREE's default build.
    assert result.status == "ok", result.error
    assert result.time_ns > 0 and result.max_error is not None and result.max_error < 1e-4


def test_script_without_the_workgroup_count_is_a_wrong_result(target, tmp_path, monkeypatch):
    """IREE's trap: without the workgroup-count op the dispatch compiles, runs and computes
    only part of its output. The numerics check catches it."""
    monkeypatch.setattr(_transform, "WORKGROUP_COUNT", "")
    assert "workgroup_count" not in render_spec([(target.root.matcher, _config())])
    result = _evaluator(tmp_path).evaluate(target, _config())
    assert result.status == "wrong_result", (result.status, result.error)


def test_unreadable_script_is_rejected_before_compiling(target, tmp_path, monkeypatch):
    monkeypatch.setattr(_transform, "_LOWERING", [*_transform._LOWERING, "    transform.no_such_op %func"])
    evaluator = _evaluator(tmp_path)
    before = iree.compiles_so_far()
    result = evaluator.evaluate(target, _config())
    assert result.status == "compile_error" and result.error.startswith("iree-opt rejects the script"), result
    assert "\n" not in result.error
    assert iree.compiles_so_far() - before <= 1  # IREE's default build (the reference), nothing else


def test_script_that_hangs_is_a_timeout(target, tmp_path, fake_tool):
    evaluator = _evaluator(tmp_path, compile_timeout_s=5)
    evaluator.reference_outputs()  # the default build, before the hanging compiler is in place
    fake_tool("iree-compile", "hanging_transform_compiler")
    start = time.monotonic()
    result = evaluator.evaluate(target, _config())
    assert result.status == "compile_timeout"
    assert time.monotonic() - start < 60  # two attempts of 5 s, each process group killed


def test_exported_script_builds_with_stock_iree_compile(target, tmp_path):
    spec = render_spec([(target.root.matcher, _config())])
    confirmation = Confirmation([1.0], [1.0], 1, [target.label], {}, {}, spec, 0.0)
    flags = write_exports(tmp_path / "export", confirmation, [])
    assert flags == [f"--iree-codegen-transform-dialect-library={(tmp_path / 'export' / 'tuning_spec.mlir').resolve()}"]
    proc = subprocess.run(
        [
            iree.tool("iree-compile"),
            str(MODEL),
            *iree.target_flags("host"),
            *flags,
            f"--iree-codegen-tuning-spec-path={tmp_path / 'export' / 'tuning_spec.mlir'}",
            "--mlir-disable-threading",
            "--compile-to=executable-configurations",
            "-o",
            str(tmp_path / "configs.mlir"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "transform_dialect_codegen codegen_spec = @codegen_0" in (tmp_path / "configs.mlir").read_text()


def test_tune_offers_the_tier_when_asked(tmp_path):
    config = mlir_job(tmp_path, "td", MODEL, INPUTS, 4, ", transform_dialect: true, transform_dialect_trials: 3")
    proc = run_tune(config)
    assert proc.returncode == 0, proc.stderr
    job = load_config(config)
    (summary,) = [s for s in optuna.get_all_study_summaries(job.storage) if s.study_name.endswith(":td")]
    skeletons = [s["name"] for s in json.loads(summary.user_attrs[attrs.SKELETONS])]
    assert "td:tile-fuse-vectorise" in skeletons
    trials = optuna.load_study(study_name=summary.study_name, storage=job.storage).trials
    spent = [t for t in trials if t.user_attrs.get(attrs.STATUS) in ("ok", "compile_error", "wrong_result")]
    scripted = [t for t in spent if t.params.get("skeleton") == "td:tile-fuse-vectorise"]
    # The tier's own budget on top of the pipelines' (TPE alone gave it a few trials or none):
    # at least its quota is drawn from it.
    assert len(spent) == 4 + 3 and len(scripted) >= 3, [(t.params.get("skeleton"), t.user_attrs) for t in trials]
    assert all(t.user_attrs.get(attrs.STATUS) == "ok" for t in scripted), [t.user_attrs.get("error") for t in scripted]


BATCH1 = DATA / "conv_batch1.mlir"  # IREE folds the unit batch before the spec stage, re-inserts it after
BATCH1_INPUTS = ("1x18x18x16xf32", "3x3x16x32xf32")


def _batch1_config(pipeline=TRANSFORM_DIALECT):
    return CompilationConfig.make(
        pipeline,
        {
            "distribution": [0, 4, 16, 0, 0, 0, 0],
            "vector_common_parallel": [1, 1, 4, 16, 0, 0, 0],
            "vector_reduction": [0, 0, 0, 0, 1, 1, 4],
        },
    )


def test_a_script_reaches_a_batch1_conv(tmp_path):
    """IREE drops a spec's lowering_config on a batch-1 conv, but keeps a script's
    translation_info: matched in its batchless form, the script tunes the conv."""
    target = target_of(BATCH1, tmp_path / "t", "conv2d")
    matcher = target.root.matcher
    assert target.root.known_issue and target.root.script_only
    assert matcher.unit_batch_loop == 0
    # The op as IREE 3.13 prints it before MaterializeUserConfigs.
    assert matcher.batchless_maps == (
        "affine_map<(d0, d1, d2, d3, d4, d5) -> (d0 + d3, d1 + d4, d5)>",
        "affine_map<(d0, d1, d2, d3, d4, d5) -> (d3, d4, d5, d2)>",
        "affine_map<(d0, d1, d2, d3, d4, d5) -> (d0, d1, d2)>",
    )
    # A dense conv's scripts keep one output row and step the filter rows one at a time, so
    # that IREE's pass decomposes the conv into 1-D convs that vectorise.
    skeleton = load_space("conv2d").admitting(target.root).transform_skeleton(target.root)
    assert skeleton.level_map["vector_common_parallel"]["oh"] == (1,)
    assert skeleton.level_map["vector_reduction"]["kh"] == (1,)
    assert len(skeleton.level_map["vector_common_parallel"]["oc"]) > 1
    spec = render_spec([(matcher, _batch1_config())])
    assert "@match_op_0_batchless" in spec and iree.mlir_error(spec) is None
    model = ModelContext(
        BATCH1, "main", iree.save_inputs(BATCH1_INPUTS, tmp_path / "in", 0), iree.target_flags("host"), tmp_path / "w"
    )
    evaluator = Evaluator(model, Cache(f"sqlite:///{tmp_path / 'cache.db'}"))
    result = evaluator.evaluate(target, _batch1_config())
    # `ok`: the build's function carries the script's translation_info, outputs match the default build.
    assert result.status == "ok", result.error
    assert result.max_error is not None and result.max_error < 1e-4
    # The same tiles under IREE's own pipeline are still dropped: no batchless matcher for them.
    assert "_batchless" not in render_spec([(matcher, _batch1_config("ConvTileAndDecomposeExpert"))])
    assert evaluator.evaluate(target, _batch1_config("ConvTileAndDecomposeExpert")).status == "not_applied"


def test_tune_takes_a_batch1_conv_by_script_alone(tmp_path):
    """With the tier off, a batch-1 conv is still tuned, by scripts only, against IREE's
    default; `transform_dialect_only_route: false` leaves it untuned as before."""
    # The script route is for batch-1 convs that are not named between the build's halves.
    config = mlir_job(tmp_path, "b1", BATCH1, BATCH1_INPUTS, 4, ", named_batch1_convs: false")
    proc = run_tune(config)
    assert proc.returncode == 0, proc.stderr
    job = load_config(config)
    (summary,) = optuna.get_all_study_summaries(job.storage)
    assert summary.study_name.endswith(":td")
    skeletons = [s["name"] for s in json.loads(summary.user_attrs[attrs.SKELETONS])]
    assert skeletons[0] == "iree-default" and all(s.startswith("td:") for s in skeletons[1:]), skeletons
    trials = optuna.load_study(study_name=summary.study_name, storage=job.storage).trials
    spent = [t for t in trials if t.user_attrs.get(attrs.STATUS) not in (None, "constraint", "duplicate")]
    assert len(spent) == 4
    assert spent[0].params["skeleton"] == "iree-default" and spent[0].user_attrs[attrs.STATUS] == "ok"
    # Then the default's tiles under a script: the search starts beside the default.
    default = json.loads(spent[0].user_attrs[attrs.CONFIG])
    scripted = json.loads(spent[1].user_attrs[attrs.CONFIG])
    assert scripted["pipeline"] == TRANSFORM_DIALECT and scripted["tiles"] == default["tiles"]
    assert [t.user_attrs[attrs.STATUS] for t in spent[1:]].count("not_applied") == 0
    row = json.loads((tmp_path / "reports" / "b1" / "summary.json").read_text())["dispatches"][0]
    assert row["op_kind"] == "conv2d" and row["trials"] == 4

    (tmp_path / "off").mkdir()
    off = mlir_job(
        tmp_path / "off",
        "b1off",
        BATCH1,
        BATCH1_INPUTS,
        4,
        ", transform_dialect_only_route: false, named_batch1_convs: false",
    )
    proc = run_tune(off)
    assert proc.returncode == 0, proc.stderr
    assert optuna.get_all_study_summaries(load_config(off).storage) == []


def test_tune_takes_a_named_batch1_conv_with_iree_pipelines(tmp_path):
    """By default the batch-1 conv is named between the build's halves: IREE's pipeline
    configs reach it, no script is needed, and the export ships the prepared second half."""
    config = mlir_job(tmp_path, "b1n", BATCH1, BATCH1_INPUTS, 4)
    proc = run_tune(config)
    assert proc.returncode == 0, proc.stderr
    job = load_config(config)
    (study,) = optuna.get_all_study_summaries(job.storage)
    assert not study.study_name.endswith(":td")
    summary = json.loads((tmp_path / "reports" / "b1n" / "summary.json").read_text())
    (row,) = summary["dispatches"]
    assert row["op_name"] == "linalg.conv_2d_nhwc_hwcf" and row["trials"] == 4
    statuses = row["trial_statuses"]
    assert statuses.get("ok", 0) >= 2 and not statuses.get("not_applied"), statuses
    assert summary["prepared_model"] and pathlib.Path(summary["prepared_model"]).exists()
    assert iree.NAMED_BATCH1_FLAG not in summary["default_flags"]


def test_no_script_for_a_target_fused_differently_in_its_dispatches(tmp_path):
    """One script rebuilds one dispatch structure: a target whose dispatches differ (a ReLU
    fused after one of its matmuls) is not offered the tier (every script failed to compile
    on such a ResNet conv: 'expected to contain 3 payloads but it contains 2')."""
    from schedtune.dispatches import find_targets, read_configured_executables

    model = DATA / "matmul_twice_fused_apart.mlir"
    built = iree.compile_model(model, tmp_path / "d.vmfb", iree.target_flags("host"), configs_dir=tmp_path / "cfg")
    assert built.ok, built.error
    dispatches = read_configured_executables(tmp_path / "cfg")
    structures = {d.root.matcher.dispatch_ops for d in dispatches.values() if d.root and d.root.matcher}
    assert len(structures) == 2  # the same op, fused two ways
    timings = iree.profile_dispatches(
        tmp_path / "d.vmfb",
        "main",
        iree.save_inputs(("64x128xf32", "128x96xf32", "64x128xf32"), tmp_path / "in", 0),
        tmp_path / "prof",
        iterations=3,
    )
    (target,) = find_targets(dispatches, timings, time_share=1.0, max_targets=4)[0]
    assert len(target.dispatches) == 2 and target.root.matcher.dispatch_ops is None
    space = load_space("matmul").offering_transform_dialect(target.root)
    assert TRANSFORM_DIALECT not in space.pipelines


def test_a_batch1_conv_fused_differently_is_not_a_target(tmp_path):
    """Only a script reaches a batch-1 conv; when its dispatches differ no script does, and it
    is reported, not searched over IREE's pipelines (whose configs IREE would all drop)."""
    from schedtune.dispatches import find_targets, read_configured_executables

    model = DATA / "conv_batch1_twice_fused_apart.mlir"
    built = iree.compile_model(model, tmp_path / "d.vmfb", iree.target_flags("host"), configs_dir=tmp_path / "cfg")
    assert built.ok, built.error
    dispatches = read_configured_executables(tmp_path / "cfg")
    assert all(d.root.script_only for d in dispatches.values() if d.root and d.root.family == "conv2d")
    inputs = iree.save_inputs(("1x18x18x16xf32", "3x3x16x32xf32", "1x18x18x16xf32"), tmp_path / "in", 0)
    timings = iree.profile_dispatches(tmp_path / "d.vmfb", "main", inputs, tmp_path / "prof", iterations=3)
    targets, rows = find_targets(dispatches, timings, time_share=1.0, max_targets=4, scripts=True)
    assert targets == []
    reasons = [r.reason for r in rows if r.family == "conv2d"]
    assert len(reasons) == 2 and all("fused differently" in r for r in reasons), reasons
