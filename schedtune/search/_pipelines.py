"""Search over model-level pipelines: which preprocessing passes, in which order, with which
options, under which global flags. Each candidate is a whole-model build, checked against
the default build's outputs and timed interleaved with it.

Encoding (one Optuna study per model and build key): a categorical per flag group, `max_length`
slots each holding a pass name or "end" (the sequence stops at the first "end"; a pass
repeated is dropped), and a categorical per option of a pass that is in the sequence. TPE
handles conditional categoricals, and two encodings of one pipeline share one cache entry,
so a repeat costs nothing. The proposers' pipelines (today's fixed sets, the LLM's) are
enqueued first; after them every other pipeline is a local move (a pass added, removed or
swapped with its neighbour, an option or flag group changed) from one of the fastest so far,
and TPE samples the rest: with a budget of tens of whole-model builds, TPE alone spends most
of it on random startup points in a space of thousands.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import random
import statistics
import subprocess
import time

import optuna
from optuna.trial import TrialState

from .. import iree
from ..builds import ModelContext
from ..pipelines import NO_OPTION, OFF, PassStep, Pipeline, PipelineSpace, pipeline_error
from ..store import Cache, TrialStatus, attrs, cache_key, spends_budget, worker_id
from ._study import join_study, recover_lost_trials

log = logging.getLogger("schedtune")

END = "end"
PIPELINE = "pipeline"  # trial attribute: Pipeline.to_json()
SOURCE = "source"  # trial attribute: who proposed it (heuristic, llm, user, search)
RATIO = "ratio"  # trial attribute: candidate time / default time, interleaved
# Free trials (outside the space, duplicates) in a row after which the search stops: the
# sampler keeps drawing what is already known.
MAX_FREE_IN_A_ROW = 40


@dataclasses.dataclass(frozen=True)
class PipelineResult:
    status: str  # a TrialStatus value
    ratio: float | None = None  # median candidate / median default, interleaved rounds
    median_ms: float | None = None
    default_ms: float | None = None
    error: str = ""
    stopped_early: bool = False  # after two rounds: far slower than the default
    cached: bool = False


# A pipeline build may take COMPILE_FACTOR times the default build's compile time, and at
# least COMPILE_FLOOR_S seconds (small models compile in a second or two).
COMPILE_FACTOR = 10.0
COMPILE_FLOOR_S = 30.0


class PipelineEvaluator:
    """Builds, checks and times pipelines against the default build of `model` (target flags only)."""

    def __init__(
        self,
        model: ModelContext,
        space: PipelineSpace,
        reference: list,
        cache: Cache,
        *,
        rounds: int = 5,
        give_up_ratio: float = 1.3,
        compile_floor_s: float = COMPILE_FLOOR_S,
    ) -> None:
        self.model = model
        self.space = space
        self.reference = reference
        self.cache = cache
        self.rounds = rounds
        self.give_up_ratio = give_up_ratio
        self.work = model.workdir / "pipelines"
        self.compile_floor_s = compile_floor_s
        self._default: tuple[object, int] | None = None
        self._default_compile_s = 0.0

    def key(self, pipeline: Pipeline) -> str:
        return cache_key(
            kind="pipeline",
            method=1,
            model=self.model.build_key(),
            flags=self.space.flags(pipeline),
            rounds=self.rounds,
            give_up=self.give_up_ratio,
        )

    def _default_build(self):
        if self._default is None:
            built = self.model.compile(self.work / "default", name="default")
            if not built.ok:
                raise iree.ToolError(f"the model does not compile with IREE's defaults: {built.error}")
            iterations = self.model.round_iterations(built.vmfb)
            self._default = (built.vmfb, iterations)
            self._default_compile_s = built.seconds
        return self._default

    def compile_timeout_s(self) -> float:
        """A pipeline build's time limit: a multiple of the default build's compile time (with
        a floor), never above the job's. Some pass combinations make iree-compile run for
        minutes (or hang) on a model it builds in seconds; each such build is tried twice,
        and at the job's full limit they cost a conv job most of its pipeline stage."""
        scaled = max(self.compile_floor_s, COMPILE_FACTOR * self._default_compile_s)
        return min(self.model.compile_timeout_s, scaled)

    def known(self, pipeline: Pipeline) -> PipelineResult | None:
        hit = self.cache.get(self.key(pipeline))
        return PipelineResult(**{**hit, "cached": True}) if hit is not None else None

    def evaluate(self, pipeline: Pipeline, *, strict: bool = True) -> PipelineResult:
        error = pipeline_error(self.space, pipeline, strict=strict)
        if error:
            return PipelineResult(TrialStatus.CONSTRAINT.value, error=error)
        known = self.known(pipeline)
        if known is not None:
            return known
        result = self._measure(pipeline)
        payload = dataclasses.asdict(result)
        payload.pop("cached")
        self.cache.put(self.key(pipeline), "pipeline", pipeline.describe(), payload)
        return result

    def _measure(self, pipeline: Pipeline) -> PipelineResult:
        default_vmfb, iterations = self._default_build()
        if pipeline == Pipeline():
            # The reference itself: timing it against itself would only measure the noise.
            return PipelineResult(TrialStatus.OK.value, ratio=1.0)
        name = f"p{self.key(pipeline)[:12]}"
        work = self.work / name
        limited = dataclasses.replace(self.model, compile_timeout_s=self.compile_timeout_s())
        built = limited.compile(work, flags=self.model.flags + self.space.flags(pipeline), name=name)
        if not built.ok:
            first = built.error.strip().splitlines()[0] if built.error.strip() else ""
            return PipelineResult(TrialStatus.of_compile(built.status).value, error=first[:300])
        if "PassPipeline Parser" in built.log or "does not refer to a registered pass" in built.log:
            # iree-compile ignored the pipeline and built the default: never report that as the pipeline.
            line = next((ln for ln in built.log.splitlines() if "error" in ln), built.log[:200])
            return PipelineResult(TrialStatus.COMPILE_ERROR.value, error=f"iree-compile ignored the pipeline: {line}")
        check = self.model.check(built.vmfb, work / "run", self.reference)
        if not check.ok:
            return PipelineResult(check.status.value, error=check.error[:300])
        times: dict[str, list[float]] = {"default": [], "candidate": []}
        try:
            for round_ in range(self.rounds):
                order = [("default", default_vmfb), ("candidate", built.vmfb)]
                for which, vmfb in order if round_ % 2 == 0 else order[::-1]:
                    times[which].append(self.model.benchmark(vmfb, iterations))
                ratio = statistics.median(times["candidate"]) / statistics.median(times["default"])
                if round_ >= 1 and ratio > self.give_up_ratio:
                    break
        except (iree.ToolError, subprocess.TimeoutExpired) as exc:
            return PipelineResult(TrialStatus.RUN_ERROR.value, error=str(exc).splitlines()[0][:300])
        return PipelineResult(
            TrialStatus.OK.value,
            ratio=ratio,
            median_ms=statistics.median(times["candidate"]),
            default_ms=statistics.median(times["default"]),
            stopped_early=len(times["candidate"]) < self.rounds,
        )


