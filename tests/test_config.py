"""Bad job configs: one clear line naming the key, exit code 2, before any work."""

from __future__ import annotations

import subprocess
import sys

import pytest

from schedtune.config import ConfigError, load_config


def _tune(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "schedtune.cli", *args], capture_output=True, text=True, timeout=120)


def test_valid_config_loads_with_defaults(write_job, tmp_path):
    job = load_config(write_job())
    assert job.budget.trials_per_dispatch == 4
    assert job.storage == f"sqlite:///{tmp_path / 'reports' / 'mm' / 'study.db'}"
    assert job.search.sampler == "tpe"


@pytest.mark.parametrize(
    "extra, message",
    [
        ("budget:\n  trails_per_dispatch: 3\n", "budget.trails_per_dispatch: unknown key"),
        ("colour: blue\n", "colour: unknown key"),
        ("budget:\n  trials_per_dispatch: many\n", "budget.trials_per_dispatch: expected an integer"),
        ("search:\n  sampler: grid\n", "search.sampler: 'grid' is not one of"),
        ("budget:\n  time_share: 2\n", "budget.time_share: must be in (0, 1]"),
        ("target:\n  scheduling: fifo\n", "target.scheduling: 'fifo' is not one of batch, normal"),
    ],
)
def test_bad_keys_and_types_name_the_key(tmp_path, write_job, extra, message):
    path = write_job()
    text = path.read_text()
    # Replace the section being tested rather than duplicating a YAML key.
    section = extra.split(":")[0]
    if section in ("budget", "search"):
        lines = text.splitlines()
        start = lines.index(f"{section}:")
        end = start + 1
        while end < len(lines) and lines[end].startswith("  "):
            end += 1
        text = "\n".join(lines[:start] + lines[end:]) + "\n"
    path.write_text(text + extra)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_model_file(write_job, tmp_path):
    path = write_job(model=tmp_path / "nope.mlir")
    with pytest.raises(ConfigError, match="model.path: file not found"):
        load_config(path)


def test_bad_input_shape(write_job):
    with pytest.raises(ConfigError, match="model.inputs: '64xf99'"):
        load_config(write_job(inputs=("64xf99",)))


def test_cli_bad_config_exits_2_with_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nmodel: [unclosed\n")
    proc = _tune("--config", str(bad))
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1
    assert "malformed YAML" in proc.stderr
    assert not (tmp_path / "reports").exists()


def test_cli_missing_config_file(tmp_path):
    proc = _tune("--config", str(tmp_path / "absent.yaml"))
    assert proc.returncode == 2
    assert "config file not found" in proc.stderr


def test_cli_unwritable_output(write_job, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    proc = _tune("--config", str(write_job()), "--output", str(blocker / "sub"))
    assert proc.returncode == 2
    assert "cannot write the output folder" in proc.stderr
