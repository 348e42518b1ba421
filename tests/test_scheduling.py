"""Runs of compiled models start under the job's scheduling policy (`target.scheduling`).

SCHED_BATCH must be in place when the runtime tool starts, before it creates its worker
threads (which inherit it): the fake tools record the policy they were started under.
"""

from __future__ import annotations

import pytest

from tuner import iree
from tuner.evaluation import Cache, Evaluator, ModelContext

from .conftest import DATA, matmul_config, target_of

FLAGS = iree.target_flags("host")


def _model(tmp_path, **kwargs) -> ModelContext:
    timing, *check = iree.save_input_sets(("64x128xf32", "128x96xf32"), tmp_path / "in", 0)
    return ModelContext(
        DATA / "matmul.mlir", "main", timing, FLAGS, tmp_path / "work", check_inputs=tuple(check), **kwargs
    )


@pytest.mark.parametrize(("scheduling", "expected"), [("batch", "SCHED_BATCH"), ("normal", "SCHED_OTHER")])
def test_benchmarks_profiles_and_numeric_runs_start_under_the_jobs_policy(
    tmp_path, fake_tool, monkeypatch, scheduling, expected
):
    log = tmp_path / "policies.txt"
    monkeypatch.setenv("POLICY_LOG", str(log))
    model = _model(tmp_path, scheduling=scheduling)
    built = model.compile(tmp_path / "build")
    assert built.ok, built.error
    fake_tool("iree-benchmark-module", "policy_recording_tool")
    assert model.benchmark(built.vmfb, iterations=2) > 0
    iree.profile_dispatches(built.vmfb, "main", model.inputs, tmp_path / "prof", iterations=2, scheduling=scheduling)
    benchmark_policies = log.read_text().split()
    fake_tool("iree-run-module", "policy_recording_tool")
    sets, error = model.outputs(built.vmfb, tmp_path / "run")
    assert not error and len(sets) == len(model.input_sets)
    run_policies = log.read_text().split()[len(benchmark_policies) :]
    assert benchmark_policies == [expected] * 2
    assert run_policies and set(run_policies) == {expected}


def test_the_policy_is_part_of_every_cache_key(tmp_path):
    """Times taken under one policy are never ranked against times taken under the other."""
    target = target_of(DATA / "matmul.mlir", tmp_path / "t", "matmul")
    cache = Cache(f"sqlite:///{tmp_path / 'c.db'}")
    batch = Evaluator(_model(tmp_path / "b"), cache)
    normal = Evaluator(_model(tmp_path / "n", scheduling="normal"), cache)
    assert batch.key(target, matmul_config()) != normal.key(target, matmul_config())
    assert batch.model.build_key() != normal.model.build_key()


def test_use_scheduling_puts_this_thread_under_batch_and_rejects_unknown_policies():
    import threading

    seen = {}

    def run():
        iree.use_scheduling("batch")
        seen["after"] = iree.current_scheduling()
        inner = threading.Thread(target=lambda: seen.update(child=iree.current_scheduling()))
        inner.start()
        inner.join()

    thread = threading.Thread(target=run)  # its own thread: the test process keeps its policy
    thread.start()
    thread.join()
    assert seen == {"after": "batch", "child": "batch"}
    assert iree.current_scheduling() == "normal"
    with pytest.raises(ValueError, match="scheduling policy 'fifo'"):
        iree.use_scheduling("fifo")
