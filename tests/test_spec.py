"""Spec rendering against the real compiler: it parses, and IREE applies the intended config."""

from __future__ import annotations

import subprocess

import pytest

from schedtune import iree
from schedtune.dispatches import read_configured_executables
from schedtune.spec import CompilationConfig, parse_lowering_config, render_spec

from .conftest import DATA

FLAGS = iree.target_flags("host")


@pytest.fixture(scope="module")
def matmul_root(tmp_path_factory):
    work = tmp_path_factory.mktemp("analysis")
    built = iree.compile_model(DATA / "matmul.mlir", work / "m.vmfb", FLAGS, configs_dir=work / "configs")
    assert built.ok, built.error
    dispatches = read_configured_executables(work / "configs")
    roots = [d.root for d in dispatches.values() if d.root is not None and d.root.family == "matmul"]
    assert len(roots) == 1
    return roots[0]


def test_analysis_reads_matmul_root(matmul_root):
    assert [l.role for l in matmul_root.loops] == ["m", "n", "k"]
    assert [l.bound for l in matmul_root.loops] == [64, 96, 128]
    assert matmul_root.matcher.kind == "contraction"
    assert matmul_root.default_config is not None  # IREE's own choice, read back


def test_rendered_spec_parses_with_iree_opt(matmul_root, tmp_path):
    config = CompilationConfig.make(
        "DoubleTilingExpert",
        {
            "distribution": [32, 32, 0],
            "cache_parallel": [32, 32, 0],
            "vector_common_parallel": [4, 16, 0],
            "vector_reduction": [0, 0, 2],
        },
        loop_peeling=True,
    )
    spec = tmp_path / "spec.mlir"
    spec.write_text(render_spec([(matmul_root.matcher, config)]))
    proc = subprocess.run([iree.tool("iree-opt"), str(spec)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "transform.iree.match.contraction" in proc.stdout


def test_empty_spec_parses(tmp_path):
    spec = tmp_path / "spec.mlir"
    spec.write_text(render_spec([]))
    proc = subprocess.run([iree.tool("iree-opt"), str(spec)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    built = iree.compile_model(DATA / "matmul.mlir", tmp_path / "e.vmfb", FLAGS, spec=spec)
    assert built.ok, built.error


def test_spec_applies_intended_config(matmul_root, tmp_path):
    config = CompilationConfig.make(
        "DoubleTilingExpert",
        {
            "distribution": [16, 48, 0],
            "cache_parallel": [16, 48, 0],
            "vector_common_parallel": [6, 16, 0],
            "vector_reduction": [0, 0, 1],
        },
        loop_peeling=True,
    )
    assert config != matmul_root.default_config
    spec = tmp_path / "spec.mlir"
    spec.write_text(render_spec([(matmul_root.matcher, config)]))
    built = iree.compile_model(
        DATA / "matmul.mlir", tmp_path / "t.vmfb", FLAGS, spec=spec, configs_dir=tmp_path / "cfg"
    )
    assert built.ok, built.error
    applied = [
        d.root for d in read_configured_executables(tmp_path / "cfg").values() if d.root and d.root.family == "matmul"
    ]
    assert applied[0].default_config == config


def test_lowering_config_round_trip():
    config = CompilationConfig.make("DoubleTilingExpert", {"distribution": [8, 0], "vector_reduction": [0, 4]})
    assert parse_lowering_config(config.lowering_config_attr()) == {"distribution": (8, 0), "vector_reduction": (0, 4)}
    with pytest.raises(ValueError):
        CompilationConfig.make("NoSuchPipeline", {"distribution": [1]})
