"""The mmt4d family: data-tiled matmuls are tunable when encodings are materialised early
(`--iree-global-opt-data-tiling`), and a spec is reported not applied under the late form."""

from __future__ import annotations

from schedtune import iree
from schedtune.builds import ModelContext
from schedtune.dispatches import TuningTarget, read_configured_executables
from schedtune.evaluation import Evaluator
from schedtune.spaces import load_space
from schedtune.spec import CompilationConfig
from schedtune.store import Cache

from .conftest import DATA

EARLY = ["--iree-global-opt-data-tiling"]
LATE = ["--iree-opt-data-tiling"]
INPUTS = ("64x128xf32", "128x96xf32")


def _mmt4d_target(tmp_path, flags: list[str]) -> TuningTarget:
    tmp_path.mkdir(parents=True, exist_ok=True)
    built = iree.compile_model(
        DATA / "matmul.mlir", tmp_path / "d.vmfb", iree.target_flags("host") + flags, configs_dir=tmp_path / "cfg"
    )
    assert built.ok, built.error
    ((name, dispatch),) = [
        (n, d) for n, d in read_configured_executables(tmp_path / "cfg").items() if d.root and d.root.family == "mmt4d"
    ]
    return TuningTarget(dispatch.root, (name,), 1.0, 1.0, (dispatch.source_hash,))


def _evaluator(tmp_path, flags: list[str]) -> Evaluator:
    inputs = iree.save_inputs(INPUTS, tmp_path / "in", 0)
    context = ModelContext(DATA / "matmul.mlir", "main", inputs, iree.target_flags("host") + flags, tmp_path / "w")
    return Evaluator(context, Cache(f"sqlite:///{tmp_path / 'cache.db'}"))


def _other_config(target: TuningTarget) -> CompilationConfig:
    """IREE's default with one outer tile per workgroup and a k step of 2."""
    roles = [loop.role for loop in target.root.loops]
    tiles = {level: list(sizes) for level, sizes in target.root.default_config.tile_map.items()}
    tiles["distribution"] = [1 if r in ("b", "m", "n") else 0 for r in roles]
    tiles["vector_reduction"] = [2 if r == "k" else size for r, size in zip(roles, tiles["vector_reduction"])]
    return CompilationConfig.make("Mmt4dTilingExpert", tiles)


def test_data_tiled_matmul_is_an_mmt4d_target(tmp_path):
    target = _mmt4d_target(tmp_path, EARLY)
    root = target.root
    roles = [loop.role for loop in root.loops]
    assert roles[-6:] == ["m", "n", "k", "mi", "ni", "ki"]
    assert root.default_config.pipeline == "Mmt4dTilingExpert"
    space = load_space("mmt4d")
    assert not space.check_config(root.default_config, root)  # the baseline is in the space
    # The packed register tiles are the layout's, not a knob: a config that splits one is refused.
    tiles = {level: list(sizes) for level, sizes in root.default_config.tile_map.items()}
    tiles["vector_common_parallel"][roles.index("ni")] = 1
    errors = space.check_config(CompilationConfig.make("Mmt4dTilingExpert", tiles), root)
    assert any("packed tile ni" in e for e in errors), errors


def test_mmt4d_spec_applies_and_results_match(tmp_path):
    target = _mmt4d_target(tmp_path / "a", EARLY)
    config = _other_config(target)
    assert config != target.root.default_config
    assert not load_space("mmt4d").check_config(config, target.root)
    result = _evaluator(tmp_path, EARLY).evaluate(target, config)
    assert result.status == "ok", (result.status, result.error)
    assert result.time_ns > 0


def test_mmt4d_spec_under_late_data_tiling_is_not_applied(tmp_path):
    """With --iree-opt-data-tiling the mmt4d is built after specs apply (its dumped config is
    IREE's): a spec for it must be reported as not applied, not measured as a config."""
    target = _mmt4d_target(tmp_path / "a", LATE)
    result = _evaluator(tmp_path, LATE).evaluate(target, _other_config(target))
    assert result.status == "not_applied", (result.status, result.error)
