"""A non-editable install works on its own: spaces and notes ship with the package."""

from __future__ import annotations

import json
import subprocess
import sys

import yaml

from .conftest import REPO


def test_non_editable_install_runs_the_cnn_job(tmp_path):
    """(g) `pip install .` into a fresh venv, then the CNN job run from another directory."""
    venv = tmp_path / "venv"
    # System site packages carry the heavy dependencies (IREE, optuna); the package itself is
    # installed into the venv as a wheel, which shadows the editable checkout.
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    python = venv / "bin" / "python"
    proc = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", str(REPO)], capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    where = subprocess.run(
        [
            str(python),
            "-c",
            "import schedtune, schedtune.spaces as s; print(schedtune.__file__); "
            "print(sorted(p.name for p in s.SPACES_DIR.glob('*.yaml'))); "
            "print(sorted(p.name for p in s.SPACES_DIR.glob('pipeline_scripts/*.mlir')))",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=True,
    ).stdout.splitlines()
    assert where[0].startswith(str(venv)), where  # the installed copy, not the checkout
    assert "conv2d.yaml" in where[1] and "model_flags.yaml" in where[1] and "pipelines.yaml" in where[1]
    assert "pad_conv_input_channels.mlir" in where[2]  # the pipeline space's script templates ship too

    job = yaml.safe_load((REPO / "configs" / "cnn.yaml").read_text())
    job["model"]["path"] = str((REPO / "configs" / job["model"]["path"]).resolve())
    if "factory" in job["model"]:
        module, _, function = job["model"]["factory"].rpartition(":")
        job["model"]["factory"] = f"{(REPO / 'configs' / module).resolve()}:{function}"
    job["budget"] = {**job.get("budget", {}), "trials_per_dispatch": 2, "confirm_rounds": 2}
    job["search"] = {**job.get("search", {}), "tune_model_flags": False}
    job["output"] = str(tmp_path / "reports")
    config = tmp_path / "cnn.yaml"
    config.write_text(yaml.safe_dump(job))
    run = subprocess.run(
        [str(venv / "bin" / "tune"), "--config", str(config), "--quiet"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=900,
    )
    assert run.returncode == 0, run.stderr
    summary = json.loads((tmp_path / "reports" / job["name"] / "summary.json").read_text())
    assert {d["op_kind"] for d in summary["dispatches"]} == {"conv2d"}
    assert all(d["trials"] == 2 and d["skeletons"] for d in summary["dispatches"])
