"""One tuning job, stage by stage: config -> frontend -> flags -> dispatches -> proposers ->
search (evaluation + cache) -> export -> report. Each stage lives in its package; this file
only calls them in order and carries their results."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import pathlib
import time
from collections.abc import Callable

import optuna

from . import iree
from .builds import ModelContext
from .config import DEMOTE_FLAG, JobConfig, PrecisionSpec
from .dispatches import Analysis, analyze_model, find_targets
from .errors import last_line
from .evaluation import Evaluator, busy_warning
from .export import (
    Confirmation,
    Contender,
    carry_winners,
    confirm,
    decide_export,
    head_to_head,
    select_winners,
    write_exports,
)
from .families import SCRIPTED
from .frontend import import_model
from .history import collect_records, imported_records, map_config, nearest
from .pipelines import compile_ready, load_pipeline_space, pipeline_error, user_pipelines
from .proposers import HeuristicProposer, PipelineRequest, ProposalRequest, Proposer
from .redaction import redact
from .report import (
    BuildRun,
    JobSummary,
    dispatch_rows,
    machine_fields,
    progress_display,
    untuned_rows,
    write_report,
    yardstick,
)
from .search import (
    BuildCandidate,
    PipelineEvaluator,
    SearchSettings,
    TuningPlan,
    choose_flags,
    measured_pipelines,
    plan_tuning_builds,
    race,
    search_pipelines,
    search_targets,
    settle,
    share_of_time_left,
    within_reach,
)
from .spaces import FlagCandidate, flag_candidates
from .store import Cache, cache_key, get_storage

log = logging.getLogger("schedtune")
HISTORY_NEIGHBOURS = 3  # configs tried per target from the history
CARRIED_PIPELINES = 2  # best searched pipelines measured beside the fixed flag sets


@dataclasses.dataclass
class JobResult:
    report_dir: pathlib.Path
    summary: dict
    compiles: int


@dataclasses.dataclass
class _Context:
    """What every stage of one job shares."""

    job: JobConfig
    imported: object  # frontend.ImportedModel
    target_flags: list[str]
    base: ModelContext  # the model under the target flags only
    cache: Cache
    storage: optuna.storages.RDBStorage
    reference: list
    deadline: float | None
    busy_warnings: list[str]
    confirm_failures: list[str] = dataclasses.field(default_factory=list)
    dropped_contenders: dict[str, str] = dataclasses.field(default_factory=dict)  # name -> why

    def under(self, flags: list[str]) -> ModelContext:
        """The model under these model-level flags; a build that demotes contractions is held
        to the job's accuracy budget instead of the f32 tolerances."""
        return dataclasses.replace(
            self.base, flags=self.target_flags + list(flags), error_budget=self.error_budget(flags)
        )

    def error_budget(self, flags) -> float | None:
        demoted = any(f.startswith(DEMOTE_FLAG) for f in flags)
        return self.job.precision.max_error if demoted else None

    def busy_check(self, stage: str) -> None:
        """Note (and log) when other processes load the machine: every timing would be noise."""
        warning = busy_warning(stage, window_s=0.5)
        if warning:
            log.warning(warning)
            self.busy_warnings.append(warning)


def _prepare(job: JobConfig, max_minutes: float | None, start: float) -> _Context:
    """Stages config + frontend: the imported model, its inputs, storage, IREE's reference outputs."""
    limit = max_minutes if max_minutes is not None else job.budget.max_minutes
    workdir = job.report_dir / "work"
    workdir.mkdir(parents=True, exist_ok=True)
    imported = import_model(job.model, workdir / "imports", timeout_s=max(600.0, job.budget.compile_timeout_s))
    target_flags = iree.target_flags(job.target.cpu, tuple(imported.input_flags) + job.target.extra_flags)
    if job.search.named_batch1_convs:
        target_flags.append(iree.NAMED_BATCH1_FLAG)
    timing_inputs, *check_inputs = iree.save_input_sets(
        job.model.inputs, workdir / "inputs", job.search.seed, job.model.value_ranges()
    )
    cache = Cache(job.storage)
    storage = get_storage(job.storage)
    base = ModelContext(
        imported.path,
        imported.entry,
        timing_inputs,
        target_flags,
        workdir,
        compile_timeout_s=job.budget.compile_timeout_s,
        run_timeout_s=job.budget.run_timeout_s,
        check_inputs=tuple(check_inputs),
        trial_build=job.search.trial_build,
        scheduling=job.target.scheduling,
    )
    deadline = start + 60 * limit if limit is not None else None
    ctx = _Context(job, imported, target_flags, base, cache, storage, [], deadline, [])
    ctx.busy_check("at the start")
    ctx.reference = base.reference_outputs()
    ctx.base = dataclasses.replace(base, profile_iterations=_profile_iterations(base, cache))
    return ctx