def pipeline_params(pipeline: Pipeline, space: PipelineSpace) -> dict:
    """The study's parameters of a pipeline of the space (for enqueueing it)."""
    params: dict = {f"flag:{g.name}": dict(pipeline.choices).get(g.name, OFF) for g in space.groups}
    for i in range(space.max_length):
        params[f"slot{i}"] = pipeline.passes[i].name if i < len(pipeline.passes) else END
    for step in space.completed(pipeline).passes:
        spec = space.pass_spec(step.name)
        given = dict(step.options)
        for option, _values in spec.options if spec else ():
            params[f"opt:{step.name}:{option}"] = given.get(option, NO_OPTION)
    return params


def sample_pipeline(trial: optuna.Trial, space: PipelineSpace) -> Pipeline:
    choices = []
    for group in space.groups:
        choice = trial.suggest_categorical(f"flag:{group.name}", [c for c, _ in group.choices])
        if choice != OFF:
            choices.append((group.name, choice))
    names = [END] + [p.name for p in space.passes]
    steps: list[PassStep] = []
    for i in range(space.max_length):
        name = trial.suggest_categorical(f"slot{i}", names)
        if name == END:
            break
        if any(s.name == name for s in steps):
            continue  # a pass repeated: the same pipeline as without the repeat
        spec = space.pass_spec(name)
        options = []
        for option, values in spec.options:
            value = trial.suggest_categorical(f"opt:{name}:{option}", list(values))
            if value != NO_OPTION:
                options.append((option, value))
        steps.append(PassStep(name, tuple(options)))
    return Pipeline(tuple(steps), tuple(choices))


