"""A non-editable install works on its own: spaces and notes ship with the package, and the
README's Python snippet and `tune build` work from another directory."""

from __future__ import annotations

import json
import pathlib
import site
import subprocess
import sys
import sysconfig
import textwrap

import pytest
import yaml

from .conftest import DATA, REPO


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> pathlib.Path:
    """A fresh venv with schedtune installed as a wheel (`pip install .`).

    The heavy dependencies (IREE, torch, optuna) come from the environment running the tests,
    whether that is the system Python or a venv itself: its site-packages folders are put on
    the new venv's path. (`--system-site-packages` would reach the *base* interpreter's, which
    inside a venv lacks them.) Plain paths in a .pth file: the running environment's own .pth
    files, e.g. the editable install of this checkout, are not processed, so the wheel is the
    only schedtune the venv sees."""
    venv = tmp_path_factory.mktemp("install") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    ours = dict.fromkeys([*site.getsitepackages(), sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    (pathlib.Path(purelib) / "schedtune_test_deps.pth").write_text("".join(f"{p}\n" for p in ours))
    proc = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", str(REPO)], capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return venv


def test_non_editable_install_runs_the_cnn_job(venv, tmp_path):
    """(g) `pip install .` into a fresh venv, then the CNN job run from another directory."""
    python = venv / "bin" / "python"
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


def test_python_api_and_tune_build_from_an_installed_wheel(venv, tmp_path):
    """The README's snippet from another directory: a torch module tuned, the tuned module run
    (its outputs against the module's own), then `tune build` writes a .vmfb checked against
    IREE's default build."""
    script = tmp_path / "snippet.py"
    script.write_text(
        textwrap.dedent(f"""\
        import json, sys
        import numpy as np, torch
        sys.path.insert(0, {str(DATA)!r})
        from tiny_models import tiny_mlp
        import schedtune

        model = tiny_mlp()
        x = torch.randn(8, 128)
        result = schedtune.tune(
            model, (x,), name="mlp", budget={{"trials_per_dispatch": 2, "confirm_rounds": 2}},
            search={{"tune_model_flags": False}},
        )
        module = result.load()
        got = module(x)
        want = model(x).detach().numpy()
        print(json.dumps({{
            "schedtune": schedtune.__file__,
            "speedup": result.speedup,
            "spec": str(result.spec),
            "report": str(result.report_dir),
            "max_error": float(np.max(np.abs(got - want))),
            "shape": list(got.shape),
        }}))
        """)
    )
    proc = subprocess.run(
        [str(venv / "bin" / "python"), str(script)], capture_output=True, text=True, cwd=tmp_path, timeout=900
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["schedtune"].startswith(str(venv))
    assert out["report"] == str(tmp_path / "reports" / "mlp")
    assert out["speedup"] is not None and pathlib.Path(out["spec"]).is_file()
    assert out["shape"] == [8, 16] and out["max_error"] < 1e-4

    vmfb = tmp_path / "out" / "mlp.vmfb"
    build = subprocess.run(
        [str(venv / "bin" / "tune"), "build", "--report", out["report"], "-o", str(vmfb)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=900,
    )
    assert build.returncode == 0, build.stderr
    assert "outputs match IREE's default build" in build.stdout
    assert vmfb.stat().st_size > 0 and not list(vmfb.parent.glob(".*partial"))
