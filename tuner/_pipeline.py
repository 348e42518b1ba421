"""One tuning job, stage by stage: config -> frontend -> flags -> dispatches -> proposers ->
search (evaluation + cache) -> export -> report."""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import pathlib
import time

import optuna

from . import iree
from .config import JobConfig
from .dispatches import DispatchRow, TuningTarget, find_targets, read_configured_executables, tunable_share
from .evaluation import Cache, Evaluator, ModelContext, busy_warning, schema_lock
from .export import Confirmation, confirm, write_exports
from .frontend import import_model
from .proposers import HeuristicProposer, ProposalRequest, Proposer, default_values
from .report import write_report
from .search import TargetOutcome, choose_flags, settle, tune_target, tuning_build
from .spaces import flag_candidates, load_space, loop_bounds

log = logging.getLogger("schedtune")


@dataclasses.dataclass
class JobResult:
    report_dir: pathlib.Path
    summary: dict
    compiles: int


def _analyze(model: ModelContext, cache: Cache) -> tuple[dict, dict[str, iree.DispatchTiming]]:
    """Dispatches of the default build under the model flags, with their in-model times.

    The configured executables are kept on disk and the timings in the cache, so a re-run
    reads them back instead of compiling.
    """
    folder = model.workdir / f"analysis_{model.model_hash()}"
    timings_file = folder / "timings.json"
    if not timings_file.exists():
        folder.mkdir(parents=True, exist_ok=True)
        built = iree.compile_model(model.source, folder / "default.vmfb", model.flags, configs_dir=folder / "configs",
                                   timeout_s=model.compile_timeout_s)
        if not built.ok:
            raise iree.ToolError(f"the model does not compile with IREE's defaults: {built.error}")
        timings = iree.profile_dispatches(folder / "default.vmfb", model.entry, model.inputs, folder / "profile",
                                          iterations=30, timeout_s=model.run_timeout_s)
        timings_file.write_text(json.dumps({k: dataclasses.asdict(v) for k, v in timings.items()}))
    timings = {k: iree.DispatchTiming(**v) for k, v in json.loads(timings_file.read_text()).items()}
    return read_configured_executables(folder / "configs"), timings


def _tuning_build(base: ModelContext, target_flags: list[str], flag_rows: list[dict], chosen: str,
                  default_analysis, cache: Cache) -> tuple[str, dict[str, float], dict[str, tuple]]:
    """Analyse every flag candidate's build and pick the one to tune under (`tuning_build`)."""
    shares: dict[str, float] = {}
    analyses: dict[str, tuple] = {}
    for row in flag_rows:
        if row["status"] != "ok" or "median_ms" not in row:
            continue
        if row["flags"]:
            analyses[row["name"]] = _analyze(dataclasses.replace(base, flags=target_flags + row["flags"]), cache)
        else:
            analyses[row["name"]] = default_analysis
        shares[row["name"]] = tunable_share(*analyses[row["name"]])
    median_ms = {r["name"]: r["median_ms"] for r in flag_rows if r["name"] in shares}
    return tuning_build(shares, median_ms, chosen), shares, analyses


def _make_proposer(job: JobConfig, cache: Cache, storage) -> Proposer:
    if job.proposer.kind == "heuristic":
        return HeuristicProposer()
    from .proposers.llm import make_llm_proposer  # optional stage, imported only when configured

    return make_llm_proposer(job.proposer, job.report_dir, cache=cache, storage=storage)


def _centre_check(evaluator: Evaluator, target: TuningTarget):
    """A proposer's skeleton check: compile its centre point in the model (cached like any trial)."""

    def check(config) -> str | None:
        result = evaluator.evaluate(target, config)
        if result.status in ("ok", "in_progress"):
            return None
        return f"{result.status}: {result.error}"

    return check


class _NullProgress:
    def add(self, label: str, total: int) -> int:
        return 0

    def update(self, task: int, done: int, total: int, best_ms: float | None) -> None:
        pass


class _RichProgress:
    def __init__(self, progress) -> None:
        self._p = progress

    def add(self, label: str, total: int) -> int:
        return self._p.add_task(label, total=total, best="-")

    def update(self, task: int, done: int, total: int, best_ms: float | None) -> None:
        self._p.update(task, completed=done, best="-" if best_ms is None else f"{best_ms:.3f} ms")


