"""Every script in benchmarks/ run as a user runs it, on tiny inputs, so that none of them rots.

Each script runs in a child process (`python benchmarks/x.py ...`) with the real tools: a real
`tune` job on a tiny torch MLP (two matmuls) feeds `tune compare`, suite_table.py, confirm.py and
prompt_sizes.py; proposers.py runs with the embedded local LLM (installed by the README's test
command, like tests/test_llm_local.py). The one injected fault is a tuned build that computes
something else: a report made by hand whose compile flags demote matmul inputs to bf16.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from .conftest import COMPARE_ROWS, DATA, REPO, run_tune

BENCH = REPO / "benchmarks"
TARGET_FLAGS = [
    "--iree-hal-target-device=local",
    "--iree-hal-local-target-device-backends=llvm-cpu",
    "--iree-llvmcpu-target-cpu=host",
]
# What the export writes when no config ships: a spec that matches nothing.
NO_OP_SPEC = textwrap.dedent("""\
    module attributes {transform.with_named_sequence} {
      transform.named_sequence @__kernel_config(%variant_op: !transform.any_op {transform.readonly}) -> !transform.any_op attributes {iree_codegen.tuning_spec_entrypoint} {
        transform.yield %variant_op : !transform.any_op
      }
    }
    """)


def bench(script: str, *args, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(BENCH / script), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )


def table_rows(text: str) -> list[list[str]]:
    """The data rows of a github-format table in `text`, as stripped cells."""
    lines = [line for line in text.splitlines() if line.startswith("|")]
    return [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    """A finished tiny tuning job (torch factory, 2 matmuls): (config path, report folder)."""
    root = tmp_path_factory.mktemp("bench")
    config = root / "tmlp.yaml"
    config.write_text(
        textwrap.dedent(f"""\
        name: tmlp
        output: {root / "reports"}
        model:
          format: torch
          factory: {DATA / "tiny_models.py"}:tiny_mlp
          inputs: [8x128xf32]
        budget:
          trials_per_dispatch: 2
          confirm_rounds: 3
        search:
          sampler: tpe
          seed: 0
          tune_model_flags: false
        """)
    )
    proc = run_tune(config)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return config, root / "reports" / "tmlp"


@pytest.fixture(scope="module")
def compared(tuned):
    """`tune compare` on the tuned job with ONE thread per runner: on a 2-core machine IREE's own
    default is already 2 workers, so only a count below the core count shows that the pin works."""
    config, report = tuned
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "schedtune.cli",
            "compare",
            "--config",
            str(config),
            "--rounds",
            "1",
            "--iterations",
            "2",
        ]
        + ["--no-torch-compile", "--threads", "1"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    return proc, report


def test_compare_pins_every_runner_iree_included(compared):
    proc, report = compared
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    phrase = "1 thread each, IREE's worker count included"
    assert phrase in proc.stdout
    assert phrase in (report / "compare.md").read_text()
    data = json.loads((report / "compare.json").read_text())
    assert data["threads"] == 1
    # Counted in tune compare's own process after both IREE builds ran: unpinned, it is 2 here.
    assert data["iree_worker_threads"] == 1, data["notes"]
    # The job's default policy, inherited by the workers IREE started after tune compare set it.
    assert data["scheduling"] == "batch" and data["iree_worker_scheduling"] == ["batch"]
    assert tuple(r["runner"] for r in data["rows"]) == COMPARE_ROWS
    assert data["reference"] == "PyTorch eager"
    for row in data["rows"]:
        assert math.isfinite(row["max_rel_error"]) and row["max_rel_error"] < 1e-3, row
        assert len(row["rounds_ms"]) == 1 and row["median_ms"] > 0
    assert (report / "compare.png").stat().st_size > 0


def test_suite_table_reads_tune_and_compare_reports(compared):
    _, report = compared
    proc = bench("suite_table.py", "--reports", report.parent, "tmlp", "never_ran")
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {r[0]: r for r in table_rows(proc.stdout)}
    assert set(rows) == {"tmlp", "never_ran"}
    tmlp = rows["tmlp"]
    assert tmlp[1] == "8x128xf32"
    assert re.fullmatch(r"\d+\.\d\dx", tmlp[2])  # the tune's own end-to-end ratio
    compare = {r["runner"]: r["median_ms"] for r in json.loads((report / "compare.json").read_text())["rows"]}
    assert tmlp[3] == f"{compare['IREE default']:.2f}" and tmlp[4] == f"{compare['IREE tuned']:.2f}"
    assert re.fullmatch(r"\d+\.\d\d \(\d+\.\d\dx\)", tmlp[6])  # onnxruntime
    assert re.fullmatch(r"\d+\.\d\d \(\d+\.\d\dx\)", tmlp[7])  # PyTorch eager
    assert tmlp[8] == "-"  # torch.compile was not run
    assert rows["never_ran"][1:] == ["(not run)"] * 8


def test_confirm_agrees_on_a_tuned_report(tuned):
    _, report = tuned
    proc = bench("confirm.py", report, "--rounds", "1", "--iterations", "2")
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert "outputs agree: 1 output(s)" in proc.stdout
    assert "scheduling policy batch" in proc.stdout  # the report's, from summary.json
    assert "MISMATCH" not in proc.stdout
    assert re.search(r"speed-up \(median\) \d+\.\d\dx", proc.stdout)


TWO_OUTPUTS = """\
func.func @main(%a: tensor<16x64xf32>, %b: tensor<64x32xf32>) -> (tensor<16x64xf32>, tensor<16x32xf32>) {
  %zero = arith.constant 0.0 : f32
  %twice = arith.addf %a, %a : tensor<16x64xf32>
  %init = tensor.empty() : tensor<16x32xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%init : tensor<16x32xf32>) -> tensor<16x32xf32>
  %mm = linalg.matmul ins(%a, %b : tensor<16x64xf32>, tensor<64x32xf32>) outs(%acc : tensor<16x32xf32>) -> tensor<16x32xf32>
  return %twice, %mm : tensor<16x64xf32>, tensor<16x32xf32>
}
"""


def two_output_report(folder, tuned_flags: str):
    """A report folder made by hand for a 2-output model: an elementwise output, then a matmul.

    The matmul's rows are pairs (1.001, -1) against ones: in f32 each sums to 0.032; bf16 holds
    1.001 as 1.0, so a build that demotes matmul inputs to bf16 returns exact zeros there,
    while the first (elementwise) output stays bit-identical.
    """
    folder.mkdir()
    (folder / "model.mlir").write_text(TWO_OUTPUTS)
    np.save(folder / "a.npy", np.tile(np.array([1.001, -1.0], np.float32), (16, 32)))
    np.save(folder / "b.npy", np.ones((64, 32), np.float32))
    (folder / "summary.json").write_text(
        json.dumps(
            {
                "job": "two_outputs",
                "model_mlir": str(folder / "model.mlir"),
                "entry": "main",
                "input_files": [str(folder / "a.npy"), str(folder / "b.npy")],
                "default_flags": TARGET_FLAGS,
            }
        )
    )
    (folder / "tuning_spec.mlir").write_text(NO_OP_SPEC)
    (folder / "compile_flags.txt").write_text(tuned_flags)
    return folder


def test_confirm_compares_every_output(tmp_path):
    report = two_output_report(tmp_path / "same", "")
    proc = bench("confirm.py", report, "--rounds", "1", "--iterations", "2")
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert "outputs agree: 2 output(s)" in proc.stdout


def test_confirm_fails_when_a_later_output_is_wrong(tmp_path):
    report = two_output_report(
        tmp_path / "bf16",
        "--iree-global-opt-demote-contraction-inputs-type=bf16\n"
        "--iree-global-opt-demote-contraction-inputs-operations=all\n",
    )
    proc = bench("confirm.py", report, "--rounds", "1", "--iterations", "2")
    assert proc.returncode == 1, proc.stdout + proc.stderr[-3000:]
    assert "outputs agree" not in proc.stdout
    match = re.search(r"MISMATCH: tuned output\(s\) (.*) of 2 differ .* worst relative error (\S+)", proc.stdout)
    assert match, proc.stdout
    assert match.group(1) == "1"  # the second output; the first agrees
    assert float(match.group(2)) > 0.5  # the matmul output is all zeros instead of 0.032
    assert "speed-up" not in proc.stdout  # a wrong build is not timed


def test_prompt_sizes_builds_every_dispatch_prompt(tuned):
    config, _ = tuned
    proc = bench("prompt_sizes.py", config)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {r[1]: r for r in table_rows(proc.stdout)}
    assert set(rows) == {"matmul_8x96x128", "matmul_8x16x96"}
    for row in rows.values():
        assert row[0] == "tmlp"
        assert int(row[2]) > 500  # characters: op, loops, default config, legal values, notes
        # Counted with SmolLM2's own tokenizer (the local LLM is part of the test setup): the
        # prompt and the 1000 tokens the local proposer leaves for its answer fit the 2048 window.
        assert 0 < int(row[3]) <= 2048 - 1000, row


def test_proposers_runs_every_method_with_the_local_llm(tmp_path):
    out = tmp_path / "proposers"
    proc = bench("proposers.py", "--local", "--budget", "2", "--seeds", "1", "--dispatches", "matmul", "--out", out)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    methods = ["random-full", "tpe-full", "heuristic+tpe", "llm+tpe"]
    assert [r[:2] for r in table_rows(proc.stdout)] == [["matmul", m] for m in methods]
    stats = json.loads(re.search(r"^LLM: (.*)$", proc.stdout, re.MULTILINE).group(1))
    assert stats["dispatches"] == 1
    assert stats["max_prompt_tokens"] > 0  # the local server was started and answered
    results = json.loads((out / "proposers.json").read_text())["matmul"]
    assert results["default_ns"] > 0
    assert list(results["methods"]) == methods
    for runs in results["methods"].values():
        (trajectory,) = runs
        assert 1 <= len(trajectory) <= 2 and all(0 < t < math.inf for t in trajectory)
    assert (out / "proposers.md").read_text().count("matmul") == 4


def test_overhead_times_storage_and_cache(tmp_path):
    proc = bench("overhead.py", "--trials", "4")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "4 trials" in proc.stdout
    study = re.search(r"optuna ask\+suggest\+tell: median (\S+) ms/trial", proc.stdout)
    cache = re.search(r"cache lookup\+claim\+put\+release: median (\S+) ms/trial", proc.stdout)
    assert study and float(study.group(1)) > 0
    assert cache and float(cache.group(1)) > 0
    # An explicit storage URL is used as given (and keeps its study).
    db = tmp_path / "o.db"
    proc = bench("overhead.py", "--trials", "2", "--storage", f"sqlite:///{db}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert db.stat().st_size > 0


def test_matmul_script_reports_gflops_beside_numpy(tmp_path):
    config = tmp_path / "tmm.yaml"
    config.write_text(
        textwrap.dedent(f"""\
        name: tmm
        output: {tmp_path / "reports"}
        model:
          format: torch
          factory: {DATA / "tiny_models.py"}:tiny_matmul
          inputs: [32x64xf32, 64x48xf32]
        budget:
          trials_per_dispatch: 2
          confirm_rounds: 3
        search:
          tune_model_flags: false
        """)
    )
    proc = run_tune(config)
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = bench("matmul.py", "--config", config, "--rounds", "1")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    data = json.loads((tmp_path / "reports" / "tmm" / "matmul_vs_numpy.json").read_text())
    assert data["shape"] == "32x64x48"
    assert [r["runner"] for r in data["rows"]] == [
        "IREE default",
        "IREE exported",
        "IREE exported, inputs imported",
        "IREE exported, inputs on device",
        "numpy (OpenBLAS)",
    ]
    for row in data["rows"]:  # imported and once-copied inputs give numpy's result on every call
        assert row["gflops"] > 0 and row["max_rel_error"] < 1e-3, row
    assert data["rows"][-1]["vs_numpy"] == 1.0


def test_matmul_script_refuses_a_model_that_is_not_one_gemm(tuned):
    config, _ = tuned  # the tiny MLP: one input
    proc = bench("matmul.py", "--config", config, "--rounds", "1")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == "matmul: the job's model must take two inputs (A and B)"


def test_loaded_function_passes_inputs_in_place_aligned_or_not(tmp_path):
    """`iree.load_function` (the API's `load()`, compare's IREE rows): imported inputs hand numpy's memory to IREE without a copy. IREE 3.13 crashes
    the call on host memory that is not 64-byte aligned, so an unaligned input is aligned once
    first: both kinds give numpy's product, as do the copied and on-device modes, in a child
    process (a crash there fails the test instead of killing pytest)."""
    vmfb = tmp_path / "mm.vmfb"
    built = subprocess.run(
        ["iree-compile", str(DATA / "matmul.mlir"), *TARGET_FLAGS, "-o", str(vmfb)], capture_output=True, text=True
    )
    assert built.returncode == 0, built.stderr[-2000:]
    script = textwrap.dedent(f"""\
        import sys
        import numpy as np
        from schedtune.iree import COPIED, IMPORTED, ON_DEVICE, load_function

        rng = np.random.default_rng(0)
        a = rng.random((64, 128), dtype=np.float32)  # positive: the model's ReLU keeps a @ b
        raw = np.empty(128 * 96 + 16, dtype=np.float32)
        start = next(i for i in range(16) if (raw[i:].ctypes.data % 64) != 0)
        b = raw[start : start + 128 * 96].reshape(128, 96)  # not 64-byte aligned
        b[...] = rng.random((128, 96), dtype=np.float32)
        assert b.ctypes.data % 64 != 0
        for mode in (IMPORTED, COPIED, ON_DEVICE):
            call = load_function({str(vmfb)!r}, "main", mode)
            for _ in range(3):
                (out,) = call([a, b])
                np.testing.assert_allclose(out, a @ b, rtol=1e-4, atol=1e-4)
        print("ok")
        """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stdout[-1000:] + proc.stderr[-2000:]
