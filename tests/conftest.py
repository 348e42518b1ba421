"""Shared fixtures: real IREE tools, tiny models, job configs written to a temp folder."""

from __future__ import annotations

import pathlib
import subprocess
import sys
import textwrap

import pytest

DATA = pathlib.Path(__file__).parent / "data"
REPO = pathlib.Path(__file__).resolve().parents[1]
# tune compare's rows, in its order, for a torch model when torch.compile is left out.
COMPARE_ROWS = (
    "IREE default",
    "IREE tuned",
    "IREE tuned, inputs imported",
    "IREE tuned, inputs on device",
    "onnxruntime",
    "PyTorch eager",
)
FAKES = DATA.parent / "fakes"


def kill_9_when(cmd: list[str], stderr_path: pathlib.Path, ready, *, poll_s: float, polls: int) -> None:
    """Start `cmd`, wait (at most `polls` x `poll_s`) until `ready()` is true, then kill -9 it.

    `ready()` may raise while the job is starting (no database yet): that counts as not
    ready. Fails if the job ends before it could be killed."""
    import os
    import signal
    import time

    with stderr_path.open("w") as stderr:
        job = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=stderr)
    for _ in range(polls):
        time.sleep(poll_s)
        assert job.poll() is None, f"the job finished before it could be killed: {stderr_path.read_text()[-2000:]}"
        try:
            if ready():
                break
        except Exception:  # the database may not exist yet
            continue
    os.kill(job.pid, signal.SIGKILL)
    job.wait()


def run_tune(config, *extra: str, env=None, timeout: float = 900) -> subprocess.CompletedProcess:
    """The real `tune` command in a child process, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "schedtune.cli", "--config", str(config), "--quiet", *extra],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def matmul_config(loop_peeling: bool = True):
    """A legal, non-default config of the tiny matmul (64x96x128)."""
    from schedtune.spec import CompilationConfig

    tiles = {
        "distribution": [32, 32, 0],
        "cache_parallel": [32, 32, 0],
        "vector_common_parallel": [4, 16, 0],
        "vector_reduction": [0, 0, 1],
    }
    return CompilationConfig.make("DoubleTilingExpert", tiles, loop_peeling=loop_peeling)


@pytest.fixture
def matmul_model() -> pathlib.Path:
    return DATA / "matmul.mlir"


@pytest.fixture
def write_job(tmp_path):
    """Write a job config; returns its path. Keyword args override sections of a tiny matmul job."""

    def write(
        name: str = "mm",
        *,
        model: pathlib.Path | None = None,
        inputs=("64x128xf32", "128x96xf32"),
        trials: int = 4,
        extra: str = "",
    ) -> pathlib.Path:
        model = model or DATA / "matmul.mlir"
        text = textwrap.dedent(f"""\
            name: {name}
            output: {tmp_path / "reports"}
            model:
              format: mlir
              path: {model}
              entry: main
              inputs: [{", ".join(inputs)}]
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


