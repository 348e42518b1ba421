"""Tuning history: the portable file, nearest records, configs mapped onto new shapes, warm
starts and zero-trial tuning (`--from-history`) with the real `tune` command."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import optuna
import pytest

from schedtune import history
from schedtune.config import load_config
from schedtune.errors import ConfigError
from schedtune.spaces import load_space, loop_names
from schedtune.spec import CompilationConfig
from schedtune.store import Cache, attrs

from .conftest import DATA, REPO, mlir_job, run_tune, target_of, tiny_matmul_job

# A matmul no study of this file has seen: 48x80x112 against the tiny matmul's 64x96x128.
NEW_MATMUL = """\
func.func @main(%a: tensor<48x112xf32>, %b: tensor<112x80xf32>) -> tensor<48x80xf32> {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<48x80xf32>
  %f = linalg.fill ins(%zero : f32) outs(%e : tensor<48x80xf32>) -> tensor<48x80xf32>
  %r = linalg.matmul ins(%a, %b : tensor<48x112xf32>, tensor<112x80xf32>) outs(%f : tensor<48x80xf32>) -> tensor<48x80xf32>
  return %r : tensor<48x80xf32>
}
"""


def _db(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "schedtune.cli", "db", *args], capture_output=True, text=True, cwd=REPO, timeout=300
    )


def _record(root, **changes) -> history.Record:
    """A record of the tiny matmul (64x96x128) as if measured on this machine."""
    from schedtune import iree

    base = history.Record(
        compiler=iree.compiler_version(),
        cpu_model=iree.host_cpu_model(),
        cpu_features=iree.host_cpu_features(),
        family="matmul",
        op_name=root.op_name,
        element_types=tuple(root.element_types),
        loops=(("m", 64), ("n", 96), ("k", 128)),
        flags=(),
        config=CompilationConfig.make(
            "DoubleTilingExpert",
            {
                "distribution": [32, 32, 0],
                "cache_parallel": [32, 32, 0],
                "vector_common_parallel": [4, 16, 0],
                "vector_reduction": [0, 0, 1],
            },
        ),
        time_ns=1000.0,
        default_ns=2000.0,
        source="unit:matmul_64x96x128",
    )
    return dataclasses.replace(base, **changes)


def _fingerprint():
    from schedtune import iree

    return {
        "compiler": iree.compiler_version(),
        "cpu_model": iree.host_cpu_model(),
        "cpu_features": iree.host_cpu_features(),
    }


def test_file_round_trip_and_bad_files(tmp_path):
    root = target_of(DATA / "matmul.mlir", tmp_path / "t", "matmul").root
    records = [_record(root), _record(root, compiler="3.12.0 @ other", time_ns=1500.0)]
    path = tmp_path / "h.jsonl"
    history.write_records(path, records)
    assert json.loads(path.read_text().splitlines()[0]) == {"format": history.FORMAT, "version": history.VERSION}
    assert history.read_records(path) == records
    cache = Cache(f"sqlite:///{tmp_path / 's.db'}")
    assert history.import_records(cache, records) == 2
    assert history.import_records(cache, records) == 0  # importing twice adds nothing
    assert sorted(history.imported_records(cache), key=lambda r: r.time_ns) == records
    newer = path.read_text().replace('"version": 1', '"version": 99', 1)
    (tmp_path / "v99.jsonl").write_text(newer)
    with pytest.raises(ConfigError, match="version 99"):
        history.read_records(tmp_path / "v99.jsonl")
    (tmp_path / "bad.jsonl").write_text(path.read_text().splitlines()[0] + "\n{not json\n")
    with pytest.raises(ConfigError, match=r"bad.jsonl:2: bad record"):
        history.read_records(tmp_path / "bad.jsonl")
    proc = _db("import", str(tmp_path / "bad.jsonl"), "--storage", f"sqlite:///{tmp_path / 'x.db'}")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_nearest_prefers_close_shapes_and_this_machine(tmp_path):
    root = target_of(DATA / "matmul.mlir", tmp_path / "t", "matmul").root
    here_far = _record(root, loops=(("m", 128), ("n", 192), ("k", 256)), source="far")
    here_near = _record(root, loops=(("m", 64), ("n", 96), ("k", 256)), source="near")
    elsewhere_near = _record(root, cpu_model="another CPU", loops=(("m", 64), ("n", 96), ("k", 256)), source="other")
    slower = _record(root, time_ns=3000.0, source="slower than default")
    conv = _record(root, family="conv2d", source="conv")
    found = history.nearest([here_far, elsewhere_near, slower, conv, here_near], root, _fingerprint(), k=5)
    assert [n.record.source for n in found] == ["near", "other", "far"]
    assert not found[1].same_machine and found[1].distance > found[0].distance
    # The config takes k whole (distribution and vector 0, reduction tile 1): its size
    # matters less than that of m, which the config splits into tiles.
    k_differs = _record(root, loops=(("m", 64), ("n", 96), ("k", 512)), source="k")
    m_differs = _record(root, loops=(("m", 256), ("n", 96), ("k", 128)), source="m")
    assert [n.record.source for n in history.nearest([m_differs, k_differs], root, _fingerprint())] == ["k", "m"]


def test_config_mapped_onto_a_new_shape_is_legal(tmp_path):
    model = tmp_path / "new.mlir"
    model.write_text(NEW_MATMUL)
    root = target_of(model, tmp_path / "t", "matmul").root
    space = load_space("matmul")
    record = _record(root)
    config = history.map_config(record, root, space)
    assert config is not None and space.check_config(config, root) == []
    tiles = config.tile_map
    names = loop_names(root)
    for level, sizes in tiles.items():
        for name, size in zip(names, sizes):
            bound = dict(zip(names, (l.bound for l in root.loops)))[name]
            assert space.is_legal(level, name, bound, size), (level, name, size)
    assert tiles["vector_common_parallel"] == (4, 16, 0)  # kept where legal


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The tiny matmul tuned (5 trials) and its storage exported as a history file."""
    tmp = tmp_path_factory.mktemp("hist")
    config = tiny_matmul_job(tmp)
    proc = run_tune(config)
    assert proc.returncode == 0, proc.stderr
    path = tmp / "history.jsonl"
    proc = _db("export", str(path), "--config", str(config))
    assert proc.returncode == 0, proc.stderr
    return tmp, path