@contextlib.contextmanager
def _progress(quiet: bool):
    if quiet:
        yield _NullProgress()
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("best {task.fields[best]}"), TimeElapsedColumn(),
    ) as progress:
        yield _RichProgress(progress)


def run_job(job: JobConfig, *, quiet: bool = False, max_minutes: float | None = None,
            search_only: bool = False) -> JobResult:
    start = time.monotonic()
    compiles_at_start = iree.compiles_so_far()
    busy_warnings: list[str] = []
    _busy_check(busy_warnings, "at the start")
    limit = max_minutes if max_minutes is not None else job.budget.max_minutes
    deadline = start + 60 * limit if limit is not None else None
    report_dir = job.report_dir
    workdir = report_dir / "work"
    workdir.mkdir(parents=True, exist_ok=True)

    imported = import_model(job.model, workdir / "imports", timeout_s=max(600.0, job.budget.compile_timeout_s))
    target_flags = iree.target_flags(job.target.cpu, tuple(imported.input_flags) + job.target.extra_flags)
    inputs = iree.save_inputs(job.model.inputs, workdir / "inputs", job.search.seed)
    cache = Cache(job.storage)
    with schema_lock(job.storage):
        storage = optuna.storages.RDBStorage(job.storage)

    base = ModelContext(imported.path, imported.entry, inputs, target_flags, workdir,
                        compile_timeout_s=job.budget.compile_timeout_s, run_timeout_s=job.budget.run_timeout_s)
    base_eval = Evaluator(base, cache)
    reference = base_eval.reference_outputs()

    # Stage: model-level flags (they change the dispatch set, so they come first).
    dispatches, timings = _analyze(base, cache)
    families = {d.root.family for d in dispatches.values() if d.root is not None}
    flag_rows: list[dict] = []
    chosen_flags: list[str] = []
    if job.search.tune_model_flags:
        candidates, min_gain = flag_candidates(families)
        if len(candidates) > 1:
            decision = choose_flags(base, candidates, reference, cache, min_gain=min_gain)
            chosen_flags = list(decision.chosen.flags)
            flag_rows = decision.rows
    # Flags change which ops a spec can match: data tiling + ukernels turn matmuls into mmt4d
    # calls, im2col turns batch-1 convs (which drop a spec's config) into matmuls. The
    # dispatches are tuned in the build that leaves the most time tunable; if that is not the
    # fastest flag set on its own, both are weighed end to end at the export.
    flags_alone: list[str] = []
    if flag_rows:
        tuning_name, shares, analyses = _tuning_build(base, target_flags, flag_rows, decision.chosen.name,
                                                         (dispatches, timings), cache)
        for row in flag_rows:
            if row["name"] in shares:
                row["tunable_share"] = shares[row["name"]]
        tuning_flags = next(r["flags"] for r in flag_rows if r["name"] == tuning_name)
        if tuning_flags != chosen_flags:
            log.info("tuning under %s (%.0f%% of the time tunable) rather than the fastest flags alone %s (%.0f%%)",
                     tuning_name, 100 * shares[tuning_name], " ".join(chosen_flags) or "(default)",
                     100 * shares.get(decision.chosen.name, 0.0))
            flags_alone = chosen_flags
            chosen_flags = list(tuning_flags)
        dispatches, timings = analyses[tuning_name]
    model = dataclasses.replace(base, flags=target_flags + chosen_flags)
    # Candidates under any flags are checked against IREE's default build.
    evaluator = Evaluator(model, cache, reference=reference)

    # Stage: dispatches -> targets.
    targets, rows = find_targets(dispatches, timings, time_share=job.budget.time_share,
                                 max_targets=job.budget.max_dispatches)
    log.info("%d dispatches, %d tuning targets", len(rows), len(targets))

    # Stage: proposers + search, one study per target and compiler/flags build: a new IREE
    # starts a new study that first re-verifies the old one's winners.
    build_tag = hashlib.sha256(json.dumps(model.fingerprint, sort_keys=True).encode()).hexdigest()[:8]
    proposer = _make_proposer(job, cache, storage)
    outcomes: list[TargetOutcome] = []
    skipped: dict[str, str] = {}
    cpu_features = iree.host_cpu_features()
    with contextlib.ExitStack() as stack, _progress(quiet) as progress:
        if hasattr(proposer, "close"):
            stack.callback(proposer.close)
        for i, target in enumerate(targets):
            space = load_space(target.root.family)
            if space is None:
                skipped[target.key] = f"no space for op family {target.root.family}"
                continue
            request = ProposalRequest(target, space, cpu_features, _centre_check(evaluator, target))
            proposal = proposer.propose(request)
            if proposal.notes:
                log.info("%s: proposals from %s (%s)", target.label, proposal.source, "; ".join(proposal.notes))
            if not proposal.skeletons:
                skipped[target.key] = "no valid skeleton proposed"
                continue
            defaults = {}
            for sk in proposal.skeletons:
                vals = default_values(sk, request)
                if vals is not None:
                    defaults[sk.name] = vals
                    break
            task = progress.add(f"[{i + 1}/{len(targets)}] {target.label}", job.budget.trials_per_dispatch)
            outcome = tune_target(
                target, space, proposal.skeletons, defaults, evaluator,
                storage=storage, study_name=f"{job.name}:{target.key}:{build_tag}",
                history_prefix=f"{job.name}:{target.key}:", trials=job.budget.trials_per_dispatch,
                sampler=job.search.sampler, seed=job.search.seed, deadline=deadline,
                progress=lambda d, n, b, task=task: progress.update(task, d, n, None if b is None else b / 1e6),
            )
            progress.update(task, outcome.trials, job.budget.trials_per_dispatch,
                            None if outcome.best_ns is None else outcome.best_ns / 1e6)
            outcomes.append(outcome)
    compiles = iree.compiles_so_far() - compiles_at_start
    if search_only:
        cache.dispose()
        done = {o.target.label: o.trials for o in outcomes}
        return JobResult(report_dir, {"job": job.name, "search_only": True, "trials": done,
                                      "seconds": time.monotonic() - start, "compiles": compiles}, compiles)

    # Another worker (shared storage) may still be finishing trials of these studies.
    outcomes = [settle(o, storage, model.stale_after_s) for o in outcomes]

    # Stage: export + confirmation in the full model.
    _busy_check(busy_warnings, "before the confirmation")
    winners = [
        (o.target, o.best_config) for o in outcomes
        if o.best_config is not None and o.best_ns is not None
        and o.best_ns < (o.baseline_ns or o.target.default_ns) * 0.98
        and (o.target.root.default_config is None or o.best_config.canonical() != o.target.root.default_config.canonical())
    ]
    confirmation = confirm(model, target_flags, winners, reference, cache, rounds=job.budget.confirm_rounds)
    tuned_kept = list(confirmation.kept)
    export_note = ""
    arbitration = None
    if flags_alone:
        # The tuning build's flags were chosen for tunability, not speed: weigh them (with the
        # spec) against the fastest flags alone in the same way. (Against no flags at all,
        # the withdrawal below does the weighing.)
        alone = confirm(dataclasses.replace(base, flags=target_flags + flags_alone), target_flags, [], reference,
                        cache, rounds=job.budget.confirm_rounds)
        arbitration = {"flags": flags_alone, "flags_alone_speedup": alone.speedup, "tuning_flags": chosen_flags,
                       "tuned_dispatches_speedup": confirmation.speedup,
                       "chosen": "flags alone" if alone.speedup > confirmation.speedup else "tuned dispatches"}
        log.info("flags alone %.2fx vs tuned dispatches %.2fx", alone.speedup, confirmation.speedup)
        if alone.speedup > confirmation.speedup:
            confirmation, chosen_flags = alone, flags_alone
            export_note = f"flags alone were faster end to end ({alone.speedup:.2f}x)"
    withdrawn = None
    if confirmation.speedup < 1.0 and (confirmation.kept or chosen_flags):
        # Per-dispatch gains that do not add up end to end (or noise) must not ship as a "tuning".
        withdrawn = {"speedup": confirmation.speedup, "kept": confirmation.kept, "flags": chosen_flags}
        log.info("tuned build %.2fx end to end: exporting nothing", confirmation.speedup)
        export_note = f"the tuned build was {confirmation.speedup:.2f}x end to end"
        confirmation = confirm(base, target_flags, [], reference, cache, rounds=job.budget.confirm_rounds)
        chosen_flags = []
    spec_path, flags_path = write_exports(report_dir, confirmation, chosen_flags)
    llm_stats = proposer.write_records(report_dir) if hasattr(proposer, "write_records") else None
    not_exported = {label: export_note for label in tuned_kept if label not in confirmation.kept}
    summary = _summary(job, imported, inputs, target_flags, chosen_flags, flag_rows, rows, targets, outcomes,
                       skipped, confirmation, not_exported, time.monotonic() - start, iree.compiles_so_far() - compiles_at_start)
    summary["flag_arbitration"] = arbitration
    summary["busy_warnings"] = busy_warnings
    summary["withdrawn"] = withdrawn
    if llm_stats is not None:
        summary["llm"] = llm_stats
    write_report(report_dir, summary)
    cache.dispose()
    return JobResult(report_dir, summary, summary["compiles"])


