"""Frontends: each imports a tiny model, the imported module compiles, runs and matches the framework."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from schedtune import iree
from schedtune.config import ConfigError, ModelSpec, load_config
from schedtune.frontend import FrontendError, import_model

from .conftest import COMPARE_ROWS, DATA, check_exported_spec, run_tune

TINY = DATA / "tiny_models.py"


def _compile_and_run(imported, inputs: list[np.ndarray], tmp: pathlib.Path) -> np.ndarray:
    flags = iree.target_flags("host", imported.input_flags)
    built = iree.compile_model(imported.path, tmp / "m.vmfb", flags, timeout_s=300)
    assert built.ok, built.error
    paths = []
    for i, arr in enumerate(inputs):
        paths.append(tmp / f"in_{i}.npy")
        np.save(paths[-1], arr)
    run = iree.run_model(tmp / "m.vmfb", imported.entry, paths, tmp / "run")
    assert run.status == "ok", run.error
    return run.outputs[0]


@pytest.mark.parametrize("factory, shape", [("tiny_convnet", (2, 3, 16, 16)), ("tiny_mlp", (4, 128))])
def test_torch_frontend_matches_pytorch(tmp_path, factory, shape):
    import torch

    spec = ModelSpec(format="torch", inputs=("x".join(map(str, shape)) + "xf32",), factory=f"{TINY}:{factory}")
    imported = import_model(spec, tmp_path / "imports")
    assert imported.input_flags == ("--iree-input-type=torch",)
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    got = _compile_and_run(imported, [x], tmp_path)

    sys.path.insert(0, str(DATA))
    try:
        import tiny_models
    finally:
        sys.path.remove(str(DATA))
    with torch.no_grad():
        want = getattr(tiny_models, factory)()(torch.from_numpy(x)).numpy()
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def _tiny_onnx(path: pathlib.Path) -> None:
    """MatMul + bias + ReLU + MatMul + Softmax, built with onnx.helper (no exporter involved)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array(rng.standard_normal((32, 48)).astype(np.float32), "w1")
    b1 = numpy_helper.from_array(rng.standard_normal((48,)).astype(np.float32), "b1")
    w2 = numpy_helper.from_array(rng.standard_normal((48, 10)).astype(np.float32), "w2")
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h"]),
        helper.make_node("Add", ["h", "b1"], ["hb"]),
        helper.make_node("Relu", ["hb"], ["r"]),
        helper.make_node("MatMul", ["r", "w2"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["y"], axis=-1),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_graph",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [8, 32])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [8, 10])],
        initializer=[w1, b1, w2],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def test_onnx_frontend_matches_onnxruntime(tmp_path):
    import onnxruntime as ort

    model_file = tmp_path / "tiny.onnx"
    _tiny_onnx(model_file)
    imported = import_model(ModelSpec(format="onnx", inputs=("8x32xf32",), path=model_file), tmp_path / "imports")
    assert imported.entry == "tiny_graph"
    assert imported.input_flags == ("--iree-input-type=onnx",)
    x = np.random.default_rng(2).standard_normal((8, 32)).astype(np.float32)
    got = _compile_and_run(imported, [x], tmp_path)
    want = ort.InferenceSession(str(model_file), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize(
    "file, input_type, shapes, reference",
    [
        ("add_tosa.mlir", "tosa", [(4, 8), (4, 8)], lambda a, b: a + b),
        ("dot_stablehlo.mlir", "stablehlo", [(4, 8), (8, 3)], lambda a, b: a @ b),
        ("matmul.mlir", "linalg", [(64, 128), (128, 96)], lambda a, b: np.maximum(a @ b, 0)),
    ],
)
def test_mlir_input_types(tmp_path, file, input_type, shapes, reference):
    spec = ModelSpec(format="mlir", inputs=(), path=DATA / file, input_type=input_type)
    imported = import_model(spec, tmp_path / "imports")
    assert imported.path == DATA / file  # MLIR is used in place, never copied
    rng = np.random.default_rng(3)
    args = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    got = _compile_and_run(imported, args, tmp_path)
    np.testing.assert_allclose(got, reference(*args), rtol=1e-4, atol=1e-4)


def test_import_is_cached_by_content(tmp_path):
    factory_file = tmp_path / "models" / "net.py"
    factory_file.parent.mkdir()
    factory_file.write_text(TINY.read_text())
    spec = ModelSpec(format="torch", inputs=("4x128xf32",), factory=f"{factory_file}:tiny_mlp")
    first = import_model(spec, tmp_path / "imports")
    stamp = first.path.stat().st_mtime_ns
    again = import_model(spec, tmp_path / "imports")
    assert again.path == first.path and again.path.stat().st_mtime_ns == stamp  # not imported again
    # A change in the factory's folder (a helper module the factory may import) is a new model.
    (factory_file.parent / "helper.py").write_text("SCALE = 2\n")
    changed = import_model(spec, tmp_path / "imports")
    assert changed.path != first.path
    assert sorted(p.name for p in (tmp_path / "imports").iterdir()) == sorted(
        [first.path.parent.name, changed.path.parent.name]
    )


@pytest.mark.parametrize(
    "factory, message",
    [
        ("broken", "RuntimeError: weights file missing"),
        ("not_a_module", "returned int, not a torch.nn.Module"),
        ("no_such_function", "has no no_such_function"),
    ],
)
def test_torch_factory_errors_are_one_line(tmp_path, factory, message):
    spec = ModelSpec(format="torch", inputs=("4x128xf32",), factory=f"{TINY}:{factory}")
    with pytest.raises(FrontendError, match=message) as info:
        import_model(spec, tmp_path / "imports")
    assert "\n" not in str(info.value)
    assert not list((tmp_path / "imports").glob("*/model.mlir"))  # a failed import is not cached


def test_bad_onnx_file(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"this is not protobuf")
    with pytest.raises(FrontendError, match="not a readable ONNX model"):
        import_model(ModelSpec(format="onnx", inputs=("1xf32",), path=bad), tmp_path / "imports")


def test_missing_extra_names_it(tmp_path, write_job, monkeypatch, capsys):
    """Without the onnx package the job stops at once with the pip command for the extra."""
    import importlib.util

    from schedtune import cli

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnx" else real(name, *a))
    model_file = tmp_path / "tiny.onnx"
    model_file.write_bytes(b"")
    config = write_job("needs_onnx", model=model_file, inputs=("8x32xf32",))
    config.write_text(config.read_text().replace("format: mlir", "format: onnx"))
    assert cli.main(["--config", str(config), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err
        == "tune: config error: model.format onnx: onnx is not installed; install the extra: pip install -e '.[onnx]'"
    )


@pytest.mark.parametrize(
    "model, message",
    [
        ("format: torch\n  inputs: [4x128xf32]", "model.factory: needed for format torch"),
        ("format: torch\n  factory: nowhere.py:f\n  inputs: [4x128xf32]", "model.factory: file not found"),
        ("format: torch\n  factory: tiny_mlp\n  inputs: [4x128xf32]", "not of the form module:function"),
        ("format: onnx\n  inputs: [4x128xf32]", "model.path: needed for format onnx"),
        (
            "format: onnx\n  path: x.onnx\n  input_type: tosa\n  inputs: [1xf32]",
            "model.input_type: only for format mlir",
        ),
    ],
)
def test_frontend_config_errors(tmp_path, model, message):
    (tmp_path / "x.onnx").write_bytes(b"")
    config = tmp_path / "job.yaml"
    config.write_text(f"name: j\nmodel:\n  {model}\n")
    with pytest.raises(ConfigError, match=message):
        load_config(config)


@pytest.fixture(scope="module")
def torch_job(tmp_path_factory):
    """A tiny `format: torch` job tuned once by the real `tune` command (then run again)."""
    tmp = tmp_path_factory.mktemp("torch_job")
    config = tmp / "tiny.yaml"
    config.write_text(
        f"name: tiny\noutput: {tmp / 'reports'}\n"
        f"model:\n  format: torch\n  factory: {TINY}:tiny_mlp\n  inputs: [64x128xf32]\n"
        "budget:\n  trials_per_dispatch: 3\n  confirm_rounds: 3\n"
        "search:\n  tune_model_flags: false\n"
    )
    runs = [run_tune(config) for _ in range(2)]
    return config, tmp / "reports" / "tiny", runs


def test_tune_a_torch_model_end_to_end(torch_job):
    """`tune` on `format: torch`: exported, tuned, spec exported, and the re-run imports nothing."""
    _config, report, (first, second) = torch_job
    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    check_exported_spec(report)
    log = (report / "tune.log").read_text()
    assert log.count("model import: /") == 1  # exported once ...
    assert log.count("model import: cached") == 1  # ... and read back by the second run
    summary = json.loads((report / "summary.json").read_text())
    assert summary["model_format"] == "torch" and summary["entry"] == "main"
    assert summary["dispatches"] and summary["dispatches"][0]["op_kind"] == "matmul"


def test_compare_runs_every_framework(torch_job):
    """tune compare: IREE default and tuned, onnxruntime, PyTorch; outputs agree; chart written."""
    config, report, _runs = torch_job
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "schedtune.cli",
            "compare",
            "--config",
            str(config),
            "--rounds",
            "2",
            "--iterations",
            "3",
            "--no-torch-compile",
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads((report / "compare.json").read_text())
    rows = {r["runner"]: r for r in result["rows"]}
    assert set(rows) == set(COMPARE_ROWS)
    assert result["reference"] == "PyTorch eager"
    for row in rows.values():
        assert row["max_rel_error"] < 1e-4 and len(row["rounds_ms"]) == 2 and row["median_ms"] > 0
    assert (report / "compare.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| onnxruntime" in (report / "compare.md").read_text()


def test_compare_before_tune_is_one_line(tmp_path, write_job):
    config = write_job("never_tuned")
    proc = subprocess.run(
        [sys.executable, "-m", "schedtune.cli", "compare", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "run `tune --config" in proc.stderr


def test_tune_an_onnx_model_end_to_end(tmp_path):
    """`tune` on `format: onnx`: the graph's name is the entry, the matmuls are tuned, outputs checked."""
    model_file = tmp_path / "tiny.onnx"
    _tiny_onnx(model_file)
    config = tmp_path / "onnx_job.yaml"
    config.write_text(
        f"name: tiny_onnx\noutput: {tmp_path / 'reports'}\n"
        f"model: {{format: onnx, path: {model_file}, inputs: [8x32xf32]}}\n"
        "budget: {trials_per_dispatch: 2, confirm_rounds: 3, time_share: 1.0}\n"
        "search: {tune_model_flags: false}\n"
    )
    proc = run_tune(config)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((tmp_path / "reports" / "tiny_onnx" / "summary.json").read_text())
    assert summary["model_format"] == "onnx" and summary["entry"] == "tiny_graph"
    # The matmuls, and the softmax's reductions (time_share 1.0 takes every tunable op).
    assert {"matmul"} <= {d["op_kind"] for d in summary["dispatches"]} <= {"matmul", "reduction"}
    assert all(sum(d["trial_statuses"].values()) >= 2 for d in summary["dispatches"])


def test_a_bf16_torch_module_imports_tunes_and_matches_pytorch(tmp_path):
    """bf16 parameters and inputs (numpy has no bf16: they travel as ml_dtypes' bfloat16 and
    as raw bits); the tuned build's outputs are compared in bf16 with bf16's tolerance."""
    import ml_dtypes
    import torch

    spec = ModelSpec(format="torch", inputs=("4x128xbf16",), factory=f"{TINY}:tiny_mlp_bf16")
    imported = import_model(spec, tmp_path / "imports")
    (x_file,) = iree.save_inputs(spec.inputs, tmp_path / "in", 0)
    x = iree.load_array(x_file)
    assert x.dtype == ml_dtypes.bfloat16
    flags = iree.target_flags("host", imported.input_flags)
    assert iree.compile_model(imported.path, tmp_path / "m.vmfb", flags, timeout_s=300).ok
    run = iree.run_model(tmp_path / "m.vmfb", imported.entry, [x_file], tmp_path / "run")
    assert run.status == "ok", run.error
    (got,) = run.outputs
    assert got.dtype == ml_dtypes.bfloat16

    sys.path.insert(0, str(DATA))
    try:
        import tiny_models
    finally:
        sys.path.remove(str(DATA))
    with torch.no_grad():
        want = tiny_models.tiny_mlp_bf16()(torch.from_numpy(x.astype(np.float32)).to(torch.bfloat16)).float().numpy()
    np.testing.assert_allclose(got.astype(np.float32), want, rtol=3e-2, atol=3e-2 * float(np.abs(want).max()))

    config = tmp_path / "bf16.yaml"
    config.write_text(
        f"name: bf16\noutput: {tmp_path / 'reports'}\n"
        f"model: {{format: torch, factory: '{TINY}:tiny_mlp_bf16', inputs: [4x128xbf16]}}\n"
        "budget: {trials_per_dispatch: 3, confirm_rounds: 3}\nsearch: {tune_model_flags: false}\n"
    )
    proc = run_tune(config)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((tmp_path / "reports" / "bf16" / "summary.json").read_text())
    assert summary["dispatches"] and all(d["trials"] >= 1 for d in summary["dispatches"])
    assert "--iree-flow-inline-constants-max-byte-length=0" in summary["default_flags"]  # see frontend/_import.py
    check_exported_spec(tmp_path / "reports" / "bf16")
