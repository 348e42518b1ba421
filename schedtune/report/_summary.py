"""summary.json: what a job did and what ships, as one versioned record."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np

from .. import iree
from ..families import op_flops
from ..spaces import loop_bounds
from ..spec import TRANSFORM_DIALECT

# Bump when a field changes meaning or disappears (adding a field needs no bump).
SCHEMA_VERSION = 2


@dataclasses.dataclass
class BuildRun:
    """One tuning build's dispatch stage and search, and its confirmation (None if not confirmed)."""

    name: str
    flags: list[str]
    targets: list  # TuningTarget
    rows: list  # DispatchRow
    search: Any  # SearchResult
    confirmation: Any = None  # Confirmation


@dataclasses.dataclass
class JobSummary:
    job: str
    compiler_version: str
    target_cpu: str
    cpu_model: str
    cpu_features: str
    model_format: str
    model_source: str
    model_mlir: str
    entry: str
    inputs: list[str]
    input_files: list[str]
    default_flags: list[str]
    tuned_flags: list[str]
    shipped: str  # what ships: a tuning build's name, a flag set alone, or "none" (nothing exported)
    flag_candidates: list[dict]
    tuning_plan: dict | None
    dispatches: list[dict]
    untuned_dispatches: list[dict]
    end_to_end: dict
    export: dict
    proposer_fallbacks: dict[str, str]
    busy_warnings: list[str]
    storage: str
    seconds: float
    compiles: int
    trial_compiles: int
    llm: dict | None = None
    # "search", or "from_history": no search, only IREE's default and the history's configs per target
    search_mode: str = "search"
    trial_build: str = "executable"  # how trials were built (SearchSpec.trial_build, after any fallback)
    scheduling: str = "batch"  # the policy every run was measured under (TargetSpec.scheduling)
    pipeline_search: dict | None = None  # the model-level pipelines measured (None: no pipeline search)
    # The model's second half with its batch-1 convs named (NAMED_BATCH1_FLAG): what the tuned
    # build compiles, with --compile-from=global-optimization (None: the model itself).
    prepared_model: str | None = None
    # The machine's yardstick measured in the same job: {"what": ..., "gflops": ...}.
    yardstick: dict | None = None
    # When the shipped flags demote arithmetic (the job's `precision`): {"contractions",
    # "operations", "max_error" (the budget), "error" (the shipped build's relative L2 error)}.
    precision: dict | None = None
    schema_version: int = SCHEMA_VERSION

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        return {"schema_version": data.pop("schema_version"), **data}


def _status(target, run: BuildRun, outcome, shipped: bool, note: str) -> str:
    search = run.search
    if target.key in search.skipped:
        return f"skipped: {search.skipped[target.key]}"
    if outcome is not None and outcome.untunable:
        return f"not tunable: {outcome.untunable}"
    conf = run.confirmation
    if conf is None:
        return "default kept (nothing faster found)"
    if target.label in conf.kept:
        return "tuned" if shipped else f"not exported: {note or 'another build shipped'}"
    if target.label in conf.dropped:
        return f"dropped: {conf.dropped[target.label]}"
    return "default kept (nothing faster found)"


def dispatch_rows(runs: list[BuildRun], shipped: str, note: str, carried: dict[str, dict] | None = None) -> list[dict]:
    """A row per tuning target of every run. `carried`: configs (by label) that shipped in a
    build that was not tuned itself, the fastest flags with the tuning builds' winners."""
    out = []
    carried = dict(carried or {})
    for run in runs:
        by_key = {o.target.key: o for o in run.search.outcomes}
        for target in run.targets:
            o = by_key.get(target.key)
            status = _status(target, run, o, run.name == shipped, note)
            in_model = run.confirmation.per_target_ns.get(target.label) if run.confirmation else None
            winning = run.confirmation.configs.get(target.label) if status == "tuned" else None
            if target.label in carried:
                status, winning = "tuned", carried.pop(target.label)
            out.append(
                {
                    "build": run.name,
                    "label": target.label,
                    "dispatches": list(target.dispatches),
                    "op_kind": target.root.family,
                    "op_name": target.root.op_name,
                    "loops": loop_bounds(target.root),
                    "element_types": list(target.root.element_types),
                    # Per model call, each of the target's dispatches counted once.
                    "flops": _target_flops(target),
                    "share": target.share,
                    "default_ns": target.default_ns,
                    "baseline_ns": o.baseline_ns if o else None,
                    "tuned_ns": o.best_ns if o else None,
                    "in_model_ns": list(in_model) if in_model else None,
                    "speedup": (o.baseline_ns or target.default_ns) / o.best_ns if o and o.best_ns else None,
                    "default_config": target.root.default_config.to_json() if target.root.default_config else None,
                    "winning_config": winning,
                    "route": _route(target, winning),
                    "trials": o.trials if o else 0,
                    "timeline_ms": [None if ns is None else ns / 1e6 for ns, _ in o.timeline] if o else [],
                    "compiles": o.compiles if o else 0,  # trial builds of this run (cache hits cost none)
                    "trial_statuses": o.statuses if o else {},
                    "skeletons": [s.name for s in o.skeletons] if o else [],
                    "status": status,
                }
            )
    return out


def untuned_rows(runs: list[BuildRun], shipped: str) -> list[dict]:
    run = next((r for r in runs if r.name == shipped), runs[0] if runs else None)
    if run is None:
        return []
    tuned_keys = {t.key for t in run.targets}
    return [
        {
            "name": r.name,
            "family": r.family,
            "share": r.share,
            "time_ns": r.time_ns,
            "reason": r.reason or ("" if r.target_key in tuned_keys else "below the time-share cut"),
        }
        for r in run.rows
        if r.target_key not in tuned_keys
    ]


def machine_fields() -> dict[str, str]:
    return {
        "compiler_version": iree.compiler_version(),
        "cpu_model": iree.host_cpu_model(),
        "cpu_features": iree.host_cpu_features(),
    }


def _route(target, winning: dict | None) -> str | None:
    """How the shipped config reaches the op: IREE's pipeline (on a batch-1 op named again
    between the build's halves, see schedtune/iree/_batch1.py) or a transform script."""
    if not winning:
        return None
    pipeline = winning.get("pipeline", "")
    if pipeline == TRANSFORM_DIALECT:
        return "transform script"
    batch = [l.bound for l in target.root.loops if l.role == "n"]
    if target.root.op_name != "linalg.generic" and batch == [1] and target.root.family in _NAMED_FAMILIES:
        return f"{pipeline} (named batch-1 op)"
    return pipeline


_NAMED_FAMILIES = ("conv2d", "depthwise", "pooling")


def _target_flops(target) -> int | None:
    flops = op_flops(target.root.family, [loop.bound for loop in target.root.loops])
    return flops * len(target.dispatches) if flops else None


def yardstick(size: int = 1024, repeats: int = 5) -> dict:
    """The machine's matmul speed as users meet it (numpy's BLAS, f32, its own threads),
    measured now: what a dispatch's GFLOP/s in the report is read against."""
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((size, size)).astype(np.float32) for _ in range(2))
    a @ b  # warm-up: thread pool and pages
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return {"what": f"numpy matmul {size}^3 f32", "gflops": round(2 * size**3 / best / 1e9, 1)}
