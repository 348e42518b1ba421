"""Spaces and skeletons: constraints are checked before compiling, skeletons validated."""

from __future__ import annotations

import pytest

from schedtune import iree
from schedtune.builds import ModelContext
from schedtune.dispatches import TuningTarget, read_configured_executables
from schedtune.evaluation import Evaluator
from schedtune.proposers import HeuristicProposer, ProposalRequest, default_values
from schedtune.search import tune_target
from schedtune.spaces import Skeleton, load_space, loop_names
from schedtune.spec import CompilationConfig, render_spec
from schedtune.store import Cache

from .conftest import DATA

FLAGS = iree.target_flags("host")


@pytest.fixture(scope="module")
def target(tmp_path_factory):
    work = tmp_path_factory.mktemp("analysis")
    built = iree.compile_model(DATA / "matmul.mlir", work / "m.vmfb", FLAGS, configs_dir=work / "configs")
    assert built.ok
    root = next(
        d.root for d in read_configured_executables(work / "configs").values() if d.root and d.root.family == "matmul"
    )
    return TuningTarget(root, ("main_dispatch_0_matmul_64x96x128_f32",), 1.0, 1.0)


def _big_vector_config() -> CompilationConfig:
    # 16 x 32 x 16 = 8192 f32 vector elements: IREE rejects 512 native vectors (8192 f32 on
    # AVX-512, 4096 on AVX2).
    return CompilationConfig.make(
        "DoubleTilingExpert",
        {
            "distribution": [32, 32, 0],
            "cache_parallel": [32, 32, 0],
            "vector_common_parallel": [16, 32, 0],
            "vector_reduction": [0, 0, 16],
        },
    )


def test_constraint_rejects_large_vector_tiles(target):
    space = load_space("matmul")
    errors = space.check_config(_big_vector_config(), target.root)
    assert any("vector tile has 8192 elements" in e for e in errors)


def test_constraint_is_real(target, tmp_path):
    """What the pre-filter rejects does fail in iree-compile: the filter saves real compiles."""
    spec = tmp_path / "spec.mlir"
    spec.write_text(render_spec([(target.root.matcher, _big_vector_config())]))
    built = iree.compile_model(DATA / "matmul.mlir", tmp_path / "x.vmfb", FLAGS, spec=spec)
    assert not built.ok
    assert "large vector sizes" in built.error


def test_search_never_compiles_constraint_violations(target, tmp_path):
    space = load_space("matmul")
    levels = {
        "distribution": {"m": [32], "n": [32], "k": [0]},
        "vector_common_parallel": {"m": [16], "n": [32], "k": [0]},
        "vector_reduction": {"m": [0], "n": [0], "k": [16, 32]},
    }
    bad = Skeleton.make("too-big", "DoubleTilingExpert", [False], levels, {"cache_parallel": "distribution"})
    inputs = iree.save_inputs(("64x128xf32", "128x96xf32"), tmp_path / "in", 0)
    model = ModelContext(DATA / "matmul.mlir", "main", inputs, FLAGS, tmp_path)
    evaluator = Evaluator(model, Cache(f"sqlite:///{tmp_path / 'db.sqlite'}"))
    outcome = tune_target(
        target,
        space,
        (bad,),
        {},
        evaluator,
        storage=f"sqlite:///{tmp_path / 'db.sqlite'}",
        study_name="t",
        trials=2,
        sampler="random",
        seed=0,
    )
    assert evaluator.compiles == 0
    assert outcome.statuses == {"constraint": 12}  # 6 x budget attempts, all rejected before compiling
    assert outcome.best_config is None


def test_skeleton_validation_messages(target):
    space = load_space("matmul")
    levels = {
        "distribution": {"m": [32], "n": [7000], "k": [0]},
        "vector_common_parallel": {"m": [4], "n": [16], "k": [0]},
    }
    sk = Skeleton.make("bad", "Mmt4dTilingExpert", [True], levels)
    errors = space.check_skeleton(sk, target.root)
    assert any("pipeline 'Mmt4dTilingExpert' is not allowed" in e for e in errors)
    assert any("distribution.n: [7000] not allowed" in e for e in errors)
    assert any("tile level 'vector_reduction' is missing" in e for e in errors)