def neighbours(pipeline: Pipeline, space: PipelineSpace) -> list[Pipeline]:
    """Pipelines one move away: a pass added (anywhere), removed, or
    swapped with its successor; one option or flag group changed."""
    out: list[Pipeline] = []
    passes = list(pipeline.passes)
    present = {p.name for p in passes}
    if len(passes) < space.max_length:
        for spec in space.passes:
            if spec.name not in present:
                added = space.completed(Pipeline((PassStep(spec.name),))).passes[0]
                for at in range(len(passes) + 1):
                    out.append(dataclasses.replace(pipeline, passes=tuple(passes[:at] + [added] + passes[at:])))
    for at in range(len(passes)):
        out.append(dataclasses.replace(pipeline, passes=tuple(passes[:at] + passes[at + 1 :])))
        if at + 1 < len(passes):
            swapped = passes[:at] + [passes[at + 1], passes[at]] + passes[at + 2 :]
            out.append(dataclasses.replace(pipeline, passes=tuple(swapped)))
        spec = space.pass_spec(passes[at].name)
        for option, values in spec.options if spec else ():
            for value in values:
                options = tuple((k, v) for k, v in passes[at].options if k != option)
                options += ((option, value),) if value != NO_OPTION else ()
                step = PassStep(passes[at].name, options)
                if step != passes[at]:
                    out.append(dataclasses.replace(pipeline, passes=tuple(passes[:at] + [step] + passes[at + 1 :])))
    chosen = dict(pipeline.choices)
    for group in space.groups:
        for choice, _flags in group.choices:
            if choice != chosen.get(group.name, OFF):
                new = {**chosen, group.name: choice}
                out.append(dataclasses.replace(pipeline, choices=tuple((g, c) for g, c in new.items() if c != OFF)))
    return [p for p in out if not space.problems(p)]


@dataclasses.dataclass(frozen=True)
class PipelineTrial:
    pipeline: Pipeline
    source: str
    result: PipelineResult


@dataclasses.dataclass
class PipelineSearch:
    study_name: str
    tried: list[PipelineTrial]  # every evaluated pipeline, in trial order (no duplicates)

    def ranked(self) -> list[PipelineTrial]:
        """Pipelines that gave correct results, fastest first."""
        ok = [t for t in self.tried if t.result.status == TrialStatus.OK.value and t.result.ratio is not None]
        return sorted(ok, key=lambda t: t.result.ratio)

    def best_searched(self, count: int) -> list[PipelineTrial]:
        """The fastest pipelines beyond the fixed sets and the job's own, if faster than the default."""
        found = [t for t in self.ranked() if t.source.startswith("search") or t.source == "llm"]
        found = [t for t in found if t.result.ratio < 1.0]
        return found[:count]

    def to_json(self, space: PipelineSpace) -> dict:
        return {
            "study": self.study_name,
            "measured": sum(1 for t in self.tried if spends_budget(t.result.status)),
            "tried": [
                {
                    "pipeline": t.pipeline.describe(),
                    "flags": space.flags(t.pipeline),
                    "source": t.source,
                    "status": t.result.status,
                    "ratio": t.result.ratio,
                    "stopped_early": t.result.stopped_early,
                    "error": t.result.error,
                }
                for t in self.tried
            ],
        }


