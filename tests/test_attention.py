"""The attention family on tiny SDPA models: recognised, spec applies (config read back),
numerics checked, the vector limit holds, and a spec IREE ignores is caught."""

from __future__ import annotations

import dataclasses

import pytest

from schedtune import iree
from schedtune.builds import ModelContext
from schedtune.dispatches import read_configured_executables
from schedtune.evaluation import Evaluator
from schedtune.spaces import load_space
from schedtune.spec import CompilationConfig, render_spec
from schedtune.store import Cache

from .conftest import DATA, target_of

FLAGS = iree.target_flags("host")
MODELS = {
    "attention.mlir": ("2x4x32x16xf32", "2x4x48x16xf32", "2x4x48x8xf32"),
    "attention_causal.mlir": ("2x4x32x16xf32", "2x4x32x16xf32", "2x4x32x8xf32"),
    "attention_masked.mlir": ("2x4x32x16xf32", "2x4x48x16xf32", "2x4x48x8xf32", "2x4x32x48xf32"),
}


def _evaluator(model: str, tmp_path):
    inputs = iree.save_inputs(MODELS[model], tmp_path / "in", 0)
    context = ModelContext(DATA / model, "main", inputs, FLAGS, tmp_path / "work")
    return Evaluator(context, Cache(f"sqlite:///{tmp_path / 'cache.db'}"))


def _config(roles: list[str], m: int, n: int, keys: int) -> CompilationConfig:
    def tile(values: dict[str, int]) -> list[int]:
        return [values.get(r, 0) for r in roles]

    return CompilationConfig.make(
        "LinalgExtTileAndVectorize",
        {
            "distribution": tile({"batch": 1, "m": 16, "n": 8}),
            "vector_common_parallel": tile({"batch": 1, "m": m, "n": n}),
            "vector_reduction": tile({"keys": keys}),
        },
    )


def test_sdpa_is_recognised_as_attention(tmp_path):
    target = target_of(DATA / "attention.mlir", tmp_path, "attention")
    root = target.root
    assert root.op_name == "iree_linalg_ext.online_attention"
    assert [(loop.role, loop.bound) for loop in root.loops] == [
        ("batch", 8),
        ("m", 32),
        ("n", 8),
        ("head", 16),
        ("keys", 48),
    ]
    assert [loop.parallel for loop in root.loops] == [True, True, True, False, False]
    assert root.default_config.pipeline == "LinalgExtTileAndVectorize"
    assert root.matcher.kind == "operands"
    # The heuristic's near-default skeleton can reproduce IREE's choice: a baseline trial.
    space = load_space("attention")
    assert not space.check_config(root.default_config, root)


@pytest.mark.parametrize("model", sorted(MODELS))
def test_attention_spec_applies_and_results_match(model, tmp_path):
    target = target_of(DATA / model, tmp_path, "attention")
    roles = [loop.role for loop in target.root.loops]
    config = _config(roles, m=4, n=8, keys=8)
    assert config != target.root.default_config
    assert not load_space("attention").check_config(config, target.root)
    spec = tmp_path / "spec.mlir"
    spec.write_text(render_spec([(target.root.matcher, config)]))
    parsed = iree.compile_model(DATA / model, tmp_path / "t.vmfb", FLAGS, spec=spec, configs_dir=tmp_path / "cfg")
    assert parsed.ok, parsed.error
    applied = [d.root for d in read_configured_executables(tmp_path / "cfg").values() if d.root]
    assert [r.default_config for r in applied if r.family == "attention"] == [config]
    # The evaluator's path: compiled, checked against the default build, timed.
    result = _evaluator(model, tmp_path).evaluate(target, config)
    assert result.status == "ok", (result.status, result.error)
    assert result.time_ns > 0


def test_operand_matcher_only_matches_its_shapes(tmp_path):
    """Two attention ops of different shapes get their own configs (matched by operand types)."""
    plain = target_of(DATA / "attention.mlir", tmp_path / "a", "attention")
    causal = target_of(DATA / "attention_causal.mlir", tmp_path / "c", "attention")
    assert plain.root.matcher != causal.root.matcher
    roles = [loop.role for loop in causal.root.loops]
    spec = tmp_path / "spec.mlir"
    spec.write_text(render_spec([(plain.root.matcher, _config(roles, m=2, n=8, keys=4))]))
    built = iree.compile_model(
        DATA / "attention_causal.mlir", tmp_path / "t.vmfb", FLAGS, spec=spec, configs_dir=tmp_path / "cfg"
    )
    assert built.ok, built.error
    (root,) = [
        d.root
        for d in read_configured_executables(tmp_path / "cfg").values()
        if d.root and d.root.family == "attention"
    ]
    assert root.default_config == causal.root.default_config


