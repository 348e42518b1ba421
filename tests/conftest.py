"""Shared fixtures: real IREE tools, tiny models, job configs written to a temp folder."""
from __future__ import annotations

import pathlib
import textwrap

import pytest

DATA = pathlib.Path(__file__).parent / "data"
REPO = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture
def matmul_model() -> pathlib.Path:
    return DATA / "matmul.mlir"


@pytest.fixture
def write_job(tmp_path):
    """Write a job config; returns its path. Keyword args override sections of a tiny matmul job."""

    def write(name: str = "mm", *, model: pathlib.Path | None = None, inputs=("64x128xf32", "128x96xf32"),
              trials: int = 4, extra: str = "") -> pathlib.Path:
        model = model or DATA / "matmul.mlir"
        text = textwrap.dedent(f"""\
            name: {name}
            output: {tmp_path / 'reports'}
            model:
              format: mlir
              path: {model}
              entry: main
              inputs: [{', '.join(inputs)}]
            budget:
              trials_per_dispatch: {trials}
              confirm_rounds: 3
            search:
              sampler: tpe
              seed: 0
              tune_model_flags: false
            """) + textwrap.dedent(extra)
        path = tmp_path / f"{name}.yaml"
        path.write_text(text)
        return path

    return write
