from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import pathlib
import subprocess
import sys

from ..config import ModelSpec
from ..errors import ConfigError, FrontendError, last_line

log = logging.getLogger("schedtune")

_EXTRAS = {
    # format: (modules that must import, the extra that installs them)
    "torch": (("torch", "iree.turbine"), "torch"),
    "onnx": (("onnx",), "onnx"),
}
_INPUT_TYPES = {"auto": None, "linalg": "none"}


@dataclasses.dataclass(frozen=True)
class ImportedModel:
    path: pathlib.Path
    entry: str
    input_flags: tuple[str, ...]  # e.g. --iree-input-type=torch


def import_model(model: ModelSpec, cache_dir: pathlib.Path, *, timeout_s: float = 600.0) -> ImportedModel:
    """The model as an MLIR file, importing it (once per content hash) if it is not MLIR yet."""
    bf16 = _BF16_FLAGS if any(spec.endswith("xbf16") for spec in model.inputs) else ()
    if model.format == "mlir":
        input_type = _INPUT_TYPES.get(model.input_type, model.input_type)
        flags = () if input_type is None else (f"--iree-input-type={input_type}",)
        return ImportedModel(model.path, model.entry or "main", flags + bf16)
    _require_extra(model.format)
    key = _import_key(model)
    folder = cache_dir / f"{model.format}_{key[:16]}"
    out = folder / "model.mlir"
    partial = folder / "model.partial.mlir"  # renamed to `out` only when the import succeeded
    if model.format == "torch":
        entry = model.entry or "main"
        args = [sys.executable, "-m", "schedtune.frontend._torch_export", model.factory, str(partial), *model.inputs]
    else:
        entry = model.entry or _onnx_graph_name(model.path)
        args = [sys.executable, "-m", "iree.compiler.tools.import_onnx", str(model.path), "-o", str(partial)]
    if out.exists():
        log.info("model import: cached %s", out)
    else:
        folder.mkdir(parents=True, exist_ok=True)
        _run_importer(args, partial, model, timeout_s)
        partial.replace(out)
    return ImportedModel(out, entry, ("--iree-input-type=" + ("torch" if model.format == "torch" else "onnx"), *bf16))


# IREE 3.13 on a CPU without native bf16 (e.g. AVX2) inlines a small bf16 constant (a bias)
# into a dispatch, then its bf16 emulation retypes the constant to f32 but keeps its data:
# "'arith.constant' op failed to verify that all of {value, result} have same type". Not
# inlining constants avoids it; every build of a bf16 model, IREE's default included, gets it.
_BF16_FLAGS = ("--iree-flow-inline-constants-max-byte-length=0",)


def _require_extra(fmt: str) -> None:
    modules, extra = _EXTRAS[fmt]
    for name in modules:
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            raise ConfigError(
                f"model.format {fmt}: {name} is not installed; install the extra: pip install -e '.[{extra}]'"
            )


def _import_key(model: ModelSpec) -> str:
    """Everything the imported MLIR depends on: the source's bytes, the inputs, tool versions."""
    h = hashlib.sha256()
    h.update(json.dumps([model.format, model.factory, list(model.inputs)]).encode())
    packages = ["iree-base-compiler"] + (["torch", "iree-turbine"] if model.format == "torch" else ["onnx"])
    for name in packages:
        h.update(f"{name}={_version(name)};".encode())
    for path in _source_files(model):
        h.update(str(path.name).encode())
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "-"


def _source_files(model: ModelSpec) -> list[pathlib.Path]:
    if model.format == "onnx":
        # External weights (onnx's `location`) sit beside the model file.
        return [model.path] + sorted(p for p in model.path.parent.glob(model.path.stem + "*.data"))
    module = model.factory.rsplit(":", 1)[0]
    if module.endswith(".py"):
        origin = pathlib.Path(module)
    else:
        spec = importlib.util.find_spec(module)
        if spec is None or spec.origin is None:
            raise ConfigError(f"model.factory: module {module!r} not found")
        origin = pathlib.Path(spec.origin)
    # The factory's folder: helper modules it imports change the model as much as it does.
    return sorted(origin.parent.glob("*.py"))


def _onnx_graph_name(path: pathlib.Path) -> str:
    import onnx

    try:
        return onnx.load(str(path), load_external_data=False).graph.name or "main_graph"
    except Exception as exc:  # onnx raises DecodeError and friends
        raise FrontendError(f"{path}: not a readable ONNX model: {exc}") from None


def _run_importer(args: list[str], partial: pathlib.Path, model: ModelSpec, timeout_s: float) -> None:
    env = dict(os.environ)
    # The child imports `schedtune` from the same tree as this process.
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(pathlib.Path(__file__).resolve().parents[2]), env.get("PYTHONPATH")])
    )
    log.info("model import: %s", " ".join(map(str, args)))
    try:
        proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout_s, env=env)
    except subprocess.TimeoutExpired:
        raise FrontendError(f"{model.format} import timed out after {timeout_s:.0f} s") from None
    if proc.returncode != 0 or not partial.exists():
        log.error("import failed:\n%s", proc.stderr)
        raise FrontendError(f"{model.format} import of {model.factory or model.path} failed: {last_line(proc.stderr)}")
