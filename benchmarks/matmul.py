"""A GEMM job's exported build against numpy's matmul (OpenBLAS), interleaved in one process.

    python benchmarks/matmul.py --config configs/matmul.yaml [--rounds 10] [--threads 2]

Run after `tune --config configs/matmul.yaml`. The job's model must be one matrix product
of its two inputs (M x K by K x N). Times IREE's default build, the exported build (spec +
flags), the exported build with its inputs already on the device (IREE's Python runtime
otherwise copies every numpy argument into a new device buffer on each call, where numpy
reads its operands in place) and `numpy.matmul` on the same inputs, each with the same thread count (IREE's
task-system workers pinned, OpenBLAS/OMP threads set before numpy loads), in alternating
rounds; checks every output against numpy's; prints ms and GFLOP/s per runner and the
exported build's speed as a share of numpy's. Judge against numpy measured here, not a
computed peak: the CPU's clock moves with load. Writes `matmul_vs_numpy.{md,json}` into the
job's report folder.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import sys

THREADS = 2


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--output", help="reports folder (default: the job's)")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--threads", type=int, default=THREADS)
    parser.add_argument(
        "--scheduling",
        choices=("batch", "normal"),
        help="Linux scheduling policy of the whole process, every runner alike (default: the job's)",
    )
    args = parser.parse_args()
    if args.threads < 1:
        parser.error("--threads must be at least 1")
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)  # before numpy loads its BLAS
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
    import numpy as np

    from schedtune import iree
    from schedtune.builds import outputs_match
    from schedtune.compare._compare import BuildFailed, Runner, build_default_and_tuned
    from schedtune.config import ConfigError, load_config

    try:
        job = load_config(args.config, output_override=args.output)
    except ConfigError as exc:
        print(f"matmul: config error: {exc}", file=sys.stderr)
        return 2
    if len(job.model.inputs) != 2:
        print("matmul: the job's model must take two inputs (A and B)", file=sys.stderr)
        return 2
    report = job.report_dir
    spec = report / "tuning_spec.mlir"
    if not spec.exists():
        print(f"matmul: {spec} not found: run `tune --config {args.config}` first", file=sys.stderr)
        return 2
    scheduling = args.scheduling or job.target.scheduling
    iree.use_scheduling(scheduling)  # numpy's BLAS threads too, and every thread started later
    iree.pin_workers(args.threads)
    work = report / "work" / "matmul_bench"
    work.mkdir(parents=True, exist_ok=True)
    try:
        export, vmfbs = build_default_and_tuned(job, work)
    except BuildFailed as exc:
        print(f"matmul: {exc}", file=sys.stderr)
        return 1
    inputs = [np.load(p) for p in iree.save_inputs(job.model.inputs, report / "work" / "inputs", job.search.seed)]
    a, b = inputs
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]:
        print(f"matmul: inputs {a.shape} and {b.shape} are not an M x K, K x N pair", file=sys.stderr)
        return 2
    flop = 2.0 * a.shape[0] * a.shape[1] * b.shape[1]

    runners = [
        Runner("IREE default", iree.load_function(vmfbs["default"], export.entry, iree.COPIED)),
        Runner("IREE exported", iree.load_function(vmfbs["tuned"], export.entry, iree.COPIED)),
        Runner("IREE exported, inputs imported", iree.load_function(vmfbs["tuned"], export.entry, iree.IMPORTED)),
        Runner("IREE exported, inputs on device", iree.load_function(vmfbs["tuned"], export.entry, iree.ON_DEVICE)),
        Runner("numpy (OpenBLAS)", lambda xs: [np.matmul(xs[0], xs[1])]),
    ]
    reference = runners[-1].call(inputs)
    notes = []
    for r in runners:
        ok, r.error = outputs_match(r.call(inputs)[:1], reference)
        if not ok:
            notes.append(f"{r.name}: outputs differ from numpy (max relative error {r.error:.2e})")
    workers = iree.worker_threads()
    if workers is not None and workers != args.threads:
        notes.append(f"IREE runs {workers} worker threads, not {args.threads}")
    # Enough calls per round for ~300 ms of the slowest runner.
    probe = Runner("probe", runners[0].call)
    probe.time_round(inputs, 3)
    iterations = max(5, int(300 / max(probe.ms[0], 1e-3)))
    for r in runners:
        r.time_round(inputs, max(2, iterations // 4))  # warm-up
        r.ms.clear()
    for _ in range(args.rounds):
        for r in runners:
            r.time_round(inputs, iterations)

    numpy_ms = statistics.median(runners[-1].ms)
    rows = []
    for r in runners:
        med = statistics.median(r.ms)
        rows.append(
            {
                "runner": r.name,
                "median_ms": med,
                "min_ms": min(r.ms),
                "max_ms": max(r.ms),
                "gflops": flop / med / 1e6,
                "vs_numpy": numpy_ms / med,
                "max_rel_error": r.error,
                "rounds_ms": r.ms,
            }
        )
    from tabulate import tabulate

    table = tabulate(
        [
            [
                r["runner"],
                f"{r['median_ms']:.3f}",
                f"{r['min_ms']:.3f}-{r['max_ms']:.3f}",
                f"{r['gflops']:.0f}",
                f"{r['vs_numpy']:.2f}x",
                f"{r['max_rel_error']:.1e}",
            ]
            for r in rows
        ],
        headers=["runner", "median ms", "range ms", "GFLOP/s", "speed vs numpy", "max rel. error"],
        tablefmt="github",
    )
    shape = f"{a.shape[0]}x{a.shape[1]}x{b.shape[1]}"
    text = (
        f"# {job.name}: GEMM {shape} f32, exported IREE build vs numpy\n\n"
        f"{args.threads} threads each (IREE workers pinned, OpenBLAS/OMP threads set), every runner under "
        f"scheduling policy {scheduling}; {args.rounds} "
        f"interleaved rounds of {iterations} calls; outputs checked against numpy; IREE's outputs are "
        "copied to the host on every call; its inputs are copied into new device buffers on every call, except "
        "on the 'inputs imported' row (numpy's memory passed in place, as numpy reads it) and the 'inputs on "
        f"device' row (copied once). Exported flags: "
        f"`{' '.join(export.tuned_flags) or '(none)'}`.\n\n{table}\n" + "".join(f"\n- {n}" for n in notes)
    )
    (report / "matmul_vs_numpy.md").write_text(text + "\n")
    (report / "matmul_vs_numpy.json").write_text(
        json.dumps(
            {
                "job": job.name,
                "shape": shape,
                "threads": args.threads,
                "scheduling": scheduling,
                "rows": rows,
                "notes": notes,
            },
            indent=2,
        )
    )
    print(text)
    return 1 if notes and any("differ" in n for n in notes) else 0


if __name__ == "__main__":
    sys.exit(main())
