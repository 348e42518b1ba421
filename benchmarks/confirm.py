"""Independent check of an exported spec: stock iree-compile, default vs tuned, interleaved.

    python benchmarks/confirm.py reports/cnn [--rounds 10] [--iterations 30] [--threads 2]
    python benchmarks/confirm.py reports/cnn_searched reports/cnn_fixed   # several exports of one model, head to head

Reads only what a user gets (summary.json for the model/inputs, tuning_spec.mlir,
compile_flags.txt), builds both variants with the plain `iree-compile` binary, runs both
with `iree-run-module` and compares every output of the function elementwise: prints
"outputs agree" only when all of them do, else "MISMATCH" with the worst error and exits 1
without timing anything. Then times A B A B ... in one run and prints the ratios. Every run
of both builds uses the same number of IREE task-system workers (`--threads`, default 2,
passed as `--task_topology_max_group_count`), under the scheduling policy the report was
measured under (summary.json's `scheduling`; `--scheduling` overrides it).
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

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from schedtune import iree  # noqa: E402
from schedtune.builds import outputs_match  # noqa: E402

THREADS = 2
COMPILE_TIMEOUT_S = 900
RUN_TIMEOUT_S = 600


class Failed(Exception):
    """A tool failed; the message names the build and ends with the tool's last error line."""


def _tool(args: list[str], what: str, timeout_s: float) -> str:
    try:
        proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise Failed(f"{what}: timed out after {timeout_s:.0f} s") from None
    if proc.returncode != 0:
        lines = [line for line in (proc.stderr + proc.stdout).splitlines() if line.strip()]
        raise Failed(f"{what}: exit code {proc.returncode}: {lines[-1][:500] if lines else 'no message'}")
    return proc.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "reports", type=pathlib.Path, nargs="+", help="a job's report folder, e.g. reports/cnn (several: same model)"
    )
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--iterations", type=int, default=30, help="model calls per round")
    parser.add_argument(
        "--threads", type=int, default=THREADS, help="IREE task-system workers for both builds (default %(default)s)"
    )
    parser.add_argument(
        "--scheduling",
        choices=iree.SCHEDULING_POLICIES,
        help="Linux scheduling policy of every run (default: the report's; normal for reports that predate it)",
    )
    args = parser.parse_args()
    if args.rounds < 1 or args.iterations < 1 or args.threads < 1:
        parser.error("--rounds, --iterations and --threads must be at least 1")
    summaries = [json.loads((report / "summary.json").read_text()) for report in args.reports]
    summary = summaries[0]
    scheduling = args.scheduling or summary.get("scheduling", "normal")
    iree.use_scheduling(scheduling)  # this process and every tool it starts from now on
    model = summary["model_mlir"]
    inputs = [f"--input=@{p}" for p in summary["input_files"]]
    entry = summary["entry"]
    # The same runtime settings for every build: only the compiled code differs.
    runtime = [f"--function={entry}", "--device=local-task", f"--task_topology_max_group_count={args.threads}", *inputs]
    # Each build's iree-compile arguments before its output, its input first.
    builds = {"default": [model, *summary["default_flags"]]}
    for report, other in zip(args.reports, summaries, strict=True):
        if pathlib.Path(other["model_mlir"]).read_bytes() != pathlib.Path(model).read_bytes():
            parser.error(f"{report}: another model than {args.reports[0]}'s")
        # One flag per line (a pass pipeline may hold spaces).
        flags = [f for f in (report / "compile_flags.txt").read_text().splitlines() if f.strip()]
        name = "tuned" if len(args.reports) == 1 else f"tuned:{other['job']}"
        # Batch-1 convs named: the spec matches the exported second half of the model.
        prepared = other.get("prepared_model")
        source = [prepared, "--compile-from=global-optimization"] if prepared else [model]
        builds[name] = [
            *source,
            *summary["default_flags"],
            *flags,
            f"--iree-codegen-tuning-spec-path={report / 'tuning_spec.mlir'}",
        ]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            tmp = pathlib.Path(tmp)
            outputs: dict[str, list[np.ndarray]] = {}
            for name, arguments in builds.items():
                vmfb = tmp / f"{name}.vmfb"
                _tool(["iree-compile", *arguments, "-o", str(vmfb)], f"the {name} build", COMPILE_TIMEOUT_S)
                # Every result of one call (counted from the module, or from a run for torch
                # imports whose `main` carries no ABI declaration).
                run = iree.run_model(
                    vmfb, entry, [pathlib.Path(p) for p in summary["input_files"]], tmp / name, timeout_s=RUN_TIMEOUT_S
                )
                if run.status != "ok":
                    raise Failed(
                        f"running the {name} build: {run.error.splitlines()[-1][:500] if run.error else run.status}"
                    )
                outputs[name] = run.outputs
            ref = outputs["default"]
            for name in builds:
                got = outputs[name]
                ok, worst = outputs_match(got, ref)
                if not ok:
                    if len(got) != len(ref):
                        print(f"MISMATCH: the default build returns {len(ref)} outputs, the {name} build {len(got)}")
                    else:
                        bad = [
                            i for i, (g, r) in enumerate(zip(got, ref, strict=True)) if not outputs_match([g], [r])[0]
                        ]
                        print(
                            f"MISMATCH: {name} output(s) {', '.join(map(str, bad))} of {len(ref)} differ from the "
                            f"default build's: worst relative error {worst:.2e}"
                        )
                    return 1
                if name != "default":
                    which = "" if len(builds) == 2 else f" ({name})"
                    print(f"outputs agree{which}: {len(ref)} output(s), worst relative error {worst:.2e}")
            times: dict[str, list[float]] = {name: [] for name in builds}
            for _ in range(args.rounds):
                for name in builds:
                    out = _tool(
                        [
                            "iree-benchmark-module",
                            f"--module={tmp / name}.vmfb",
                            *runtime,
                            f"--benchmark_min_time={args.iterations}x",
                            "--benchmark_format=json",
                        ],
                        f"benchmarking the {name} build",
                        RUN_TIMEOUT_S,
                    )
                    bench = json.loads(out)["benchmarks"][0]
                    times[name].append(bench["real_time"] * {"ns": 1e-6, "us": 1e-3, "ms": 1.0}[bench["time_unit"]])
    except (Failed, iree.ToolError) as exc:
        print(f"confirm: {exc}", file=sys.stderr)
        return 1
    d_med = statistics.median(times["default"])
    print(
        f"{summary['job']}: default {d_med:.2f} ms over {args.rounds} interleaved rounds, {args.threads} IREE worker(s) "
        f"each, scheduling policy {scheduling}"
    )
    for name in builds:
        if name == "default":
            continue
        ratios = [d / t for d, t in zip(times["default"], times[name], strict=True)]
        t_med = statistics.median(times[name])
        print(
            f"{name}: {t_med:.2f} ms, speed-up (median) {d_med / t_med:.2f}x; per-round {min(ratios):.2f}-{max(ratios):.2f}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