def _new_job(tmp, name: str, extra: str = ""):
    model = tmp / "new.mlir"
    model.write_text(NEW_MATMUL)
    return mlir_job(tmp, name, model, ("48x112xf32", "112x80xf32"), 4, extra)


def test_export_writes_the_studies_best_config(exported):
    _, path = exported
    (record,) = history.read_records(path)
    assert record.family == "matmul" and record.loops == (("m", 64), ("n", 96), ("k", 128))
    assert record.time_ns > 0 and record.default_ns > 0 and record.trials >= 5


def test_zero_trial_tuning_without_history_exports_nothing_and_says_so(exported):
    tmp, _ = exported
    config = _new_job(tmp, "alone")
    proc = run_tune(config, "--from-history")
    assert proc.returncode == 0, proc.stderr
    job = load_config(config)
    summary = json.loads((job.report_dir / "summary.json").read_text())
    assert summary["search_mode"] == "from_history"
    assert summary["shipped"] == "none" or not summary["export"].get("kept")
    (row,) = summary["dispatches"]
    assert row["status"].startswith("skipped: no similar config in the history"), row["status"]
    assert row["trials"] == 0
    assert "no similar config in the history" in (job.report_dir / "report.md").read_text()


def test_imported_record_from_another_compiler_is_re_verified(exported):
    """A record claiming 1 ns under another compiler: zero-trial tuning tries its config here
    and keeps what it measures, never the record's time. The record is a fixed one that is not
    IREE's default config: the fixture's best of 5 trials may be the default itself, which is
    rightly no hint (then nothing is tried and the test would measure nothing)."""
    tmp, _ = exported
    root = target_of(tmp / "new.mlir", tmp / "t_zero", "matmul").root
    foreign = _record(root, compiler="3.12.0 @ elsewhere", time_ns=1.0)
    history.write_records(tmp / "foreign.jsonl", [foreign])
    config = _new_job(tmp, "zero")
    proc = _db("import", str(tmp / "foreign.jsonl"), "--config", str(config))
    assert proc.returncode == 0 and "1 new record" in proc.stdout, proc.stdout + proc.stderr
    proc = run_tune(config, "--from-history")
    assert proc.returncode == 0, proc.stderr
    job = load_config(config)
    summary = json.loads((job.report_dir / "summary.json").read_text())
    (row,) = summary["dispatches"]
    assert row["trials"] <= 2  # IREE's default and the mapped record: no search
    study = next(s for s in optuna.get_all_study_summaries(job.storage) if s.study_name.startswith("zero:"))
    trials = optuna.load_study(study_name=study.study_name, storage=job.storage).trials
    measured = [t for t in trials if t.value is not None]
    assert measured and min(t.value for t in measured) > 100.0  # timed here, in ns
    configs = {t.user_attrs.get(attrs.CONFIG) for t in trials}
    mapped = history.map_config(foreign, root, load_space("matmul"))
    assert mapped is not None and mapped.canonical() in configs
    assert mapped.canonical() != root.default_config.canonical()


