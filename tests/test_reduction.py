"""The reduction family on a tiny layer-norm start (row sums, then rows minus their mean):
recognised, spec applies to the reduction only, numerics checked."""

from __future__ import annotations

from schedtune import iree
from schedtune.builds import ModelContext
from schedtune.dispatches import read_configured_executables
from schedtune.evaluation import Evaluator
from schedtune.spaces import load_space
from schedtune.spec import CompilationConfig, render_spec
from schedtune.store import Cache

from .conftest import DATA, target_of

FLAGS = iree.target_flags("host")
MODEL = DATA / "row_centre.mlir"


def _config() -> CompilationConfig:
    return CompilationConfig.make(
        "DoubleTilingExpert",
        {"distribution": [8, 0], "vector_common_parallel": [2, 0], "vector_reduction": [0, 32]},
    )


def test_generic_reduction_is_recognised(tmp_path):
    root = target_of(MODEL, tmp_path, "reduction").root
    assert [(loop.role, loop.bound, loop.parallel) for loop in root.loops] == [("par", 32, True), ("red", 64, False)]
    assert root.matcher.kind == "operands" and root.matcher.operand_count == 2
    assert not load_space("reduction").check_config(root.default_config, root)


def test_reduction_spec_applies_to_the_reduction_only(tmp_path):
    """The consumer's first two operands have the reduction's types: only the operand count
    tells them apart, and the consumer must keep IREE's own config."""
    target = target_of(MODEL, tmp_path / "a", "reduction")
    config = _config()
    assert config != target.root.default_config
    spec = tmp_path / "spec.mlir"
    spec.write_text(render_spec([(target.root.matcher, config)]))
    built = iree.compile_model(MODEL, tmp_path / "t.vmfb", FLAGS, spec=spec, configs_dir=tmp_path / "cfg")
    assert built.ok, built.error
    (dispatch,) = read_configured_executables(tmp_path / "cfg").values()
    assert dispatch.root.default_config == config
    text = next((tmp_path / "cfg").glob("*.mlir")).read_text()
    assert text.count(config.lowering_config_attr()) == 1  # on the reduction, not on its consumer
    inputs = iree.save_inputs(("32x64xf32",), tmp_path / "in", 0)
    evaluator = Evaluator(
        ModelContext(MODEL, "main", inputs, FLAGS, tmp_path / "w"), Cache(f"sqlite:///{tmp_path / 'c.db'}")
    )
    result = evaluator.evaluate(target, config)
    assert result.status == "ok", (result.status, result.error)
