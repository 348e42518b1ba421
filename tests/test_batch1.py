"""Batch-1 convs and pools named again between IREE's two halves (NAMED_BATCH1_FLAG): a spec's
config reaches them, the numerics stay IREE's, and the export builds with stock iree-compile."""

from __future__ import annotations

import pathlib
import subprocess

import pytest

from schedtune import iree
from schedtune.builds import ModelContext, outputs_match
from schedtune.dispatches import TuningTarget, read_configured_executables
from schedtune.evaluation import Evaluator
from schedtune.iree._batch1 import name_batch1_convs
from schedtune.spec import CompilationConfig, render_spec
from schedtune.store import Cache

from .conftest import DATA

MODEL = DATA / "batch1_nhwc_block.mlir"
INPUTS = ("1x16x16x8xf32", "3x3x8x16xf32", "16xf32", "3x3x16xf32")
NAMED = [*iree.target_flags("host"), iree.NAMED_BATCH1_FLAG]
NAMES = {
    "conv2d": "linalg.conv_2d_nhwc_hwcf",
    "depthwise": "linalg.depthwise_conv_2d_nhwc_hwc",
    "pooling": "linalg.pooling_nhwc_max",
}


def _targets(tmp_path: pathlib.Path, flags: list[str]) -> dict[str, TuningTarget]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    built = iree.compile_model(MODEL, tmp_path / "d.vmfb", flags, configs_dir=tmp_path / "cfg")
    assert built.ok, built.error
    return {
        d.root.family: TuningTarget(d.root, (name,), 1.0, 1.0, (d.source_hash,))
        for name, d in read_configured_executables(tmp_path / "cfg").items()
        if d.root and d.root.family in NAMES
    }


def _other_config(target: TuningTarget) -> CompilationConfig:
    """IREE's default with the register block along the contiguous loop halved."""
    default = target.root.default_config
    tiles = {level: list(sizes) for level, sizes in default.tile_map.items()}
    loop = target.root.contiguous_loop
    assert tiles["vector_common_parallel"][loop] >= 2
    tiles["vector_common_parallel"][loop] //= 2
    return CompilationConfig.make(default.pipeline, tiles, default.loop_peeling)


def test_batch1_ops_come_through_named_and_without_the_known_issue(tmp_path):
    plain = _targets(tmp_path / "plain", iree.target_flags("host"))
    assert set(plain) == set(NAMES)
    assert all(t.root.known_issue and t.root.op_name == "linalg.generic" for t in plain.values())
    named = _targets(tmp_path / "named", NAMED)
    assert {f: t.root.op_name for f, t in named.items()} == NAMES
    for target in named.values():
        assert target.root.known_issue is None
        assert [l.bound for l in target.root.loops if l.role == "n"] == [1]
        assert target.root.default_config is not None


@pytest.mark.parametrize("family", sorted(NAMES))
def test_a_spec_config_reaches_a_named_batch1_op(tmp_path, family):
    """Applied (read back from the executable), numerics equal to the default build's; the
    same config without the flag is dropped by IREE."""
    target = _targets(tmp_path / "t", NAMED)[family]
    config = _other_config(target)
    inputs = iree.save_inputs(INPUTS, tmp_path / "in", 0)
    cache = Cache(f"sqlite:///{tmp_path / 'cache.db'}")
    result = Evaluator(ModelContext(MODEL, "main", inputs, NAMED, tmp_path / "w"), cache).evaluate(target, config)
    assert result.status == "ok", result.error
    assert result.time_ns and result.time_ns > 0


def test_named_build_computes_what_the_default_build_does(tmp_path):
    inputs = iree.save_input_sets(INPUTS, tmp_path / "in", 0)[1]  # the wide uniform set
    outputs = []
    for name, flags in (("plain", iree.target_flags("host")), ("named", NAMED)):
        built = iree.compile_model(MODEL, tmp_path / f"{name}.vmfb", flags)
        assert built.ok, built.error
        run = iree.run_model(built.vmfb, "main", inputs, tmp_path / name)
        assert run.status == "ok", run.error
        outputs.append(run.outputs)
    assert outputs_match(outputs[1], outputs[0])[0]


def _global_opt(model: pathlib.Path, tmp_path: pathlib.Path) -> pathlib.Path:
    optimised = tmp_path / f"{model.stem}.go.mlirbc"
    flags = [*iree.target_flags("host"), "--compile-to=global-optimization", "--emit-mlir-bytecode"]
    subprocess.run([iree.tool("iree-compile"), str(model), *flags, "-o", str(optimised)], check=True)
    return optimised


def test_only_exact_named_forms_are_rewritten(tmp_path):
    """Each op of the block is one named op; a conv of f16 inputs into f32 (its body extends
    the inputs) is no named form of one element type and keeps IREE's form."""
    counts = name_batch1_convs(_global_opt(MODEL, tmp_path), tmp_path / "named.mlirbc")
    assert counts == {NAMES[f]: 1 for f in NAMES}
    mixed = tmp_path / "mixed.mlir"
    mixed.write_text(
        "func.func @main(%x: tensor<1x8x8x4xf16>, %w: tensor<3x3x4x8xf16>) -> tensor<1x6x6x8xf32> {\n"
        "  %zero = arith.constant 0.0 : f32\n"
        "  %e = tensor.empty() : tensor<1x6x6x8xf32>\n"
        "  %f = linalg.fill ins(%zero : f32) outs(%e : tensor<1x6x6x8xf32>) -> tensor<1x6x6x8xf32>\n"
        "  %c = linalg.conv_2d_nhwc_hwcf ins(%x, %w : tensor<1x8x8x4xf16>, tensor<3x3x4x8xf16>)"
        " outs(%f : tensor<1x6x6x8xf32>) -> tensor<1x6x6x8xf32>\n"
        "  return %c : tensor<1x6x6x8xf32>\n}\n"
    )
    assert name_batch1_convs(_global_opt(mixed, tmp_path), tmp_path / "mixed_named.mlirbc") == {}


def test_prepared_model_builds_with_stock_iree_compile_and_keeps_the_spec(tmp_path):
    """What the export ships: the model's prepared second half, compiled by iree-compile itself
    with --compile-from=global-optimization and the spec; the config is read back."""
    target = _targets(tmp_path / "t", NAMED)["conv2d"]
    config = _other_config(target)
    prepared = tmp_path / "model.prepared.mlirbc"
    named = iree.prepare_named_batch1(MODEL, prepared, NAMED)
    assert "linalg.conv_2d_nhwc_hwcf" in named and prepared.exists()
    spec = tmp_path / "spec.mlir"
    spec.write_text(render_spec([(target.root.matcher, config)]))
    configs = tmp_path / "stock_cfg"
    subprocess.run(
        [
            iree.tool("iree-compile"),
            str(prepared),
            "--compile-from=global-optimization",
            *iree.target_flags("host"),
            f"--iree-codegen-tuning-spec-path={spec}",
            f"--iree-hal-dump-executable-configurations-to={configs}",
            "-o",
            str(tmp_path / "m.vmfb"),
        ],
        check=True,
    )
    conv = [d for d in read_configured_executables(configs).values() if d.root and d.root.family == "conv2d"]
    assert [d.root.default_config for d in conv] == [config]
    # Built again through the tuner's own compile (as compare.py does): the shipped file stays.
    flags = ["--compile-from=global-optimization", *iree.target_flags("host")]
    assert iree.compile_model(prepared, tmp_path / "again.vmfb", flags, spec=spec).ok
    assert prepared.exists()