def _pg_tool(name: str) -> str | None:
    import glob
    import shutil

    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory):
    """A real PostgreSQL server on loopback for the session (Debian's postgresql package).

    The README's test command installs the package; a missing server is a failure, not a skip.
    """
    import os
    import socket
    import subprocess

    initdb, pg_ctl = _pg_tool("initdb"), _pg_tool("pg_ctl")
    if not initdb or not pg_ctl:
        pytest.fail("PostgreSQL server binaries not found: run the README's test command, which installs postgresql")
    import shutil
    import tempfile

    # Not under pytest's tmp folder: that is private to root, and postgres runs as its own user.
    root = pathlib.Path(tempfile.mkdtemp(prefix="schedtune-pg-"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    prefix: list[str] = []
    if os.geteuid() == 0:  # postgres refuses to run as root
        prefix = ["runuser", "-u", "postgres", "--"]
        os.chmod(root, 0o777)
        os.chmod(sock, 0o777)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    subprocess.run(
        prefix + [initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"],
        check=True,
        capture_output=True,
    )
    opts = f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c max_connections=200"
    subprocess.run(
        prefix + [pg_ctl, "-D", str(data), "-o", opts, "-l", str(root / "log"), "-w", "start"],
        check=True,
        capture_output=True,
    )
    try:
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres")
        conn.autocommit = True
        conn.cursor().execute("CREATE DATABASE schedtune")
        conn.close()
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/schedtune"
    finally:
        subprocess.run(prefix + [pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def counted_trials(storage_url: str):
    """All trials of all studies in a storage, as (study name, FrozenTrial)."""
    import warnings

    import optuna

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    storage = optuna.storages.RDBStorage(storage_url)
    out = []
    for summary in optuna.get_all_study_summaries(storage, include_best_trial=False):
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        out += [(summary.study_name, t) for t in study.get_trials(deepcopy=False)]
    return out


FREE_STATUSES = {None, "constraint", "duplicate", "in_progress", "over_budget", "lost"}


def target_of(model: pathlib.Path, tmp_path: pathlib.Path, family: str, flags: tuple[str, ...] = ()):
    """The one tuning target of `family` in `model`, from a real build (default flags + `flags`)."""
    from schedtune import iree
    from schedtune.dispatches import TuningTarget, read_configured_executables

    tmp_path.mkdir(parents=True, exist_ok=True)
    flags = [*iree.target_flags("host"), *flags]
    built = iree.compile_model(model, tmp_path / "d.vmfb", flags, configs_dir=tmp_path / "cfg")
    assert built.ok, built.error
    ((name, dispatch),) = [
        (n, d) for n, d in read_configured_executables(tmp_path / "cfg").items() if d.root and d.root.family == family
    ]
    return TuningTarget(dispatch.root, (name,), 1.0, 1.0, (dispatch.source_hash,))


def matmul_setup(tmp_path: pathlib.Path):
    """The tiny matmul's tuning target and an evaluator on a SQLite study database: (target, url, evaluator)."""
    from schedtune import iree
    from schedtune.builds import ModelContext
    from schedtune.evaluation import Evaluator
    from schedtune.store import Cache

    target = target_of(DATA / "matmul.mlir", tmp_path, "matmul")
    url = f"sqlite:///{tmp_path / 's.db'}"
    evaluator = Evaluator(
        ModelContext(
            DATA / "matmul.mlir",
            "main",
            iree.save_inputs(("64x128xf32", "128x96xf32"), tmp_path / "in", 0),
            iree.target_flags("host"),
            tmp_path / "w",
        ),
        Cache(url),
    )
    return target, url, evaluator


def check_exported_spec(report_dir: pathlib.Path) -> str:
    """The exported spec is what the summary says ships: it parses with iree-opt, holds one
    matcher per kept target with that target's winning config, and nothing else."""
    import json

    from schedtune import iree
    from schedtune.spec import CompilationConfig

    summary = json.loads((report_dir / "summary.json").read_text())
    spec = (report_dir / "tuning_spec.mlir").read_text()
    parsed = subprocess.run(
        [iree.tool("iree-opt"), str(report_dir / "tuning_spec.mlir")], capture_output=True, text=True, timeout=120
    )
    assert parsed.returncode == 0, parsed.stderr
    kept = summary["end_to_end"]["kept"]
    assert spec.count("transform.named_sequence @match_op_") == len(kept)
    assert "@__kernel_config" in spec
    tuned = [d for d in summary["dispatches"] if d["status"] == "tuned"]
    assert sorted(d["label"] for d in tuned) == sorted(kept)
    for row in tuned:
        config = CompilationConfig.from_json(row["winning_config"])
        assert config.lowering_config_attr() in spec
    flags = (report_dir / "compile_flags.txt").read_text().split()
    assert flags == summary["tuned_flags"]
    return spec


@pytest.fixture
def fake_tool(monkeypatch):
    """Put a fault-injecting wrapper in place of one IREE tool, in this process."""

    def use(tool_name: str, fake: str) -> None:
        from schedtune import iree

        real = iree.tool(tool_name)
        monkeypatch.setenv(f"SCHEDTUNE_{tool_name.upper().replace('-', '_')}", str(FAKES / fake))
        monkeypatch.setenv("REAL_TOOL", real)
        iree.tool.cache_clear()
        iree.compiler_version.cache_clear()

    yield use
    from schedtune import iree

    iree.tool.cache_clear()
    iree.compiler_version.cache_clear()


def mlir_job(
    folder: pathlib.Path, name: str, model: pathlib.Path, inputs: tuple[str, ...], trials: int, search: str = ""
) -> pathlib.Path:
    """A job config tuning an MLIR model without flag search (TPE, seed 0; `search`: more
    `search` keys, e.g. ", transform_dialect: true"), written into `folder`."""
    config = folder / f"{name}.yaml"
    config.write_text(
        f"name: {name}\noutput: {folder / 'reports'}\n"
        f"model: {{format: mlir, path: {model}, entry: main, inputs: [{', '.join(inputs)}]}}\n"
        f"budget: {{trials_per_dispatch: {trials}, confirm_rounds: 3}}\n"
        f"search: {{sampler: tpe, seed: 0, tune_model_flags: false{search}}}\n"
    )
    return config


def tiny_matmul_job(folder: pathlib.Path, name: str = "mm", trials: int = 5) -> pathlib.Path:
    """A job config tuning the tiny matmul (no flag search), written into `folder`."""
    return mlir_job(folder, name, DATA / "matmul.mlir", ("64x128xf32", "128x96xf32"), trials)