def _profile_iterations(base: ModelContext, cache: Cache) -> int:
    """Calls per dispatch profile for this model, from its default build's call time; the
    first value found is kept (storage), so that noise cannot change every cache key."""
    key = cache_key(kind="profile_iterations", model=base.build_key())
    known = cache.get(key)
    if known is None:
        folder = base.workdir / f"reference_{base.build_key()}"
        vmfb = folder / "default.vmfb"  # the reference build's, unless its files were deleted
        if not vmfb.is_file():
            built = base.compile(folder, name="default")
            if not built.ok:
                raise iree.ToolError(f"the default build does not compile: {built.error}")
        try:
            call_ms = iree.benchmark_model(
                vmfb, base.entry, base.inputs, iterations=3, timeout_s=base.run_timeout_s, scheduling=base.scheduling
            )
        except iree.ToolError as exc:  # the first timing would have shown it anyway: not fatal here
            log.warning("timing IREE's default build failed (%s): profiles take %d calls", exc, base.profile_iterations)
            return base.profile_iterations
        known = cache.setdefault(
            key, "profile", "profile iterations", {"iterations": iree.profile_iterations_for(call_ms)}
        )
    return int(known["iterations"])


@dataclasses.dataclass
class _ModelLevel:
    flag_rows: list[dict]
    fastest: str
    builds: dict[str, list[str]]  # name -> model-level flags
    analyses: dict[str, Analysis]
    plan: TuningPlan | None
    pipeline_search: dict | None = None  # what the pipeline search tried (summary.json)


def _search_pipelines(
    ctx: _Context,
    default: Analysis,
    fixed: list[FlagCandidate],
    min_gain: float,
    proposer: Proposer,
    deadline: float | None,
) -> tuple[list[FlagCandidate], dict | None]:
    """Stage flags, part 1: search ordered pass pipelines (+ global flags) on the whole model.

    Returns the best searched pipelines and the job's own as flag candidates, to be measured
    side by side with today's fixed sets."""
    search = ctx.job.search
    own = user_pipelines(ctx.job.search.pipelines)
    if search.pipeline_trials == 0 and not own:
        return [], None
    space = load_pipeline_space().for_families(default.families)
    study_name = f"{ctx.job.name}:pipelines:{ctx.base.build_key()[:8]}:{space.digest}"
    request = PipelineRequest(
        space,
        tuple(fixed),
        default.family_shares,
        tuple(default.hottest),
        past=measured_pipelines(ctx.storage, study_name),
        check=lambda p: pipeline_error(space, p),
    )
    proposals = list(proposer.propose_pipelines(request).pipelines) if search.pipeline_trials else []
    proposals += [(p, "user") for p in own]
    evaluator = PipelineEvaluator(ctx.base, space, ctx.reference, ctx.cache)
    result = search_pipelines(
        evaluator,
        proposals,
        ctx.storage,
        study_name=study_name,
        trials=search.pipeline_trials,
        patience=search.pipeline_patience,
        seed=search.seed,
        min_gain=min_gain,
        deadline=deadline,
    )
    carried = [
        FlagCandidate(f"searched-{i + 1}", tuple(space.flags(t.pipeline)), t.pipeline.describe())
        for i, t in enumerate(result.best_searched(CARRIED_PIPELINES))
    ]
    for i, pipeline in enumerate(own):
        carried.append(FlagCandidate(f"user-{i + 1}", tuple(space.flags(pipeline)), pipeline.describe()))
    log.info(
        "pipeline search: %d pipelines measured; carried: %s",
        len(result.tried),
        ", ".join(c.note for c in carried) or "none",
    )
    return carried, result.to_json(space) | {"carried": [c.name for c in carried]}


