"""Runs of compiled models start under the job's scheduling policy (`target.scheduling`).

SCHED_BATCH must be in place when the runtime tool starts, before it creates its worker
threads (which inherit it): the fake tools record the policy they were started under.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from schedtune import iree
from schedtune.builds import ModelContext
from schedtune.evaluation import Evaluator
from schedtune.store import Cache

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


def test_use_scheduling_puts_every_thread_of_the_process_under_batch():
    """Threads that exist already (a BLAS pool started by numpy's import, one of ours) and
    threads started afterwards: all of them, as in-process benchmarks need."""
    script = textwrap.dedent(
        """
        import os, pathlib, threading
        import numpy
        from schedtune import iree
        stop = threading.Event()
        before = threading.Thread(target=stop.wait)
        before.start()
        iree.use_scheduling("batch")
        after = threading.Thread(target=stop.wait)
        after.start()
        print(sorted({os.sched_getscheduler(int(t.name)) for t in pathlib.Path("/proc/self/task").iterdir()}))
        print(len(list(pathlib.Path("/proc/self/task").iterdir())))
        stop.set()
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    policies, threads = proc.stdout.split("\n")[:2]
    assert policies == f"[{os.SCHED_BATCH}]" and int(threads) >= 3
    assert iree.current_scheduling() == "normal"  # this process was left alone
    with pytest.raises(ValueError, match="scheduling policy 'fifo'"):
        iree.use_scheduling("fifo")
