"""Bad input from every side (a shared temp folder, odd configs, stale files, hung runs, large
outliers in outputs): each is refused, redone or survived, never silently used."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import yaml

from schedtune import iree
from schedtune.builds import outputs_match
from schedtune.errors import ConfigError
from schedtune.files import JOURNAL, finish_pending, write_together
from schedtune.pipelines import load_pipeline_space
from schedtune.store import cache_key

from .conftest import DATA, FAKES, matmul_setup, run_tune


def _script_pass():
    return next(p for p in load_pipeline_space().passes if p.template)


def test_a_foreign_script_folder_is_not_used(tmp_path, monkeypatch):
    spec = _script_pass()
    options = tuple((name, values[0]) for name, values in spec.options)
    monkeypatch.setenv("SCHEDTUNE_SCRIPT_DIR", str(tmp_path / "clean"))
    clean = spec.script_path(options)
    # Another user got there first: their folder, open to all, holding their script under our name.
    shared = tmp_path / "shared"
    foreign = shared / f"schedtune-scripts-{os.getuid()}"
    foreign.mkdir(parents=True)
    (foreign / clean.name).write_text("// someone else's script\n")
    foreign.chmod(0o777)
    if os.getuid() == 0:
        os.chown(foreign, 65534, 65534)
    monkeypatch.setenv("SCHEDTUNE_SCRIPT_DIR", str(shared))
    used = spec.script_path(options)
    assert used.parent != foreign
    assert used.read_text() == clean.read_text()
    assert used.parent.stat().st_mode & 0o777 == 0o700


def test_a_tampered_script_in_our_own_folder_is_rewritten(tmp_path, monkeypatch):
    spec = _script_pass()
    monkeypatch.setenv("SCHEDTUNE_SCRIPT_DIR", str(tmp_path))
    path = spec.script_path(())
    good = path.read_text()
    path.write_text("// tampered\n")
    assert spec.script_path(()) == path and path.read_text() == good


@pytest.mark.parametrize(
    ("line", "message"),
    [("budget: {confirm_rounds: 0}", "budget.confirm_rounds: must be at least 1"), ("", "name: expected a plain")],
)
def test_configs_that_cannot_work_exit_2(tmp_path, line, message):
    name = "mm" if line else ".."
    config = tmp_path / "job.yaml"
    config.write_text(
        f"name: '{name}'\noutput: {tmp_path / 'reports'}\n"
        f"model: {{format: mlir, path: {DATA / 'matmul.mlir'}, inputs: [64x128xf32, 128x96xf32]}}\n{line}\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "schedtune.cli", "--config", str(config)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and message in proc.stderr
    assert not (tmp_path / "reports").exists() or not any((tmp_path / "reports").iterdir())


def test_one_large_element_does_not_hide_sign_flips():
    rng = np.random.default_rng(0)
    ref = rng.uniform(0.005, 0.02, size=(64, 128)).astype(np.float32)
    ref[0, 0] = 1000.0
    flipped = ref.copy()
    flipped[1:] *= -1
    assert outputs_match([ref.copy()], [ref]) == (True, 0.0)
    ok, _ = outputs_match([flipped], [ref])
    assert not ok


def test_int64_outputs_compare_exactly_above_2_to_the_53():
    ref = np.array([2**53, 7], dtype=np.int64)
    off = ref + np.array([1, 0], dtype=np.int64)
    ok, worst = outputs_match([off], [ref])
    assert not ok and worst == 1.0


def test_a_new_seed_or_a_truncated_file_regenerates_the_inputs(tmp_path):
    (first,) = iree.save_inputs(("16x16xf32",), tmp_path, seed=0)
    zero = np.load(first)
    (again,) = iree.save_inputs(("16x16xf32",), tmp_path, seed=1)
    assert again == first and not np.array_equal(np.load(again), zero)
    first.write_bytes(first.read_bytes()[:40])  # truncated
    iree.save_inputs(("16x16xf32",), tmp_path, seed=0)
    assert np.array_equal(np.load(first), zero)


def test_an_interrupted_export_leaves_a_consistent_pair(tmp_path, monkeypatch):
    write_together(tmp_path, {"tuning_spec.mlir": "old spec", "compile_flags.txt": "old flags"})
    import schedtune.files as files

    # Killed while staging (before the journal): the previous pair is intact.
    def killed(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(files, "write_atomic", killed)
    with pytest.raises(KeyboardInterrupt):
        write_together(tmp_path, {"tuning_spec.mlir": "new spec", "compile_flags.txt": "new flags"})
    monkeypatch.undo()
    assert (tmp_path / "tuning_spec.mlir").read_text() == "old spec"
    assert (tmp_path / "compile_flags.txt").read_text() == "old flags"
    assert not list(tmp_path.glob(".*partial"))

    # Killed between the two renames: the journal completes the new pair for the next reader.
    real_replace = os.replace
    calls = []

    def replace_once(src, dst):
        calls.append(dst)
        if len(calls) == 3:  # the journal's own rename, the first file, then the kill
            raise KeyboardInterrupt
        real_replace(src, dst)

    monkeypatch.setattr(files.os, "replace", replace_once)
    with pytest.raises(KeyboardInterrupt):
        write_together(tmp_path, {"tuning_spec.mlir": "new spec", "compile_flags.txt": "new flags"})
    monkeypatch.undo()
    assert (tmp_path / JOURNAL).exists()
    finish_pending(tmp_path)
    assert (tmp_path / "tuning_spec.mlir").read_text() == "new spec"
    assert (tmp_path / "compile_flags.txt").read_text() == "new flags"


def test_cache_keys_carry_the_tuners_version(monkeypatch):
    import schedtune.store._cache as cache

    before = cache_key(kind="trial", config="x")
    monkeypatch.setattr(cache, "VERDICTS_VERSION", cache.VERDICTS_VERSION + 1)
    assert cache_key(kind="trial", config="x") != before


def test_a_compile_timeout_is_retried_under_a_longer_limit(tmp_path):
    import dataclasses

    from schedtune.evaluation import Evaluator, TrialResult

    target, _url, evaluator = matmul_setup(tmp_path)
    config = target.root.default_config
    timed_out = TrialResult("compile_timeout", error="timed out", timeout_s=evaluator.model.compile_timeout_s)
    evaluator.cache.put(evaluator.key(target, config), "trial", "t", timed_out.to_json())
    assert evaluator.lookup(target, config).status == "compile_timeout"
    longer = Evaluator(
        dataclasses.replace(evaluator.model, compile_timeout_s=10 * evaluator.model.compile_timeout_s), evaluator.cache
    )
    assert longer.key(target, config) == evaluator.key(target, config)
    assert longer.lookup(target, config) is None
    assert longer.evaluate(target, config).status == "ok"
    assert longer.lookup(target, config).status == "ok"


def test_a_benchmark_that_hangs_at_the_confirmation_is_retried_and_reported(tmp_path, write_job):
    config = write_job(
        "mm",
        trials=2,
        extra="""\
        budget:
          trials_per_dispatch: 2
          confirm_rounds: 2
          run_timeout_s: 8
        """,
    )
    # (the job file's second `budget:` replaces the first: YAML's last key wins)
    env = dict(
        os.environ,
        SCHEDTUNE_IREE_BENCHMARK_MODULE=str(FAKES / "hanging_once_benchmark"),
        REAL_TOOL=iree.tool("iree-benchmark-module"),
        COUNTER=str(tmp_path / "hung"),
        HANG_AT="2",  # the first timing run is the default build's call time, at the start
    )
    proc = run_tune(config, env=env)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "hung").exists()  # it did hang once
    report = tmp_path / "reports" / "mm"
    summary = json.loads((report / "summary.json").read_text())
    failures = summary["export"]["confirm_failures"]
    assert len(failures) == 1 and "timed out" in failures[0]
    assert summary["export"]["dropped_contenders"] == {}
    assert (report / "tuning_spec.mlir").exists()
    assert "timed out" in (report / "report.md").read_text()


def test_a_pipeline_planted_in_the_storage_is_refused(tmp_path):
    """Pass text written into a shared study by someone else is not ranked, so never compiled."""
    import optuna

    from schedtune.pipelines import PassStep, Pipeline
    from schedtune.search._pipelines import PIPELINE, RATIO, PipelineSearch, _tried

    space = load_pipeline_space()
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 's.db'}", study_name="pipelines")
    planted = Pipeline(
        (PassStep("iree-preprocessing-transform-interpreter", (("transform-spec-path", "/any/file.mlir"),)),)
    )
    trial = study.ask()
    trial.set_user_attr(PIPELINE, json.dumps(planted.to_json()))
    trial.set_user_attr("status", "ok")
    trial.set_user_attr(RATIO, 0.5)
    study.tell(trial, 0.5)
    (read,) = _tried(study, space)
    assert read.result.status == "invalid" and "unknown pass" in read.result.error
    assert PipelineSearch("pipelines", [read]).best_searched(3) == []


def _record(**overrides) -> dict:
    from schedtune.spec import CompilationConfig
    from schedtune.store import Record

    config = CompilationConfig.make(
        "DoubleTilingExpert",
        {"distribution": [8, 32, 0], "vector_common_parallel": [4, 16, 0], "vector_reduction": [0, 0, 4]},
        True,
    )
    record = Record(
        compiler="3.13.0",
        cpu_model="AMD EPYC (family 25 model 1)",
        cpu_features="avx,avx2,fma",
        family="matmul",
        op_name="linalg.matmul",
        element_types=("f32", "f32", "f32"),
        loops=(("m", 64), ("n", 96), ("k", 128)),
        flags=("--iree-llvmcpu-target-cpu=host",),
        config=config,
        time_ns=1000.0,
        default_ns=2000.0,
        source="mm:matmul_64x96x128",
        trials=4,
    ).to_json()
    for key, value in overrides.items():
        if key == "tiles":
            record["config"]["tiles"]["distribution"] = value
        else:
            record[key] = value
    return record


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        ({"tiles": [8, -32, 0]}, "tile level distribution"),
        ({"time_ns": float("nan")}, "time_ns must be a finite time"),
        ({"source": "mm\nrm -rf /"}, "source is not a single short line"),
    ],
)
def test_db_import_refuses_a_bad_record_naming_its_line(tmp_path, bad, why):
    from schedtune.store import FORMAT, VERSION

    history = tmp_path / "h.jsonl"
    lines = [{"format": FORMAT, "version": VERSION}, _record(), _record(**bad)]
    history.write_text("".join(json.dumps(line) + "\n" for line in lines))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "schedtune.cli",
            "db",
            "import",
            str(history),
            "--storage",
            f"sqlite:///{tmp_path / 's.db'}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert f"{history}:3: bad record" in proc.stderr and why in proc.stderr


def test_a_bad_record_planted_in_a_storage_is_skipped(tmp_path, caplog):
    from schedtune import history
    from schedtune.store import Cache, Record

    cache = Cache(f"sqlite:///{tmp_path / 's.db'}")
    cache.put("planted", "history", "planted", _record(tiles=[8, -32, 0]))
    history.import_records(cache, [Record.from_json(_record())])
    records = history.imported_records(cache)
    assert len(records) == 1 and records[0].config.tile_map["distribution"] == (8, 32, 0)
    assert "skipped" in caplog.text


def test_input_ranges_reach_the_data_and_i8_covers_its_negatives(tmp_path):
    """Declared ranges bound every input set (ids up to a vocabulary's end); without one, the
    wide i8 set spans the type, negatives included, while i64 indices stay small and valid."""
    specs = ("4x256xi64", "4x256xi8", "64xf32")
    ranges = ((0, 30521), None, (-1.0, 1.0))
    for paths in iree.save_input_sets(specs, tmp_path / "ranged", 0, ranges):
        ids, codes, values = (np.load(p) for p in paths)
        assert ids.min() >= 0 and ids.max() <= 30521 and ids.max() > 1000
        assert -1.0 <= values.min() and values.max() <= 1.0
    _timing, (ids, codes, _values) = iree.save_input_sets(specs, tmp_path / "default", 0)
    codes, ids = np.load(codes), np.load(ids)
    assert codes.min() < 0 < codes.max() and codes.dtype == np.int8
    assert 0 <= ids.min() and ids.max() < 64


@pytest.mark.parametrize(
    "ranges, message",
    [
        ("['0..10']", "model.input_ranges: 1 entries for 2 inputs"),
        ("['0..10', 'x']", "model.input_ranges[1]: expected LOW..HIGH (numbers) or default, got 'x'"),
        ("['5..5', default]", "model.input_ranges[0]: '5..5' is empty"),
        ("['0..1.5', default]", "model.input_ranges[0]: expected LOW..HIGH (integers)"),
        ("['0..300', '0..1']", "model.input_ranges[0]: '0..300' does not fit in i8"),
    ],
)
def test_bad_input_ranges_name_the_entry(tmp_path, ranges, message):
    from schedtune.config import config_from_dict

    model = tmp_path / "m.mlir"
    model.write_text("")
    raw = yaml.safe_load(
        f"name: r\nmodel: {{format: mlir, path: {model}, inputs: [4xi8, 4xf32], input_ranges: {ranges}}}\n"
    )
    with pytest.raises(ConfigError) as info:
        config_from_dict(raw)
    assert message in str(info.value)


def test_a_build_whose_confirmation_fails_twice_is_left_out_and_the_search_kept(tmp_path, write_job):
    """Every end-to-end timing hangs: the build's confirmation is tried twice and left out,
    and IREE's default cannot be timed either. The job stops with one line that says so and
    a non-zero code; the trials stay in the storage for the next run."""
    import optuna

    config = write_job(
        "mm", trials=2, extra="budget:\n  trials_per_dispatch: 2\n  confirm_rounds: 2\n  run_timeout_s: 5\n"
    )
    env = dict(
        os.environ,
        SCHEDTUNE_IREE_BENCHMARK_MODULE=str(FAKES / "hanging_timing_benchmark"),
        REAL_TOOL=iree.tool("iree-benchmark-module"),
    )
    proc = run_tune(config, env=env)
    assert proc.returncode != 0
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert "no build could be timed end to end (default: " in proc.stderr
    assert "trials are saved" in proc.stderr
    log = (tmp_path / "reports" / "mm" / "tune.log").read_text()
    assert "confirming default failed (attempt 2)" in log
    storage = f"sqlite:///{tmp_path / 'reports' / 'mm' / 'study.db'}"
    trials = [
        t
        for s in optuna.get_all_study_summaries(storage)
        for t in optuna.load_study(study_name=s.study_name, storage=storage).trials
    ]
    assert sum(t.user_attrs.get("status") == "ok" for t in trials) >= 1
