"""Evaluation against the real compiler: cache hits, not-applied detection, wrong results."""

from __future__ import annotations

import pytest

from schedtune import iree
from schedtune.builds import ModelContext, outputs_match
from schedtune.evaluation import Evaluator
from schedtune.spec import CompilationConfig
from schedtune.store import Cache

from .conftest import DATA, matmul_config, target_of

FLAGS = iree.target_flags("host")


def _evaluator(model, inputs, tmp_path):
    paths = iree.save_inputs(inputs, tmp_path / "in", 0)
    ctx = ModelContext(model, "main", paths, FLAGS, tmp_path / "work")
    return Evaluator(ctx, Cache(f"sqlite:///{tmp_path / 'cache.db'}"))


def test_cache_hit_costs_no_compile(tmp_path):
    target = target_of(DATA / "matmul.mlir", tmp_path, "matmul")
    evaluator = _evaluator(DATA / "matmul.mlir", ("64x128xf32", "128x96xf32"), tmp_path)
    config = matmul_config()
    first = evaluator.evaluate(target, config)
    assert first.status == "ok", first.error
    assert first.time_ns > 0 and not first.cached
    compiles = evaluator.compiles
    # A fresh evaluator on the same database: what a re-run or another worker sees.
    second = Evaluator(evaluator.model, Cache(f"sqlite:///{tmp_path / 'cache.db'}")).evaluate(target, config)
    assert second.cached and second.status == "ok" and second.time_ns == first.time_ns
    assert evaluator.compiles == compiles
    # A different compiler flag set is a different key.
    other = Evaluator(
        ModelContext(
            evaluator.model.source, "main", evaluator.model.inputs, FLAGS + ["--iree-opt-level=O2"], tmp_path / "w2"
        ),
        evaluator.cache,
    )
    assert other.lookup(target, config) is None


def test_batch1_conv_config_not_applied_is_detected(tmp_path):
    """IREE drops a spec's config on batch-1 convs; the tuner must say so, not report a speed-up."""
    target = target_of(DATA / "conv_batch1.mlir", tmp_path, "conv2d")
    evaluator = _evaluator(DATA / "conv_batch1.mlir", ("1x18x18x16xf32", "3x3x16x32xf32"), tmp_path)
    loops = [l.role for l in target.root.loops]
    tiles = {
        "distribution": [1 if r == "n" else 8 if r in ("oh", "ow", "oc") else 0 for r in loops],
        "vector_common_parallel": [1 if r in ("n", "oh") else 4 if r in ("ow", "oc") else 0 for r in loops],
        "vector_reduction": [1 if r in ("kh", "kw") else 4 if r == "ic" else 0 for r in loops],
    }
    config = CompilationConfig.make("ConvTileAndDecomposeExpert", tiles)
    assert config != target.root.default_config
    result = evaluator.evaluate(target, config)
    assert result.status in ("not_applied", "compile_error"), (result.status, result.error)
    assert result.time_ns is None


@pytest.mark.parametrize(("model", "batch"), [("pool_batch1_nchw.mlir", 1), ("pool_nchw.mlir", 2)])
def test_batch1_pool_is_a_known_issue_and_other_pools_take_a_spec(tmp_path, model, batch):
    """A spec's config on a batch-1 pool is dropped like a batch-1 conv's, so the family names
    it a known issue (the search skips it and says why); at batch 2 the same config applies."""
    target = target_of(DATA / model, tmp_path, "pooling")
    evaluator = _evaluator(DATA / model, (f"{batch}x16x16x16xf32",), tmp_path)
    roles = [loop.role for loop in target.root.loops]
    tiles = {
        "distribution": [1 if r == "n" else 8 if r in ("c", "oh", "ow") else 0 for r in roles],
        "vector_common_parallel": [1 if r in ("n", "oh") else 4 if r in ("c", "ow") else 0 for r in roles],
        "vector_reduction": [1 if r in ("kh", "kw") else 0 for r in roles],
    }
    config = CompilationConfig.make(target.root.pipeline, tiles)
    assert config != target.root.default_config
    result = evaluator.evaluate(target, config)
    if batch == 1:
        assert "batch-1 pool" in target.root.known_issue
        assert result.status == "not_applied", (result.status, result.error)
    else:
        assert target.root.known_issue is None
        assert result.status == "ok", result.error