def test_score_step_over_the_vector_limit_is_rejected_and_does_fail(tmp_path):
    """The family's bound on the m x keys x head score contraction is IREE's own: a config just
    over it fails in iree-compile, so rejecting it before compiling loses nothing."""
    target = target_of(DATA / "attention.mlir", tmp_path, "attention")
    root = target.root
    roles = [loop.role for loop in root.loops]
    limit = root.vector_limit
    head = next(loop.bound for loop in root.loops if loop.role == "head")
    # m x keys x head reaches the limit while m x n x keys (the other contraction) stays under it.
    keys = 48
    m = -(-limit // (keys * head))
    too_big = CompilationConfig.make(
        "LinalgExtTileAndVectorize",
        {
            "distribution": [{"batch": 1, "m": 32, "n": 8}.get(r, 0) for r in roles],
            "vector_common_parallel": [{"batch": 1, "m": min(m, 32), "n": 1}.get(r, 0) for r in roles],
            "vector_reduction": [{"keys": keys}.get(r, 0) for r in roles],
        },
    )
    if min(m, 32) * keys * head < limit:
        pytest.skip("this CPU's vector limit is above what the tiny shapes can reach")
    errors = load_space("attention").check_config(too_big, root)
    assert any("score step" in e for e in errors), errors
    spec = tmp_path / "spec.mlir"
    spec.write_text(render_spec([(root.matcher, too_big)]))
    built = iree.compile_model(DATA / "attention.mlir", tmp_path / "t.vmfb", FLAGS, spec=spec)
    assert not built.ok and "large vector sizes" in built.error


def test_spec_on_the_pre_rewrite_op_is_reported_not_applied(tmp_path):
    """IREE rewrites `attention` to `online_attention` before specs apply on CPU: a spec that
    names the former compiles but does nothing, and the evaluator must say so."""
    target = target_of(DATA / "attention.mlir", tmp_path, "attention")
    stale = dataclasses.replace(target.root.matcher, op_name="iree_linalg_ext.attention")
    stale_target = dataclasses.replace(target, root=dataclasses.replace(target.root, matcher=stale))
    roles = [loop.role for loop in target.root.loops]
    result = _evaluator("attention.mlir", tmp_path).evaluate(stale_target, _config(roles, m=4, n=8, keys=8))
    assert result.status == "not_applied", (result.status, result.error)


def test_attention_winner_is_carried_into_a_data_tiled_build(tmp_path):
    """Data tiling leaves the attention dispatch as it was: its tuned config goes with the
    data-tiled build (re-targeted at that build's dispatches and applied there), while the
    matmul's config, whose op data tiling replaced by an mmt4d, stays behind."""
    from schedtune.dispatches import analyze_model
    from schedtune.export import carry_winners

    model = DATA / "attention_matmul.mlir"
    inputs = iree.save_inputs(("2x4x32x16xf32",) * 3 + ("16x24xf32",), tmp_path / "in", 0)

    def targets(flags: list[str], name: str):
        analysis = analyze_model(ModelContext(model, "main", inputs, FLAGS + flags, tmp_path / name))
        return analysis.all_targets

    tuned_under = {t.root.family: t for t in targets([], "default")}
    data_tiled = targets(["--iree-global-opt-data-tiling"], "dt")
    assert {t.root.family for t in data_tiled} == {"attention", "mmt4d"}
    attention = tuned_under["attention"]
    attention_config = _config([loop.role for loop in attention.root.loops], m=4, n=8, keys=8)
    matmul_config = tuned_under["matmul"].root.default_config
    carried = carry_winners([(tuned_under["matmul"], matmul_config), (attention, attention_config)], data_tiled)
    ((target, config),) = carried
    assert config == attention_config
    assert target in data_tiled and target.root.signature == attention.root.signature

    spec = tmp_path / "spec.mlir"
    spec.write_text(render_spec([(t.root.matcher, c) for t, c in carried]))
    flags = FLAGS + ["--iree-global-opt-data-tiling"]
    built = iree.compile_model(model, tmp_path / "t.vmfb", flags, spec=spec, configs_dir=tmp_path / "cfg")
    assert built.ok, built.error
    applied = read_configured_executables(tmp_path / "cfg")
    assert applied[target.dispatches[0]].root.default_config == attention_config