def _model_level(ctx: _Context, proposer: Proposer) -> _ModelLevel:
    """Stage flags: search pipelines, measure the flag candidates, analyse each build, plan the tuning build(s)."""
    started = time.monotonic()
    default = analyze_model(ctx.base)
    # One build compiled and run: about what each fixed flag set will cost (none when cached).
    build_s = time.monotonic() - started
    only_default = _ModelLevel([], "default", {"default": []}, {"default": default}, None)
    if not ctx.job.search.tune_model_flags:
        return only_default
    # Half the time left for the model-level stage, a quarter of it for the pipeline search: the
    # dispatch search and the export must still get their share on a model whose every
    # end-to-end measurement takes seconds (ResNet-50 at 224x224 on AVX2 spent a 20-minute
    # limit here and tuned no dispatch).
    stage_deadline = share_of_time_left(ctx.deadline, 2)
    candidates, min_gain = flag_candidates(default.families)
    pipeline_deadline = share_of_time_left(stage_deadline, 2)
    if pipeline_deadline is not None:
        # The fixed sets are measured after the pipeline search: keep their time free of it.
        twins = 2 if ctx.job.precision.demotes else 1
        pipeline_deadline = min(pipeline_deadline, stage_deadline - build_s * len(candidates) * twins)
    searched, pipeline_summary = _search_pipelines(ctx, default, candidates, min_gain, proposer, pipeline_deadline)
    candidates = compile_ready(load_pipeline_space().for_families(default.families), candidates) + searched
    candidates += demoted_twins(candidates, ctx.job.precision)
    if len(candidates) <= 1:
        return only_default
    decision = choose_flags(
        ctx.base,
        candidates,
        ctx.reference,
        ctx.cache,
        min_gain=min_gain,
        deadline=stage_deadline,
        error_budget=ctx.error_budget,
    )
    measured = [row["median_ms"] for row in decision.rows if row["status"] == "ok" and "median_ms" in row]
    builds, analyses, contenders = {}, {}, []
    for row in decision.rows:
        if row["status"] != "ok" or "median_ms" not in row:
            continue
        if row.get("raced_out_after") or not within_reach(row["median_ms"], min(measured)):
            continue  # cannot become a tuning build: not worth its analysis
        analyses[row["name"]] = analyze_model(ctx.under(row["flags"])) if row["flags"] else default
        builds[row["name"]] = list(row["flags"])
        tunable = analyses[row["name"]].tunable
        if not ctx.job.search.scripts_reach_known_issues:
            tunable = {k: v for k, v in tunable.items() if k != SCRIPTED}  # nothing will tune those
        row["tunable_share"] = sum(tunable.values())
        contenders.append(
            BuildCandidate(
                row["name"],
                tuple(row["flags"]),
                row["median_ms"],
                row.get("spread", 0.0),
                tunable,
                analyses[row["name"]].tunable_targets,
            )
        )
    plan = plan_tuning_builds(contenders, decision.chosen.name)
    log.info("model-level flags: fastest alone %s; %s", decision.chosen.name, plan.describe())
    return _ModelLevel(decision.rows, decision.chosen.name, builds, analyses, plan, pipeline_summary)


def demoted_twins(candidates: list[FlagCandidate], precision: PrecisionSpec) -> list[FlagCandidate]:
    """With `precision` opting in: each flag set again with its contractions' inputs demoted."""
    if not precision.demotes:
        return []
    suffix = f"+{precision.contractions}-{precision.operations}"
    note = f"contraction inputs ({precision.operations}) in {precision.contractions}, f32 accumulation"
    return [FlagCandidate(c.name + suffix, (*c.flags, *precision.flags()), note) for c in candidates]


def _shipped_precision(ctx: _Context, shipped: Contender) -> dict | None:
    if ctx.error_budget(shipped.flags) is None:
        return None
    precision = ctx.job.precision
    return {
        "contractions": precision.contractions,
        "operations": precision.operations,
        "max_error": precision.max_error,
        "error": shipped.confirmation.max_error,
    }