def measured_pipelines(storage, study_name: str) -> tuple[tuple[str, str, float | None], ...]:
    """(pipeline, status, ratio) of what an earlier run of this study measured, best first."""
    try:
        study = optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        return ()
    tried = sorted(_tried(study), key=lambda t: t.result.ratio if t.result.ratio is not None else float("inf"))
    return tuple((t.pipeline.describe(), t.result.status, t.result.ratio) for t in tried)


def _tried(study: optuna.Study, space: PipelineSpace | None = None) -> list[PipelineTrial]:
    """Every pipeline the study measured, once each. With `space`, each is checked as a new
    one would be: a pipeline the storage holds but the space does not (anyone who can write a
    shared database can plant pass text) comes back `invalid`, never ranked, never compiled."""
    out, seen = [], set()
    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.FAIL)):
        status = trial.user_attrs.get(attrs.STATUS)
        data = trial.user_attrs.get(PIPELINE)
        if data is None or status in (TrialStatus.DUPLICATE.value, TrialStatus.LOST.value, None):
            continue
        source = str(trial.user_attrs.get(SOURCE, "search"))
        try:
            pipeline = Pipeline.from_json(json.loads(data))
        except (ValueError, TypeError, KeyError) as exc:
            log.warning("pipeline trial %d of %s: unreadable, ignored (%s)", trial.number, study.study_name, exc)
            continue
        if pipeline in seen:
            continue
        seen.add(pipeline)
        problems = space.problems(pipeline) if space is not None else []
        if problems:
            log.warning(
                "pipeline trial %d of %s is not in the space, refused: %s", trial.number, study.study_name, problems[0]
            )
            result = PipelineResult(
                TrialStatus.INVALID.value, error=f"read back from the storage: {'; '.join(problems)}"
            )
            out.append(PipelineTrial(pipeline, source, result))
            continue
        result = PipelineResult(
            status,
            ratio=trial.user_attrs.get(RATIO),
            median_ms=trial.user_attrs.get("median_ms"),
            default_ms=trial.user_attrs.get("default_ms"),
            error=trial.user_attrs.get(attrs.ERROR, ""),
            stopped_early=bool(trial.user_attrs.get("stopped_early", False)),
        )
        out.append(PipelineTrial(pipeline, source, result))
    return out


