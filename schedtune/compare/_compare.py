"""Tuned IREE against what users would otherwise run, interleaved in one process.

    tune compare --config configs/resnet18.yaml [--rounds 10] [--no-torch-compile]

Run after `tune --config ...`. Measures end-to-end latency of one model call for: IREE with
its defaults, IREE with the exported spec + flags (both with 2 task-system workers:
`--task_topology_max_group_count`), the exported build again with its numpy inputs imported
(passed in place, as the other runners read theirs; a plain call copies them into new device
buffers every time) and with its inputs copied to the device once, onnxruntime (CPU, 2
threads), PyTorch eager (2 threads)
and `torch.compile` (inductor, 2 threads) when it works on this CPU (`--threads` changes the
count for all of them). The whole process, every runner's threads included, runs under the
job's scheduling policy (`target.scheduling`, SCHED_BATCH by default; `--scheduling` overrides
it): the policy the tuner measured under and the report tells users to deploy with.
Every runner gets the same inputs (the job's), every output is checked against PyTorch's
(or onnxruntime's for an ONNX model), and the runners take turns: round r times each of
them once, so slow drifts of a noisy machine hit all alike. Writes `compare.md`,
`compare.json` and `compare.png` into the job's report folder. Needs the extras `torch`,
`onnx` and `compare` (`pip install 'schedtune[torch,onnx,compare]'`).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np

from .. import iree
from ..builds import outputs_match
from ..config import ConfigError, load_config
from ..export import ExportedTuning, ExportError
from ..frontend import import_model

THREADS = 2  # default thread count of every runner, IREE's task-system workers included


class Runner:
    """One way of running the model: a callable on numpy inputs returning numpy outputs."""

    def __init__(self, name: str, call: Callable[[list[np.ndarray]], list[np.ndarray]]) -> None:
        self.name = name
        self.call = call
        self.ms: list[float] = []
        self.error: float | None = None

    def time_round(self, inputs: list[np.ndarray], iterations: int) -> None:
        start = time.perf_counter()
        for _ in range(iterations):
            self.call(inputs)
        self.ms.append((time.perf_counter() - start) * 1e3 / iterations)


class BuildFailed(Exception):
    """One of the two IREE builds of a benchmark failed; the message says which and why."""


def build_default_and_tuned(job, work: pathlib.Path):
    """The job's export (`ExportedTuning`) and its model compiled twice into `work`: IREE's
    default and the exported spec + flags, exactly as `tune build` builds it. Returns
    (export, {"default"|"tuned": vmfb})."""
    import_model(job.model, job.report_dir / "work" / "imports")  # the imported file the report names
    try:
        export = ExportedTuning.read(job.report_dir)
    except ExportError as exc:
        raise BuildFailed(str(exc)) from None
    tuned_source, tuned_flags = export.build_args()
    builds = (
        ("default", export.model, list(export.default_flags), None),
        ("tuned", tuned_source, tuned_flags, export.spec),
    )
    vmfbs = {}
    for name, source, flags, spec in builds:
        built = iree.compile_model(source, work / f"{name}.vmfb", flags, spec=spec, timeout_s=600)
        if not built.ok:
            raise BuildFailed(f"the {name} IREE build failed: {built.error.splitlines()[-1]}")
        vmfbs[name] = built.vmfb
    return export, vmfbs


def _torch_runners(
    factory: str, inputs: list[np.ndarray], with_compile: bool, work: pathlib.Path, notes: list[str], threads: int
) -> tuple[list[Runner], pathlib.Path | None]:
    import torch

    from ..frontend._torch_export import load_factory

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = load_factory(factory)().eval()
    example = tuple(torch.from_numpy(x) for x in inputs)

    def eager(xs, m=model):
        with torch.no_grad():
            out = m(*(torch.from_numpy(x) for x in xs))
        return [o.numpy() for o in (out if isinstance(out, (tuple, list)) else [out])]

    runners = [Runner("PyTorch eager", eager)]
    if with_compile:
        try:
            compiled = torch.compile(model)
            eager(inputs, compiled)  # compiles now, not inside the first timed round
            runners.append(Runner("torch.compile", lambda xs: eager(xs, compiled)))
        except Exception as exc:  # inductor needs a working C++ toolchain; say why it is missing
            notes.append(f"torch.compile unavailable: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
    onnx_file = work / "model.onnx"
    if not onnx_file.exists():
        try:
            with torch.no_grad():
                torch.onnx.export(model, example, str(onnx_file), dynamo=True, external_data=False)
        except Exception as exc:
            notes.append(
                f"ONNX export failed, no onnxruntime row: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
            )
            return runners, None
    return runners, onnx_file


def _ort_runner(onnx_file: pathlib.Path, threads: int) -> Runner:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(str(onnx_file), opts, providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    return Runner("onnxruntime", lambda xs: session.run(None, dict(zip(names, xs, strict=True))))


def _chart(path: pathlib.Path, job: str, rows: list[dict], threads: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r["runner"] for r in rows]
    med = [r["median_ms"] for r in rows]
    lo = [r["median_ms"] - r["min_ms"] for r in rows]
    hi = [r["max_ms"] - r["median_ms"] for r in rows]
    colors = ["#9e9e9e", "#2e7d32", "#1565c0", "#ef6c00", "#6a1b9a"][: len(rows)]
    fig, ax = plt.subplots(figsize=(7, 3.6))
    ax.bar(names, med, yerr=[lo, hi], capsize=4, color=colors)
    for i, m in enumerate(med):
        ax.text(i, m, f"{m:.2f}", ha="center", va="bottom", fontsize=9)
    ax.set_ylabel("ms per call (median of rounds; bars: min-max)")
    ax.set_title(f"{job}: end-to-end latency, {threads} threads each, lower is better")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True)
    parser.add_argument("--output", help="reports folder (default: the job's)")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--iterations", type=int, default=20, help="calls per runner per round")
    parser.add_argument("--no-torch-compile", action="store_true")
    parser.add_argument(
        "--threads",
        type=int,
        default=THREADS,
        help="threads of every runner, IREE's task-system workers included (default %(default)s)",
    )
    parser.add_argument(
        "--scheduling",
        choices=iree.SCHEDULING_POLICIES,
        help="Linux scheduling policy of the whole process, every runner alike (default: the job's)",
    )


def main(args: argparse.Namespace) -> int:
    """`tune compare`: the arguments of `add_arguments`."""
    if args.threads < 1 or args.rounds < 1 or args.iterations < 1:
        print("tune compare: --threads, --rounds and --iterations must be at least 1", file=sys.stderr)
        return 2
    try:
        job = load_config(args.config, output_override=args.output)
    except ConfigError as exc:
        print(f"tune compare: config error: {exc}", file=sys.stderr)
        return 2
    report = job.report_dir
    spec = report / "tuning_spec.mlir"
    if not spec.exists():
        print(f"tune compare: {spec} not found: run `tune --config {args.config}` first", file=sys.stderr)
        return 2
    scheduling = args.scheduling or job.target.scheduling
    iree.use_scheduling(scheduling)  # before any runner starts a thread: threads inherit it
    os.environ["OMP_NUM_THREADS"] = str(args.threads)  # before torch loads (inductor's OpenMP kernels)
    iree.pin_workers(args.threads)  # before the first IREE device of this process
    work = report / "work" / "compare"
    work.mkdir(parents=True, exist_ok=True)
    try:
        export, vmfbs = build_default_and_tuned(job, work)
    except BuildFailed as exc:
        print(f"tune compare: {exc}", file=sys.stderr)
        return 1
    input_files = iree.save_inputs(
        job.model.inputs, report / "work" / "inputs", job.search.seed, job.model.value_ranges()
    )
    inputs = [iree.load_array(p) for p in input_files]

    notes: list[str] = []
    runners = [
        Runner("IREE default", iree.load_function(vmfbs["default"], export.entry, iree.COPIED)),
        Runner("IREE tuned", iree.load_function(vmfbs["tuned"], export.entry, iree.COPIED)),
        # onnxruntime and PyTorch read numpy inputs in place; IREE's Python runtime copies them.
        Runner("IREE tuned, inputs imported", iree.load_function(vmfbs["tuned"], export.entry, iree.IMPORTED)),
        Runner("IREE tuned, inputs on device", iree.load_function(vmfbs["tuned"], export.entry, iree.ON_DEVICE)),
    ]
    iree_rows = len(runners)
    onnx_file = job.model.path if job.model.format == "onnx" else None
    if job.model.factory:
        torch_runners, exported = _torch_runners(
            job.model.factory, inputs, not args.no_torch_compile, work, notes, args.threads
        )
        runners += torch_runners
        onnx_file = onnx_file or exported
    else:
        notes.append("no PyTorch rows: the job names no torch factory")
    if onnx_file is not None:
        runners.insert(iree_rows, _ort_runner(onnx_file, args.threads))  # after IREE's rows

    # The framework the model came from is the reference for every runner, IREE included.
    ref_runner = next((r for r in runners if r.name == "PyTorch eager"), None) or next(
        (r for r in runners if r.name == "onnxruntime"), runners[0]
    )
    reference = ref_runner.call(inputs)
    for r in runners:
        ok, r.error = outputs_match(r.call(inputs)[: len(reference)], reference)
        if not ok:
            notes.append(f"{r.name}: outputs differ from {ref_runner.name} (max relative error {r.error:.2e})")
    # Both IREE runners share the process's one local-task device and its workers. More
    # workers than --threads: the pin failed; fewer: the machine has fewer physical cores.
    iree_workers = iree.worker_threads()
    if iree_workers is not None and iree_workers > args.threads:
        notes.append(f"IREE worker count not pinned: {iree_workers} iree-worker threads, expected {args.threads}")
    elif iree_workers is not None and iree_workers < args.threads:
        notes.append(f"IREE runs {iree_workers} workers, not {args.threads}: IREE uses at most one per physical core")
    for r in runners:  # warm-up: caches, thread pools, lazy weight loading
        r.time_round(inputs, max(2, args.iterations // 4))
        r.ms.clear()
    for _ in range(args.rounds):
        for r in runners:
            r.time_round(inputs, args.iterations)

    tuned = statistics.median(runners[1].ms)
    rows = []
    for r in runners:
        med = statistics.median(r.ms)
        rows.append(
            {
                "runner": r.name,
                "median_ms": med,
                "min_ms": min(r.ms),
                "max_ms": max(r.ms),
                "tuned_iree_speedup": med / tuned,
                "max_rel_error": r.error,
                "rounds_ms": r.ms,
            }
        )
    result = {
        "job": job.name,
        "inputs": list(job.model.inputs),
        "threads": args.threads,
        "scheduling": scheduling,
        "iree_worker_scheduling": iree.worker_policies(),
        "iree_worker_threads": iree_workers,
        "rounds": args.rounds,
        "iterations": args.iterations,
        "reference": ref_runner.name,
        "rows": rows,
        "notes": notes,
    }
    (report / "compare.json").write_text(json.dumps(result, indent=2))
    from tabulate import tabulate

    table = tabulate(
        [
            [
                r["runner"],
                f"{r['median_ms']:.3f}",
                f"{r['min_ms']:.3f}-{r['max_ms']:.3f}",
                f"{r['tuned_iree_speedup']:.2f}x",
                f"{r['max_rel_error']:.1e}",
            ]
            for r in rows
        ],
        headers=["runner", "median ms", "range ms", "this / tuned IREE", "max rel. error"],
        tablefmt="github",
    )
    text = (
        f"# {job.name}: tuned IREE vs alternatives\n\nInputs {', '.join(job.model.inputs)}; "
        f"{args.threads} thread{'s' if args.threads > 1 else ''} each, IREE's worker count included "
        f"(--task_topology_max_group_count={args.threads}); every runner under scheduling policy {scheduling}; "
        f"{args.rounds} interleaved rounds of {args.iterations} calls; outputs checked against {ref_runner.name}. "
        "IREE's numpy inputs are copied into new device buffers on every call, except on the 'inputs imported' "
        "row (passed in place, as the other runners read theirs) and the 'inputs on device' row (copied once).\n\n"
        f"{table}\n" + "".join(f"\n- {n}" for n in notes) + "\n\n![latency](compare.png)\n"
    )
    (report / "compare.md").write_text(text)
    _chart(report / "compare.png", job.name, rows, args.threads)
    print(text)
    return 1 if any("outputs differ" in n or "not pinned" in n for n in notes) else 0