def _make_proposer(ctx: _Context) -> Proposer:
    if ctx.job.proposer.kind == "heuristic":
        return HeuristicProposer()
    from .proposers.llm import make_llm_proposer  # optional stage, imported only when configured

    return make_llm_proposer(ctx.job.proposer, ctx.job.report_dir, cache=ctx.cache, storage=ctx.storage)


def _history_hints(ctx: _Context, model: ModelContext):
    """Configs of the nearest finished studies (this storage's and imported records), mapped
    onto a target's space: the warm start of its study, or all of it with --from-history."""
    records = collect_records(ctx.job.storage) + imported_records(ctx.cache)
    fingerprint = model.fingerprint

    def hints(target, space):
        configs = []
        for neighbour in nearest(records, target.root, fingerprint, k=HISTORY_NEIGHBOURS):
            config = map_config(neighbour.record, target.root, space)
            if config is not None:
                configs.append(config)
        return configs

    return hints


def _search_build(
    ctx: _Context,
    name: str,
    flags: list[str],
    analysis: Analysis,
    proposer: Proposer,
    progress,
    several: bool,
    deadline: float | None,
) -> tuple[BuildRun, Evaluator]:
    """Stages dispatches -> proposers -> search for one tuning build."""
    model = ctx.under(flags)
    # Candidates under any flags are checked against IREE's default build.
    evaluator = Evaluator(model, ctx.cache, reference=ctx.reference)
    targets, rows = find_targets(
        analysis.dispatches,
        analysis.timings,
        time_share=ctx.job.budget.time_share,
        max_targets=ctx.job.budget.max_dispatches,
        scripts=ctx.job.search.scripts_reach_known_issues,
    )
    log.info("build %s: %d dispatches, %d tuning targets", name, len(rows), len(targets))
    fingerprint = json.dumps(model.fingerprint, sort_keys=True).encode()
    settings = SearchSettings(
        ctx.job.name,
        hashlib.sha256(fingerprint).hexdigest()[:8],
        ctx.job.budget.trials_per_dispatch,
        ctx.job.search.sampler,
        ctx.job.search.seed,
        deadline,
        hints=_history_hints(ctx, model) if ctx.job.search.warm_start or ctx.job.search.from_history else None,
        history_only=ctx.job.search.from_history,
        transform_dialect=ctx.job.search.transform_dialect,
        transform_dialect_trials=ctx.job.search.transform_dialect_trials,
    )
    prefix = f"{name}: " if several else ""
    cpu_features = iree.host_cpu_features()
    result = search_targets(
        targets,
        evaluator,
        lambda target, space, check: proposer.propose(ProposalRequest(target, space, cpu_features, check)),
        settings,
        ctx.storage,
        progress,
        lambda i, t: f"{prefix}[{i + 1}/{len(targets)}] {t.label}",
    )
    return BuildRun(name, flags, targets, rows, result), evaluator