def search_pipelines(
    evaluator: PipelineEvaluator,
    proposals: list[tuple[Pipeline, str]],
    storage: optuna.storages.BaseStorage,
    *,
    study_name: str,
    trials: int,
    patience: int,
    seed: int,
    min_gain: float,
    deadline: float | None = None,
) -> PipelineSearch:
    """Evaluate the proposals, then let TPE search until `trials` pipelines are measured, no
    pipeline beat the best by `min_gain` in the last `patience`, or the deadline passes.

    Persisted trial by trial: a killed run resumes where it stopped (its in-flight trial is
    marked lost), and every pipeline measured before is a cache hit."""
    space = evaluator.space
    study = optuna.create_study(
        study_name=study_name,
        storage=storage,
        direction="minimize",
        sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=4),
        load_if_exists=True,
    )
    recover_lost_trials(study, evaluator.model.stale_after_s)
    join_study(study)
    sources = {}
    for pipeline, source in proposals:
        sources[pipeline] = source
        if space.problems(pipeline):
            continue  # evaluated once, outside the study (a user's pipeline may use other passes)
        study.enqueue_trial(pipeline_params(pipeline, space), user_attrs={SOURCE: source}, skip_if_exists=True)

    def counted() -> list[optuna.trial.FrozenTrial]:
        return [
            t
            for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.FAIL))
            if spends_budget(t.user_attrs.get(attrs.STATUS))
        ]

    def stale() -> bool:
        done = counted()
        values = [t.value for t in done if t.value is not None]
        if len(done) < len(proposals) or not values:
            return False
        # Improvements smaller than min_gain over the best so far do not reset the patience.
        best = min(values)
        first_near = next(i for i, t in enumerate(done) if t.value is not None and t.value <= best * (1 + min_gain))
        # The proposals are baselines: patience counts searched pipelines only.
        return len(done) - 1 - max(first_near, len(proposals) - 1) >= patience

    free_in_a_row = 0
    budget = max(trials, sum(1 for p, _ in proposals if not space.problems(p)))
    rng = random.Random(seed)

    def local_turn(done: int) -> bool:
        # Past the proposals, every other pipeline is a local move from the best so far:
        # passes compose, so the neighbourhood of a good pipeline is where a small budget pays.
        waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
        return not waiting and done >= len(proposals) and (done - len(proposals)) % 2 == 0

    while len(counted()) < budget and free_in_a_row < MAX_FREE_IN_A_ROW:
        if deadline is not None and time.monotonic() > deadline:
            log.info("pipeline search: deadline reached")
            break
        if study.get_trials(deepcopy=False, states=(TrialState.WAITING,)) == [] and stale():
            log.info("pipeline search: no gain of %.0f%% in the last %d pipelines: stopped", 100 * min_gain, patience)
            break
        if local_turn(len(counted())):
            _enqueue_neighbour(study, space, rng)
        trial = study.ask()
        trial.set_user_attr(attrs.WORKER, worker_id())
        pipeline = sample_pipeline(trial, space)
        trial.set_user_attr(PIPELINE, json.dumps(pipeline.to_json(), sort_keys=True))
        if SOURCE not in trial.user_attrs:
            trial.set_user_attr(SOURCE, sources.get(pipeline, "search"))
        if pipeline in {t.pipeline for t in _tried(study)}:
            # Another encoding of a measured pipeline: its known ratio informs the sampler, no budget spent.
            trial.set_user_attr(attrs.STATUS, TrialStatus.DUPLICATE.value)
            known = evaluator.known(pipeline)
            if known is not None and known.ratio is not None:
                study.tell(trial, known.ratio)
            else:
                study.tell(trial, state=TrialState.FAIL)
            free_in_a_row += 1
            continue
        result = evaluator.evaluate(pipeline)
        _record(study, trial, result)
        free_in_a_row = 0 if spends_budget(result.status) else free_in_a_row + 1
        log.info(
            "pipeline %s: %s%s",
            pipeline.describe(),
            result.status,
            f" {result.ratio:.3f}x of the default time" if result.ratio is not None else f" ({result.error[:120]})",
        )
    tried = _tried(study, space)
    # Proposals outside the space (a user's passes) are measured directly, once.
    for pipeline, source in proposals:
        if space.problems(pipeline) and pipeline not in {t.pipeline for t in tried}:
            tried.append(PipelineTrial(pipeline, source, evaluator.evaluate(pipeline, strict=False)))
    return PipelineSearch(study_name, tried)


def _enqueue_neighbour(study: optuna.Study, space: PipelineSpace, rng: random.Random) -> None:
    """Enqueue an untried neighbour of the fastest pipeline measured so far (none if all are tried)."""
    tried = _tried(study, space)
    known = {t.pipeline for t in tried}
    for best in PipelineSearch(study.study_name, tried).ranked()[:3]:
        fresh = [p for p in neighbours(best.pipeline, space) if p not in known]
        if fresh:
            study.enqueue_trial(pipeline_params(rng.choice(fresh), space), user_attrs={SOURCE: "search:local"})
            return


def _record(study: optuna.Study, trial: optuna.Trial, result: PipelineResult) -> None:
    trial.set_user_attr(attrs.STATUS, result.status)
    if result.error:
        trial.set_user_attr(attrs.ERROR, result.error[:500])
    if result.cached:
        trial.set_user_attr(attrs.CACHED, True)
    if result.ratio is None:
        study.tell(trial, state=TrialState.FAIL)
        return
    trial.set_user_attr(RATIO, result.ratio)
    trial.set_user_attr("median_ms", result.median_ms)
    trial.set_user_attr("default_ms", result.default_ms)
    trial.set_user_attr("stopped_early", result.stopped_early)
    study.tell(trial, result.ratio)