def test_warm_start_enqueues_the_history_config_after_the_default(exported):
    """A record that beat IREE's default (a fixed one: whether the fixture's 5 trials beat the
    default depends on the machine's noise, and a record that did not is rightly no hint)."""
    tmp, _ = exported
    config = _new_job(tmp, "warm")
    root = target_of(tmp / "new.mlir", tmp / "t_warm", "matmul").root
    record = _record(root)
    mapped = history.map_config(record, root, load_space("matmul"))
    assert mapped is not None and mapped.canonical() != root.default_config.canonical()
    history.write_records(tmp / "win.jsonl", [record])
    assert _db("import", str(tmp / "win.jsonl"), "--config", str(config)).returncode == 0
    proc = run_tune(config)
    assert proc.returncode == 0, proc.stderr
    job = load_config(config)
    study = next(s for s in optuna.get_all_study_summaries(job.storage) if s.study_name.startswith("warm:"))
    trials = optuna.load_study(study_name=study.study_name, storage=job.storage).trials
    first = [t.user_attrs.get(attrs.CONFIG) for t in trials[:2]]
    assert first[0] == root.default_config.canonical()
    assert first[1] == mapped.canonical()


def test_attention_records_align_by_position_when_roles_differ(tmp_path):
    """A unit loop can take another role (GPT-2's batch of 1 reads as an `m` loop): a named
    op's loops are matched by position, so such records are still neighbours and map over."""
    root = target_of(DATA / "attention.mlir", tmp_path / "t", "attention").root  # batch, m, n, head, keys
    record = _record(
        root,
        family="attention",
        loops=(("m1", 8), ("m2", 64), ("n", 8), ("head", 16), ("keys", 64)),
        config=CompilationConfig.make(
            "LinalgExtTileAndVectorize",
            {
                "distribution": [1, 16, 8, 0, 0],
                "vector_common_parallel": [1, 8, 8, 0, 0],
                "vector_reduction": [0, 0, 0, 0, 8],
            },
        ),
    )
    (found,) = history.nearest([record], root, _fingerprint())
    assert found.distance < history.MAX_DISTANCE
    config = history.map_config(record, root, load_space("attention"))
    assert config is not None
    assert config.tile_map["vector_common_parallel"] == (1, 8, 8, 0, 0)
    assert config.tile_map["vector_reduction"] == (0, 0, 0, 0, 8)