def _confirm_builds(ctx: _Context, runs: list[tuple[BuildRun, Evaluator]], level: _ModelLevel) -> list[Contender]:
    """Stage export, part 1: every tuned build and the fastest flags alone, confirmed end to end."""
    rounds = ctx.job.budget.confirm_rounds
    contenders = []
    models = []  # each contender's build, for the head-to-head race
    all_winners = []
    for run, evaluator in runs:
        # Another worker (shared storage) may still be finishing trials of these studies; then
        # each target's best few race the default, so that the luckiest sample is not the pick.
        settled = [settle(o, ctx.storage, evaluator.model.stale_after_s) for o in run.search.outcomes]
        run.search.outcomes = [race(o, evaluator) for o in settled]
        winners = select_winners(run.search.outcomes, evaluator.usable)
        all_winners += winners
        run.confirmation = _confirmed(
            ctx,
            run.name,
            lambda evaluator=evaluator, winners=winners: confirm(
                evaluator.model,
                ctx.target_flags,
                winners,
                ctx.reference,
                ctx.cache,
                rounds=rounds,
                on_wrong=evaluator.mark_failed,
            ),
        )
        if run.confirmation is None:
            continue
        contenders.append(Contender(run.name, run.flags, run.confirmation, True))
        models.append(evaluator.model)
    if level.fastest not in {run.name for run, _ in runs} and level.builds.get(level.fastest):
        # The tuning builds' flags were chosen for what tuning can do under them: weigh them
        # (with their specs) against the fastest flags alone in the same way. Winners whose op
        # is in the fastest build too (attention under data tiling) go with it: a dispatch
        # the flags leave alone keeps its tuned config.
        carried = carry_winners(all_winners, level.analyses[level.fastest].all_targets)
        alone = _confirmed(
            ctx,
            level.fastest,
            lambda: confirm(
                ctx.under(level.builds[level.fastest]),
                ctx.target_flags,
                carried,
                ctx.reference,
                ctx.cache,
                rounds=rounds,
            ),
        )
        if alone is not None:
            contenders.append(Contender(level.fastest, level.builds[level.fastest], alone, bool(alone.kept)))
            models.append(ctx.under(level.builds[level.fastest]))
    if len(contenders) > 1:
        ctx.busy_check("before the head-to-head race")
        races = head_to_head(
            [(m, c.confirmation.spec_text if c.confirmation.kept else "") for m, c in zip(models, contenders)],
            ctx.cache,
            ctx.base.workdir / "head_to_head",
            rounds=rounds,
        )
        for contender, times in zip(contenders, races or []):
            contender.race_ms = times
            log.info("head to head: %s %.2f ms", contender.name, contender.race_median)
    return contenders


def _confirmed(ctx: _Context, name: str, run: Callable[[], Confirmation]) -> Confirmation | None:
    """A contender's confirmation; a failed one (a run that hung or crashed) is tried once
    more, then the contender is left out with the reason (summary.json, report)."""
    for attempt in (1, 2):
        try:
            return run()
        except iree.ToolError as exc:
            reason = (str(exc).splitlines() or [type(exc).__name__])[0]
            log.warning("confirming %s failed (attempt %d): %s", name, attempt, reason)
            ctx.confirm_failures.append(f"{name}, attempt {attempt}: {reason}")
    ctx.dropped_contenders[name] = reason
    return None


def _default_alone(ctx: _Context) -> Confirmation:
    """IREE's default timed against itself: what ships when no tuned build could be confirmed.
    If even that cannot be timed, the job stops with one line; its trials stay in the storage."""
    try:
        return confirm(ctx.base, ctx.target_flags, [], ctx.reference, ctx.cache, rounds=ctx.job.budget.confirm_rounds)
    except iree.ToolError as exc:
        failed = "; ".join(f"{name}: {why}" for name, why in ctx.dropped_contenders.items()) or "none confirmed"
        raise iree.ToolError(
            f"no build could be timed end to end ({failed}; the default: {last_line(str(exc))}); "
            "the search's trials are saved: run the same command to confirm and export them"
        ) from None


def _export_prepared_model(ctx: _Context, shipped_flags: list[str]) -> str | None:
    """With batch-1 convs named (NAMED_BATCH1_FLAG), what the spec matches exists only in the
    model's prepared second half: it ships as `model.prepared.mlirbc`, which stock iree-compile
    builds with `--compile-from=global-optimization`. None when the model had nothing to name."""
    if iree.NAMED_BATCH1_FLAG not in ctx.target_flags:
        return None
    path = ctx.job.report_dir / "model.prepared.mlirbc"
    named = iree.prepare_named_batch1(
        ctx.imported.path, path, ctx.target_flags + list(shipped_flags), ctx.job.budget.compile_timeout_s * 4
    )
    if not named:
        path.unlink(missing_ok=True)
        return None
    log.info("export: %s named in %s", named, path)
    return str(path.resolve())


