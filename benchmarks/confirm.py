"""Independent check of an exported spec: stock iree-compile, default vs tuned, interleaved.

    python benchmarks/confirm.py reports/cnn [--rounds 10]

Reads only what a user gets (summary.json for the model/inputs, tuning_spec.mlir,
compile_flags.txt), builds both variants with the plain `iree-compile` binary, checks the
outputs agree, then times A B A B ... in one run and prints the ratios.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import subprocess
import sys
import tempfile

import numpy as np


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("report", type=pathlib.Path, help="a job's report folder, e.g. reports/cnn")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--iterations", type=int, default=30, help="model calls per round")
    args = parser.parse_args()
    summary = json.loads((args.report / "summary.json").read_text())
    spec = args.report / "tuning_spec.mlir"
    flags = (args.report / "compile_flags.txt").read_text().split()
    model = summary["model_mlir"]
    inputs = [f"--input=@{p}" for p in summary["input_files"]]
    entry = summary["entry"]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        builds = {
            "default": [*summary["default_flags"]],
            "tuned": [*summary["default_flags"], *flags, f"--iree-codegen-tuning-spec-path={spec}"],
        }
        for name, build_flags in builds.items():
            subprocess.run(["iree-compile", model, *build_flags, "-o", str(tmp / f"{name}.vmfb")], check=True)
            subprocess.run(["iree-run-module", f"--module={tmp / name}.vmfb", f"--function={entry}",
                            "--device=local-task", *inputs, f"--output=@{tmp / name}.npy"],
                           check=True, capture_output=True)
        ref, got = np.load(tmp / "default.npy"), np.load(tmp / "tuned.npy")
        err = float(np.max(np.abs(ref - got))) / max(1.0, float(np.max(np.abs(ref))))
        print(f"outputs agree: max relative error {err:.2e}")
        times: dict[str, list[float]] = {"default": [], "tuned": []}
        for _ in range(args.rounds):
            for name in ("default", "tuned"):
                out = subprocess.run(
                    ["iree-benchmark-module", f"--module={tmp / name}.vmfb", f"--function={entry}", "--device=local-task",
                     *inputs, f"--benchmark_min_time={args.iterations}x", "--benchmark_format=json"],
                    check=True, capture_output=True, text=True).stdout
                bench = json.loads(out)["benchmarks"][0]
                times[name].append(bench["real_time"] * {"ns": 1e-6, "us": 1e-3, "ms": 1.0}[bench["time_unit"]])
    ratios = [d / t for d, t in zip(times["default"], times["tuned"])]
    d_med, t_med = statistics.median(times["default"]), statistics.median(times["tuned"])
    print(f"{summary['job']}: default {d_med:.2f} ms, tuned {t_med:.2f} ms over {args.rounds} interleaved rounds")
    print(f"speed-up (median) {d_med / t_med:.2f}x; per-round {min(ratios):.2f}-{max(ratios):.2f}x")
    return 0 if err < 1e-3 else 1


if __name__ == "__main__":
    sys.exit(main())
