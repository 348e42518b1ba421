"""The Python API: `schedtune.tune(model, example_inputs, ...)`, the same job as `tune run`.

The keyword sections take the keys of the YAML job file (docs/config.md): the YAML file is
this call's serialisation (`TuningResult.config`), and both share one storage and cache.
"""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Callable, Sequence
from typing import Any

from .config import JobConfig, config_from_dict
from .errors import ConfigError
from .frontend import DTYPES

# numpy/torch dtype name -> the element type of iree-run-module's shape syntax (8x3x32x32xf32)
_ELEMENT_TYPES = {name: element for element, name in DTYPES.items()}


@dataclasses.dataclass
class TuningResult:
    """What a job exported: the tuning spec and flags, the summary, and the tuned module."""

    report_dir: pathlib.Path
    summary: dict[str, Any]
    config: dict[str, Any]  # the job as its YAML file would hold it

    @property
    def speedup(self) -> float | None:
        """Tuned over IREE's default build, confirmed end to end (None: nothing exported)."""
        return (self.summary.get("end_to_end") or {}).get("speedup")

    @property
    def spec(self) -> pathlib.Path:
        return self.report_dir / "tuning_spec.mlir"

    @property
    def flags(self) -> list[str]:
        """iree-compile flags of the tuned build, the target flags included."""
        return [*self.summary["default_flags"], *self.summary["tuned_flags"]]

    def compile(self, output: str | pathlib.Path | None = None, *, check: bool = True) -> pathlib.Path:
        """Build the tuned module with stock iree-compile (outputs checked against IREE's
        default build unless `check` is False); returns the .vmfb's path."""
        from .export import ExportedTuning, build_tuned

        output = pathlib.Path(output) if output is not None else self.report_dir / "model.vmfb"
        return build_tuned(ExportedTuning.read(self.report_dir), output, check=check).vmfb

    def load(self, *, threads: int | None = None, scheduling: str | None = "report") -> Callable[..., Any]:
        """The tuned module as a callable: `fn(*arrays)` takes numpy arrays (or CPU tensors) and
        returns a numpy array, or a tuple of them. Inputs are read in place, not copied (IREE
        needs 64-byte aligned memory for that; others are copied once into aligned memory).

        `threads` caps IREE's workers; it takes effect only before this process's first IREE
        device. `scheduling`: the Linux policy this process runs under from now on ("report":
        the one the tuner measured under; None leaves the process as it is)."""
        from . import iree

        vmfb = self.report_dir / "model.vmfb"
        if not vmfb.is_file():
            self.compile(vmfb)
        policy = self.summary.get("scheduling", "batch") if scheduling == "report" else scheduling
        if policy is not None:
            iree.use_scheduling(policy)
        if threads is not None:
            iree.pin_workers(threads)
        call = iree.load_function(vmfb, self.summary["entry"], iree.IMPORTED)

        def tuned(*arrays):
            outputs = call([_as_array(a) for a in arrays])
            return outputs[0] if len(outputs) == 1 else tuple(outputs)

        return tuned


def tune(
    model: Any,
    example_inputs: Sequence[Any] | None = None,
    *,
    name: str | None = None,
    output: str | pathlib.Path = "reports",
    storage: str | None = None,
    quiet: bool = True,
    max_minutes: float | None = None,
    **sections: dict[str, Any],
) -> TuningResult:
    """Tune `model` for this machine's CPU and export the result.

    `model`: a `torch.nn.Module` (exported with iree-turbine at `example_inputs`' shapes), or
    the path of an .onnx or .mlir file (then `example_inputs` may be shapes such as
    "1x3x224x224xf32" or arrays). `sections`: `model=`, `target=`, `budget=`, `search=`,
    `proposer=`, `precision=`, each a dict of that section's keys. Raises `SchedtuneError` subclasses with
    a one-line message (`ConfigError` for bad settings)."""
    unknown = set(sections) - {"model", "target", "budget", "search", "proposer", "precision"}
    if unknown:
        raise ConfigError(
            f"unknown section(s) {', '.join(sorted(unknown))} (known: model, target, budget, search, proposer, precision)"
        )
    output = pathlib.Path(output).resolve()
    raw: dict[str, Any] = {"output": str(output), **{k: dict(v) for k, v in sections.items()}}
    if storage is not None:
        raw["storage"] = storage
    model_section = raw.setdefault("model", {})
    if isinstance(model, (str, pathlib.Path)):
        path = pathlib.Path(model).resolve()
        fmt = {".mlir": "mlir", ".mlirbc": "mlir", ".onnx": "onnx"}.get(path.suffix)
        if fmt is None:
            raise ConfigError(f"model: {path.name}: expected an .onnx or .mlir file, or a torch.nn.Module")
        raw["name"] = name or _job_name(path.stem)
        model_section.update(format=fmt, path=str(path))
        if example_inputs is not None:
            model_section["inputs"] = [_shape_of(x) for x in example_inputs]
    else:
        if example_inputs is None:
            raise ConfigError("example_inputs: needed for a torch module (a tuple of tensors)")
        raw["name"] = name or _job_name(type(model).__name__)
        inputs = [_shape_of(x) for x in example_inputs]
        mlir = _export_torch(model, example_inputs, output / raw["name"] / "model.torch.mlir")
        model_section.update(format="mlir", path=str(mlir), input_type="torch", inputs=inputs)
    job = config_from_dict(raw, base_dir=pathlib.Path.cwd())
    return run(job, quiet=quiet, max_minutes=max_minutes, config=raw)


def run(
    job: JobConfig, *, quiet: bool = True, max_minutes: float | None = None, config: dict | None = None
) -> TuningResult:
    """Run a validated job (e.g. `config.load_config("configs/cnn.yaml")`)."""
    from .job import run_job

    result = run_job(job, quiet=quiet, max_minutes=max_minutes)
    return TuningResult(result.report_dir, result.summary, config or {})


def _job_name(text: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "-_" else "_" for c in text).strip("_").lower()
    return cleaned or "model"


def _as_array(value: Any):
    import numpy as np

    if hasattr(value, "detach"):  # a torch tensor: shares its memory with the numpy view
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def _shape_of(value: Any) -> str:
    """An input as iree-run-module's shape text: 1x3x224x224xf32."""
    if isinstance(value, str):
        return value
    dtype = str(getattr(value, "dtype", "")).removeprefix("torch.")
    element = _ELEMENT_TYPES.get(dtype)
    if element is None or not hasattr(value, "shape"):
        raise ConfigError(f"example_inputs: cannot tune an input of type {type(value).__name__} {dtype}".rstrip())
    dims = [str(int(d)) for d in value.shape]
    if not dims:
        raise ConfigError("example_inputs: scalar inputs are not supported; pass a tensor of shape (1,)")
    return "x".join([*dims, element])


def _export_torch(module: Any, example_inputs: Sequence[Any], out: pathlib.Path) -> pathlib.Path:
    """The module as torch-dialect MLIR (iree-turbine), written once per job folder."""
    from .frontend import export_torch_module

    out.parent.mkdir(parents=True, exist_ok=True)
    return export_torch_module(module, tuple(example_inputs), out)