def _busy_check(warnings: list[str], stage: str) -> None:
    """Note (and log) when other processes load the machine: every timing would be noise."""
    warning = busy_warning(stage, window_s=0.5)
    if warning:
        log.warning(warning)
        warnings.append(warning)


def _summary(job, imported, inputs, target_flags, chosen_flags, flag_rows, rows: list[DispatchRow],
             targets: list[TuningTarget], outcomes: list[TargetOutcome], skipped, confirmation: Confirmation,
             not_exported: dict[str, str], seconds: float, compiles: int) -> dict:
    by_key = {o.target.key: o for o in outcomes}
    dispatch_rows = []
    for target in targets:
        o = by_key.get(target.key)
        best = o.best_ns if o else None
        if target.key in skipped:
            status = f"skipped: {skipped[target.key]}"
        elif o is not None and o.untunable:
            status = f"not tunable: {o.untunable}"
        elif target.label in confirmation.kept:
            status = "tuned"
        elif target.label in not_exported:
            status = f"not exported: {not_exported[target.label]}"
        elif target.label in confirmation.dropped:
            status = f"dropped: {confirmation.dropped[target.label]}"
        else:
            status = "default kept (nothing faster found)"
        in_model = confirmation.per_target_ns.get(target.label)
        dispatch_rows.append({
            "label": target.label,
            "dispatches": list(target.dispatches),
            "op_kind": target.root.family,
            "op_name": target.root.op_name,
            "loops": loop_bounds(target.root),
            "element_types": list(target.root.element_types),
            "share": target.share,
            "default_ns": target.default_ns,
            "baseline_ns": o.baseline_ns if o else None,
            "tuned_ns": best,
            "in_model_ns": list(in_model) if in_model else None,
            "speedup": (o.baseline_ns or target.default_ns) / best if best else None,
            "default_config": target.root.default_config.to_json() if target.root.default_config else None,
            "winning_config": o.best_config.to_json() if o and o.best_config and status == "tuned" else None,
            "trials": o.trials if o else 0,
            "compiles": o.compiles if o else 0,  # trial builds of this run (cache hits cost none)
            "trial_statuses": o.statuses if o else {},
            "skeletons": [s.name for s in o.skeletons] if o else [],
            "status": status,
        })
    tuned_keys = {t.key for t in targets}
    untuned = [
        {"name": r.name, "family": r.family, "share": r.share, "time_ns": r.time_ns,
         "reason": r.reason or ("" if r.target_key in tuned_keys else "below the time-share cut")}
        for r in rows if r.target_key not in tuned_keys
    ]
    return {
        "job": job.name,
        "compiler_version": iree.compiler_version(),
        "target_cpu": job.target.cpu,
        "cpu_features": iree.host_cpu_features(),
        "model_format": job.model.format,
        "model_source": str(job.model.path or job.model.factory),
        "model_mlir": str(imported.path),
        "entry": imported.entry,
        "inputs": list(job.model.inputs),
        "input_files": [str(p) for p in inputs],
        "default_flags": target_flags,
        "tuned_flags": chosen_flags,
        "flag_candidates": flag_rows,
        "dispatches": dispatch_rows,
        "untuned_dispatches": untuned,
        "end_to_end": confirmation.to_json() | {"spec_text": None},
        "storage": job.storage.split("@")[-1] if "@" in job.storage else job.storage,
        "seconds": seconds,
        "compiles": compiles,
        "trial_compiles": sum(o.compiles for o in outcomes),
    }