def test_outputs_match_tolerates_reassociation_only():
    import numpy as np

    ref = [np.linspace(-10, 10, 100, dtype=np.float32)]
    ok, err = outputs_match([ref[0] + 1e-5], ref)
    assert ok and err < 1e-5
    ok, err = outputs_match([ref[0] * 1.01], ref)
    assert not ok
    ok, _ = outputs_match([ref[0][:50]], ref)
    assert not ok


def test_batch1_conv_target_is_reported_not_tunable(tmp_path):
    """The search stops after a few not-applied trials and says why, instead of spending the budget."""
    from schedtune.proposers import HeuristicProposer, ProposalRequest
    from schedtune.search import tune_target
    from schedtune.spaces import load_space

    target = target_of(DATA / "conv_batch1.mlir", tmp_path, "conv2d")
    evaluator = _evaluator(DATA / "conv_batch1.mlir", ("1x18x18x16xf32", "3x3x16x32xf32"), tmp_path)
    space = load_space("conv2d")
    request = ProposalRequest(target, space)
    skeletons = HeuristicProposer().propose(request).skeletons
    outcome = tune_target(
        target,
        space,
        skeletons,
        {},
        evaluator,
        storage=f"sqlite:///{tmp_path / 's.db'}",
        study_name="b1",
        trials=10,
        sampler="random",
        seed=0,
    )
    assert "batch-1" in outcome.untunable
    # Stops after the first batch that shows it (a batch is one compile per core), not at 10.
    assert 3 <= outcome.trials < 3 + evaluator.compile_workers
    assert set(outcome.statuses) <= {"not_applied", "constraint"}
    assert outcome.best_config is None


def test_worker_that_claims_after_the_holder_published_does_not_recompile(tmp_path):
    """Two workers, one config: B's lookup misses while A compiles, A publishes and releases,
    then B's claim succeeds. B must find A's result, not compile the config again (CI saw this)."""
    target = target_of(DATA / "matmul.mlir", tmp_path, "matmul")
    worker_a = _evaluator(DATA / "matmul.mlir", ("64x128xf32", "128x96xf32"), tmp_path)
    config = matmul_config(loop_peeling=True)

    class LateCache(Cache):
        """B's cache: A finishes the whole config right after B's first (missed) lookup."""

        lookups = 0

        def get(self, key):
            hit = super().get(key)
            LateCache.lookups += 1
            if LateCache.lookups == 1:
                assert hit is None
                assert worker_a.evaluate(target, config).status == "ok"
            return hit

    worker_b = Evaluator(worker_a.model, LateCache(f"sqlite:///{tmp_path / 'cache.db'}"))
    result = worker_b.evaluate(target, config)
    assert result.cached and result.status == "ok"
    assert worker_b.compiles == 0
    assert worker_a.cache.count("trial") == 1
    # B's successful claim was given back: a later worker is not told the config is in progress.
    assert worker_b.cache.claim(worker_b.key(target, config), "someone-else", 3600.0)


def test_fresh_result_is_recorded_before_it_is_published(tmp_path):
    """The study tells the trial from `record`: by then no other worker can see the cached result,
    so none can count the config as its own trial too."""
    target = target_of(DATA / "matmul.mlir", tmp_path, "matmul")
    evaluator = _evaluator(DATA / "matmul.mlir", ("64x128xf32", "128x96xf32"), tmp_path)
    config = matmul_config(loop_peeling=False)
    seen = []

    def record(i, result):
        seen.append((i, result.status, evaluator.lookup(target, config)))

    (result,) = evaluator.evaluate_many(target, [config], record=record)
    assert seen == [(0, "ok", None)]
    published = evaluator.lookup(target, config)
    assert published is not None and published.time_ns == result.time_ns
