"""Frontend stage: a model source in the job config -> an MLIR file iree-compile takes.

Only `mlir` input is handled here (torch/onnx frontends come with their own issue); a
format that is not available says so in one line.
"""
from __future__ import annotations

import dataclasses
import pathlib

from ..config import ConfigError, ModelSpec


@dataclasses.dataclass(frozen=True)
class ImportedModel:
    path: pathlib.Path
    entry: str
    input_flags: tuple[str, ...]  # e.g. --iree-input-type=torch


def import_model(model: ModelSpec) -> ImportedModel:
    if model.format != "mlir":
        raise ConfigError(f"model.format: {model.format!r} import is not available yet; export to MLIR and use format: mlir")
    flags = () if model.input_type == "auto" else (f"--iree-input-type={model.input_type}",)
    return ImportedModel(model.path, model.entry, flags)