def test_heuristic_skeletons_are_valid_and_contain_default(target):
    space = load_space("matmul")
    request = ProposalRequest(target, space)
    proposal = HeuristicProposer().propose(request)
    assert [s.name for s in proposal.skeletons] == ["near-default", "lib:avx2-register-block", "space-wide"]
    for sk in proposal.skeletons:
        assert space.check_skeleton(sk, target.root) == []
    values = default_values(proposal.skeletons[0], request)
    assert values is not None
    assert proposal.skeletons[0].config(values, ["m", "n", "k"]) == target.root.default_config


def test_conv_library_follows_the_output_layout():
    """NCHW convs get the row register block, NHWC convs the channel one."""
    from schedtune.dispatches import Loop, RootOp

    def conv(order):
        bounds = {"n": 2, "oc": 64, "oh": 56, "ow": 56, "ic": 64, "kh": 3, "kw": 3}
        loops = tuple(Loop(r, bounds[r], r not in ("ic", "kh", "kw")) for r in order)
        return RootOp("linalg.generic", "conv2d", loops, ("f32",) * 3, None, None, "conv")

    space = load_space("conv2d")
    nchw = [s.name for s in space.library_skeletons(conv(["n", "oc", "oh", "ow", "ic", "kh", "kw"]))]
    nhwc = [s.name for s in space.library_skeletons(conv(["n", "oh", "ow", "oc", "kh", "kw", "ic"]))]
    assert nchw == ["lib:register-block-row"]
    assert nhwc == ["lib:register-block-channels", "lib:register-block-target"]


def _nhwc_conv(native_vector_bytes: int, ow: int = 7, oc: int = 512):
    from schedtune.dispatches import Loop, RootOp

    bounds = {"n": 1, "oh": ow, "ow": ow, "oc": oc, "kh": 3, "kw": 3, "ic": 512}
    loops = tuple(Loop(r, bounds[r], r not in ("ic", "kh", "kw")) for r in bounds)
    return RootOp(
        "linalg.conv_2d_nhwc_hwcf",
        "conv2d",
        loops,
        ("f32",) * 3,
        None,
        None,
        "conv",
        native_vector_bytes=native_vector_bytes,
        contiguous_loop=3,
    )


@pytest.mark.parametrize(("native_vector_bytes", "lanes"), [(32, 8), (64, 16)])
def test_target_skeleton_is_sized_for_the_targets_vectors(native_vector_bytes, lanes):
    """Channel tiles in vector widths of the target, row blocks that divide a 7-wide row."""
    root = _nhwc_conv(native_vector_bytes)
    space = load_space("conv2d")
    (skeleton,) = [s for s in space.library_skeletons(root) if s.name == "lib:register-block-target"]
    levels = skeleton.level_map
    assert levels["vector_common_parallel"]["oc"] == (lanes, 2 * lanes)
    assert levels["distribution"]["oc"] == (lanes, 2 * lanes, 4 * lanes)
    assert levels["vector_common_parallel"]["ow"] == (7,)
    assert not space.check_skeleton(skeleton, root)
    wide = _nhwc_conv(native_vector_bytes, ow=56)
    (skeleton,) = [s for s in space.library_skeletons(wide) if s.name == "lib:register-block-target"]
    assert skeleton.level_map["vector_common_parallel"]["ow"] == (4, 7, 8, 14, 28)
    assert not space.check_skeleton(skeleton, wide)