def run_job(
    job: JobConfig, *, quiet: bool = False, max_minutes: float | None = None, search_only: bool = False
) -> JobResult:
    start = time.monotonic()
    compiles_at_start = iree.compiles_so_far()
    if job.search.tune_model_flags:
        user_pipelines(job.search.pipelines)  # a bad pipeline of the job's own fails before any work
    ctx = _prepare(job, max_minutes, start)
    runs: list[tuple[BuildRun, Evaluator]] = []
    with contextlib.ExitStack() as stack, progress_display(quiet) as progress:
        proposer = _make_proposer(ctx)
        stack.callback(proposer.close)
        level = _model_level(ctx, proposer)
        plan_builds = level.plan.builds if level.plan else ("default",)
        for i, name in enumerate(plan_builds):
            runs.append(
                _search_build(
                    ctx,
                    name,
                    level.builds[name],
                    level.analyses[name],
                    proposer,
                    progress,
                    several=len(plan_builds) > 1,
                    # Each tuning build an equal share of the time left: the first one's
                    # targets must not use up the second's (which then got 0 trials each).
                    deadline=share_of_time_left(ctx.deadline, len(plan_builds) - i),
                )
            )
    if search_only:
        ctx.cache.dispose()
        done = {
            f"{run.name}:{o.target.label}" if len(runs) > 1 else o.target.label: o.trials
            for run, _ in runs
            for o in run.search.outcomes
        }
        compiles = iree.compiles_so_far() - compiles_at_start
        return JobResult(
            job.report_dir,
            {
                "job": job.name,
                "search_only": True,
                "trials": done,
                "seconds": time.monotonic() - start,
                "compiles": compiles,
            },
            compiles,
        )

    ctx.busy_check("before the confirmation")
    contenders = _confirm_builds(ctx, runs, level)
    decision = decide_export(contenders, lambda: _default_alone(ctx))
    for contender in contenders:
        log.info("end to end: %s %.2fx", contender.name, contender.speedup)
    exported_flags = write_exports(job.report_dir, decision.shipped.confirmation, decision.shipped.flags)
    prepared_model = _export_prepared_model(ctx, decision.shipped.flags)
    llm_stats = proposer.write_records(job.report_dir)

    build_runs = [run for run, _ in runs]
    fallbacks = {label: why for run in build_runs for label, why in run.search.fallbacks.items()}
    compiles = iree.compiles_so_far() - compiles_at_start
    summary = JobSummary(
        job=job.name,
        target_cpu=job.target.cpu,
        model_format=job.model.format,
        model_source=str(job.model.path or job.model.factory),
        model_mlir=str(ctx.imported.path),
        entry=ctx.imported.entry,
        inputs=list(job.model.inputs),
        input_files=[str(p) for p in ctx.base.inputs],
        default_flags=[f for f in ctx.target_flags if f != iree.NAMED_BATCH1_FLAG],
        tuned_flags=exported_flags,
        prepared_model=prepared_model,
        yardstick=yardstick(),
        precision=_shipped_precision(ctx, decision.shipped),
        shipped=decision.shipped.name,
        flag_candidates=level.flag_rows,
        tuning_plan=dataclasses.asdict(level.plan) if level.plan else None,
        pipeline_search=level.pipeline_search,
        dispatches=dispatch_rows(
            build_runs,
            decision.shipped.name,
            decision.note,
            carried={}
            if decision.shipped.name in {r.name for r in build_runs}
            else decision.shipped.confirmation.configs,
        ),
        untuned_dispatches=untuned_rows(build_runs, decision.shipped.name),
        end_to_end=decision.shipped.confirmation.to_json() | {"spec_text": None},
        export=decision.to_json()
        | {"confirm_failures": ctx.confirm_failures, "dropped_contenders": ctx.dropped_contenders},
        proposer_fallbacks=fallbacks,
        busy_warnings=ctx.busy_warnings,
        storage=redact(job.storage),
        seconds=time.monotonic() - start,
        compiles=compiles,
        trial_compiles=sum(o.compiles for run in build_runs for o in run.search.outcomes),
        search_mode="from_history" if job.search.from_history else "search",
        trial_build=",".join(sorted({ev.model.trial_build for _, ev in runs})) or job.search.trial_build,
        scheduling=job.target.scheduling,
        llm=llm_stats,
        **machine_fields(),
    ).to_json()
    write_report(job.report_dir, summary)
    ctx.cache.dispose()
    return JobResult(job.report_dir, summary, compiles)