def test_register_block_past_the_register_file_is_rejected_before_compiling():
    """7 output columns x 4 vectors of channels is 28 accumulators: within AVX-512's 32
    registers, past AVX2's 16. A vector tile must divide its workgroup tile."""

    def config(ow, oc):
        return CompilationConfig.make(
            "ConvTileAndDecomposeExpert",
            {
                "distribution": [1, 1, 7, 64, 0, 0, 0],
                "vector_common_parallel": [1, 1, ow, oc, 0, 0, 0],
                "vector_reduction": [0, 0, 0, 0, 1, 1, 4],
            },
        )

    space = load_space("conv2d")
    avx512, avx2 = _nhwc_conv(64), _nhwc_conv(32)
    assert not space.check_config(config(7, 64), avx512)
    assert any("accumulators" in e for e in space.check_config(config(7, 64), avx2))
    assert not space.check_config(config(7, 16), avx2)
    assert any("accumulators" in e for e in space.check_config(config(7, 64 * 3), avx512))
    # Part of a 7-wide row: the remainder would run unvectorised.
    assert any("does not divide the workgroup tile 7 of loop ow" in e for e in space.check_config(config(2, 16), avx2))


def test_multi_loop_contraction_gets_every_skeleton(tmp_path):
    """A 1x1 conv (a contraction over n, oc, oh, ow, ic): the centre point of the wide skeletons
    has too large a vector tile, yet they hold feasible points and must not be thrown away
    (they were: MobileNet's pointwise convs were skipped with "no valid skeleton")."""
    built = iree.compile_model(DATA / "conv1x1_nchw.mlir", tmp_path / "m.vmfb", FLAGS, configs_dir=tmp_path / "cfg")
    assert built.ok, built.error
    root = next(d.root for d in read_configured_executables(tmp_path / "cfg").values() if d.root and d.root.matcher)
    assert root.family == "matmul" and [l.role for l in root.loops].count("m") == 2  # n and oh*ow
    space = load_space("matmul")
    target = TuningTarget(root, ("d",), 1.0, 1.0)
    skeletons = HeuristicProposer().propose(ProposalRequest(target, space)).skeletons
    assert [s.name for s in skeletons] == ["near-default", "lib:avx2-register-block", "space-wide"]
    loops = loop_names(root)
    for skeleton in skeletons:
        point = space.feasible_point(skeleton, root)
        assert point is not None and not space.check_config(skeleton.config(point, loops), root)


def test_repair_shrinks_vector_tiles_until_the_point_is_legal(target):
    """An infeasible draw is repaired to the nearest legal point below it (vector tiles only);
    a legal draw is left as it is; a skeleton with no legal point below the draw gives None."""
    space = load_space("matmul")
    levels = {
        "distribution": {"m": [32], "n": [32], "k": [0]},
        "vector_common_parallel": {"m": [4, 16], "n": [16, 32], "k": [0]},
        "vector_reduction": {"m": [0], "n": [0], "k": [16, 32, 64]},
    }
    skeleton = Skeleton.make("big", "DoubleTilingExpert", [False], levels, {"cache_parallel": "distribution"})
    loops = loop_names(target.root)
    limit = target.root.vector_limit
    draw = {"vector_common_parallel.m": 16, "vector_common_parallel.n": 32, "vector_reduction.k": 64}
    assert 16 * 32 * 64 >= limit and space.check_config(skeleton.config(draw, loops), target.root)
    repaired = space.repair(skeleton, draw, target.root)
    assert repaired is not None
    assert not space.check_config(skeleton.config(repaired, loops), target.root)
    assert all(repaired[k] <= v for k, v in draw.items()) and repaired != draw
    legal = {"vector_common_parallel.m": 4, "vector_common_parallel.n": 16, "vector_reduction.k": 16}
    assert space.repair(skeleton, legal, target.root) == legal
    # Vector tiles larger than the distribution tiles and no smaller choice: nothing to repair to.
    fixed = Skeleton.make(
        "fixed",
        "DoubleTilingExpert",
        [False],
        {
            **levels,
            "distribution": {"m": [2], "n": [32], "k": [0]},
            "vector_common_parallel": {"m": [4], "n": [16], "k": [0]},
        },
        {"cache_parallel": "distribution"},
    )
    assert space.repair(fixed, {"vector_reduction.k": 16}, target.root) is None
