"""Optuna search over one target's skeletons: skeleton choice categorical, its knobs conditional.

One study per (job, target, compiler version), in the job's storage. Trials are told as they
finish, so a killed job loses at most the trials in flight; on restart those are marked
`lost` and do not count against the budget. Several processes may work one study (shared
PostgreSQL storage): the budget is counted over the shared study and configs are claimed in
the shared cache, so none is compiled twice.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import logging
import random
import time
from collections.abc import Callable

import optuna
from optuna.trial import TrialState

from ..dispatches import TuningTarget
from ..evaluation import Evaluator, TrialResult
from ..spaces import KnobSpace, Skeleton, loop_bounds, loop_names
from ..spec import CompilationConfig
from ..store import TrialStatus, attrs, cache_key, get_storage, spends_budget, worker_dead, worker_id

log = logging.getLogger("schedtune")

UNTUNABLE_AFTER = 3
UNTAGGED_GRACE_S = 30.0
WARM_START_TOP = 3
REPEATS_BEFORE_UNSEEN = 3  # TPE re-proposals of known configs before each further one is answered by an unseen point
SETTLE_QUIET_S = 2.0
_STARTED = datetime.datetime.now()


@dataclasses.dataclass
class TargetOutcome:
    target: TuningTarget
    study_name: str
    trials: int
    statuses: dict[str, int]
    best_config: CompilationConfig | None
    best_ns: float | None
    baseline_ns: float | None  # IREE's default config, measured through the spec like every trial
    skeletons: tuple[Skeleton, ...]
    compiles: int = 0
    untunable: str = ""  # why no config can take effect on this target (e.g. batch-1 conv)
    ranked: tuple[tuple[CompilationConfig, float], ...] = ()  # every timed config, fastest first
    # Every finished trial in trial-number order: its time (None if it failed or was free) and status.
    timeline: tuple[tuple[float | None, str], ...] = ()


def trial_params(skeleton: str, values: dict) -> dict:
    """Optuna parameters of `values` drawn from the skeleton named `skeleton` (for enqueue_trial)."""
    return {"skeleton": skeleton, **{f"{skeleton}.{k}": v for k, v in values.items()}}


def make_sampler(kind: str, seed: int) -> optuna.samplers.BaseSampler:
    if kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    # Few startup trials: the default config is enqueued first, the budget is small.
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=8, multivariate=True, group=True)


def _counted(trial: optuna.trial.FrozenTrial) -> bool:
    return trial.state in (TrialState.COMPLETE, TrialState.FAIL) and spends_budget(trial.user_attrs.get(attrs.STATUS))


def _drawn(study: optuna.Study, skeleton: str) -> int:
    """Trials of `skeleton` that spent budget, run, or wait in the queue."""
    count = 0
    for t in study.get_trials(deepcopy=False):
        if t.state == TrialState.WAITING:
            count += t.system_attrs.get("fixed_params", {}).get("skeleton") == skeleton
        elif t.params.get("skeleton") == skeleton and (_counted(t) or t.state == TrialState.RUNNING):
            count += 1
    return count


def join_study(study: optuna.Study) -> None:
    """Register this process as a worker of `study`; call it before this process's first ask.

    A trial is tagged with its worker right after `ask()`; one left untagged belongs to a
    process killed in between, and the register tells whose it could have been.
    """
    study.set_user_attr(f"{attrs.WORKER_PREFIX}{worker_id()}", time.time())


def _untagged_owners_gone(study: optuna.Study) -> bool:
    """Every other registered worker of `study` ran on this host and is dead: an untagged
    trial cannot belong to a live process."""
    me = worker_id()
    others = [k.removeprefix(attrs.WORKER_PREFIX) for k in study.user_attrs if k.startswith(attrs.WORKER_PREFIX)]
    return all(worker_dead(w) for w in others if w != me)


def recover_lost_trials(study: optuna.Study, stale_after_s: float) -> int:
    """Mark trials left RUNNING by a dead process as failed (`lost`); returns how many.

    A trial of this host whose process is gone is lost at once; one of another host only
    after `stale_after_s` (it may still be running there). An untagged trial (its process was
    killed between `ask()` and the tag) is lost at once when every registered worker that
    could own it is dead on this host, otherwise after a short grace.
    """
    now = datetime.datetime.now()
    lost = 0
    storage = study._storage  # noqa: SLF001 - Optuna exposes no public way to fail another process's trial
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    owners_gone = any(t.user_attrs.get(attrs.WORKER) is None for t in running) and _untagged_owners_gone(study)
    for trial in running:
        worker = trial.user_attrs.get(attrs.WORKER)
        dead_here = worker_dead(str(worker)) if worker is not None else owners_gone
        age = (now - (trial.datetime_start or now)).total_seconds()
        too_old = age > (UNTAGGED_GRACE_S if worker is None else stale_after_s)
        if dead_here or too_old:
            try:
                storage.set_trial_user_attr(trial._trial_id, attrs.STATUS, TrialStatus.LOST.value)  # noqa: SLF001
                storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)  # noqa: SLF001
                lost += 1
            except (RuntimeError, optuna.exceptions.UpdateFinishedTrialError):
                pass  # finished meanwhile by its owner
    if lost:
        log.info("%s: %d trial(s) lost by a killed process marked failed", study.study_name, lost)
    return lost


def _previous_studies(storage, prefix: str, current: str) -> list[optuna.Study]:
    names = [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]
    return [optuna.load_study(study_name=n, storage=storage) for n in names if n.startswith(prefix) and n != current]


ProgressFn = Callable[[int, int, float | None], None]


def tune_target(
    target: TuningTarget,
    space: KnobSpace,
    skeletons: tuple[Skeleton, ...],
    default_values: dict[str, dict[str, int]],
    evaluator: Evaluator,
    *,
    storage: optuna.storages.BaseStorage | str,
    study_name: str,
    trials: int,
    sampler: str,
    seed: int,
    deadline: float | None = None,
    progress: ProgressFn | None = None,
    history_prefix: str | None = None,
    warm_start: list[dict] = (),
    quota: dict[str, int] | None = None,
) -> TargetOutcome:
    """Run `target`'s study until it holds `trials` counted trials (or the deadline passes).

    `history_prefix` names earlier studies of the same target (e.g. under an older compiler):
    a new study reuses their skeletons and re-verifies their best configs first. `quota`:
    skeleton name -> trials drawn from it at least, whatever the sampler prefers (its other
    knobs are still sampled): a skeleton the sampler would starve (the transform-dialect tier
    next to IREE's pipelines) gets a share of the budget.
    """
    if isinstance(storage, str):
        storage = get_storage(storage)
    study = _open_study(storage, study_name, sampler, seed, evaluator.model.stale_after_s)
    stored = study.user_attrs.get(attrs.SKELETONS)
    carried = _carried_studies(storage, history_prefix, study_name)
    if stored:
        # Resumed: the skeletons it started with (Optuna's distributions must not change).
        skeletons = tuple(Skeleton.from_json(s) for s in json.loads(stored))
    else:
        skeletons = _fix_skeletons(study, skeletons, carried, evaluator)
        _start_study(study, target, skeletons, evaluator, default_values, warm_start, carried)
    compiles_before = evaluator.compiles
    earlier_failures = growing_failures(t for old in carried for t in old.get_trials(deepcopy=False))
    _TrialLoop(
        study, target, space, skeletons, evaluator, trials, quota or {}, random.Random(seed), earlier_failures
    ).run(deadline, progress)
    return summarize(study, target, skeletons, study_name, compiles=evaluator.compiles - compiles_before)


def _open_study(storage, study_name: str, sampler: str, seed: int, stale_after_s: float) -> optuna.Study:
    """The target's study, created or resumed; trials a killed process left running are
    marked lost and this process joins as a worker."""
    study = optuna.create_study(
        study_name=study_name,
        storage=storage,
        sampler=make_sampler(sampler, seed),
        direction="minimize",
        load_if_exists=True,
    )
    recover_lost_trials(study, stale_after_s)
    join_study(study)
    return study


def _fix_skeletons(
    study: optuna.Study, proposed: tuple[Skeleton, ...], carried: list[optuna.Study], evaluator: Evaluator
) -> tuple[Skeleton, ...]:
    """A new study's skeletons, stored with it: an older study's of the same target, then
    today's proposals it lacks (e.g. the transform-dialect tier, switched on since)."""
    skeletons = proposed
    if carried:
        old = tuple(Skeleton.from_json(s) for s in json.loads(carried[-1].user_attrs[attrs.SKELETONS]))
        names = {s.name for s in old}
        skeletons = old + tuple(s for s in proposed if s.name not in names)
    # Workers starting together may each bring skeletons (an LLM's differ from run to run);
    # the first to store them fixes the study's search space for all.
    fixed = evaluator.cache.setdefault(
        cache_key(kind="study_skeletons", study=study.study_name),
        "study",
        study.study_name,
        {"skeletons": [s.to_json() for s in skeletons]},
    )
    skeletons = tuple(Skeleton.from_json(s) for s in fixed["skeletons"])
    study.set_user_attr(attrs.SKELETONS, json.dumps([s.to_json() for s in skeletons]))
    return skeletons


def _carried_studies(storage, history_prefix: str | None, current: str) -> list[optuna.Study]:
    """Earlier studies of the same target that stored their skeletons."""
    previous = _previous_studies(storage, history_prefix, current) if history_prefix else []
    return [p for p in previous if p.user_attrs.get(attrs.SKELETONS)]


def _start_study(
    study: optuna.Study,
    target: TuningTarget,
    skeletons: tuple[Skeleton, ...],
    evaluator: Evaluator,
    default_values: dict[str, dict[str, int]],
    warm_start: list[dict],
    carried: list[optuna.Study],
) -> None:
    """A new study: describe the target for history and retrieval, then queue its first
    trials: IREE's default config, the history's configs, an older study's winners."""
    study.set_user_attr(attrs.TARGET, target.label)
    study.set_user_attr(attrs.LOOPS, json.dumps(loop_bounds(target.root)))
    study.set_user_attr(attrs.DEFAULT_NS, target.default_ns)
    study.set_user_attr(attrs.FAMILY, target.root.family)
    study.set_user_attr(attrs.OP_NAME, target.root.op_name)
    study.set_user_attr(attrs.ELEMENT_TYPES, json.dumps(list(target.root.element_types)))
    study.set_user_attr(attrs.LOOP_ORDER, json.dumps(list(loop_bounds(target.root).items())))
    study.set_user_attr(attrs.FINGERPRINT, json.dumps(evaluator.model.fingerprint))
    for name, values in default_values.items():
        if any(s.name == name for s in skeletons):
            study.enqueue_trial(trial_params(name, values), skip_if_exists=True)
            break
    for params in warm_start:
        study.enqueue_trial(params, skip_if_exists=True)
    for old in carried:
        done_old = [t for t in old.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.value is not None]
        for t in sorted(done_old, key=lambda t: t.value)[:WARM_START_TOP]:
            study.enqueue_trial(t.params, skip_if_exists=True)
        if done_old:
            log.info(
                "%s: re-verifying %d winner(s) of %s", target.label, min(len(done_old), WARM_START_TOP), old.study_name
            )


# Compile errors that only grow with the tiles: IREE's stack allocation limit (32 KB per
# function) and its large-vector check. A config whose every tile is at least that of a config
# that failed so would fail the same way: it is not compiled (on a 512-channel conv most
# trials once ended in the stack limit).
GROWING_FAILURES = ("exceeded stack allocation limit", "large vector sizes")


def growing_failures(trials) -> list[CompilationConfig]:
    """The configs of `trials` (Optuna trials) that failed to compile with a growing failure."""
    out = []
    for trial in trials:
        error = trial.user_attrs.get(attrs.ERROR) or ""
        if trial.user_attrs.get(attrs.STATUS) != TrialStatus.COMPILE_ERROR.value:
            continue
        if not any(marker in error for marker in GROWING_FAILURES):
            continue
        try:
            out.append(CompilationConfig.from_json(json.loads(trial.user_attrs[attrs.CONFIG])))
        except (KeyError, TypeError, ValueError):
            continue  # a record from an older format: nothing to learn from it
    return out


def at_least(config: CompilationConfig, failed: CompilationConfig) -> bool:
    """Whether `config` has the pipeline and peeling of `failed` and every tile at least as
    large (a 0, untiled or not tiled at that level, must match: it compares with no size)."""
    if (config.pipeline, config.loop_peeling) != (failed.pipeline, failed.loop_peeling):
        return False
    mine, theirs = config.tile_map, failed.tile_map
    if mine.keys() != theirs.keys():
        return False
    for level, sizes in theirs.items():
        if len(mine[level]) != len(sizes):
            return False
        for small, large in zip(sizes, mine[level]):
            if small != large and (small == 0 or large == 0 or large < small):
                return False
    return True


class _TrialLoop:
    """Ask, check, evaluate and tell in batches until the study holds its budget of counted
    trials. The budget is shared with every other worker of the study (see `over_budget`)."""

    def __init__(
        self,
        study,
        target,
        space,
        skeletons,
        evaluator,
        trials: int,
        quota: dict[str, int],
        rng,
        earlier_failures: list[CompilationConfig] = (),
    ) -> None:
        self.study, self.target, self.space, self.evaluator = study, target, space, evaluator
        self.earlier_failures = list(earlier_failures)  # growing failures of earlier studies of this target
        self.skeletons = skeletons
        self.by_name = {s.name: s for s in skeletons}
        self.loops = loop_names(target.root)
        self.trials, self.quota, self.rng = trials, quota, rng
        self.attempts = 0
        self.repeats = 0

    def slots_taken(self, below: int | None = None) -> int:
        """Budget slots held by counted or running trials (numbered below `below`, if given);
        between batches, every running trial is another worker's."""
        return sum(
            1
            for t in self.study.get_trials(deepcopy=False)
            if (below is None or t.number < below) and (_counted(t) or t.state == TrialState.RUNNING)
        )

    def over_budget(self, number: int) -> bool:
        """Would trial `number` exceed the budget? Ranked by trial number, which the storage
        assigns atomically, so two workers racing for the last slot cannot both take it: each
        sees the other's trial as running, and the later one gives way. A running trial may
        still turn out free (a duplicate); then the budget is refilled by whoever goes on."""
        return self.slots_taken(below=number) >= self.trials

    def best(self) -> float | None:
        vals = [t.value for t in self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
        return min(vals) if vals else None

    def run(self, deadline: float | None, progress: ProgressFn | None) -> None:
        finished = self.slots_taken()
        untunable = _untunable(self.study)
        while finished < self.trials and self.attempts < 6 * self.trials and self.skeletons and not untunable:
            if deadline is not None and time.monotonic() > deadline:
                log.info("%s: time budget reached after %d trials", self.target.label, finished)
                break
            batch = self.next_batch(min(max(1, self.evaluator.compile_workers), self.trials - finished))
            if batch:
                self.evaluate(batch)
            finished = self.slots_taken()
            if not batch:
                continue
            untunable = _untunable(self.study)
            if untunable:
                log.warning("%s: %s; not tuned", self.target.label, untunable)
            if progress:
                progress(finished, self.trials, self.best())

    def next_batch(self, size: int) -> list[tuple[optuna.Trial, CompilationConfig]]:
        """Up to `size` new legal configs, each in its asked trial; constraint breakers (the
        space's, and configs at least as large as one that hit a growing compile failure),
        repeats and trials over the budget are told at once and charge nothing."""
        seen = _counted_configs(self.study)
        failed = self.earlier_failures + growing_failures(self.study.get_trials(deepcopy=False))
        batch: list[tuple[optuna.Trial, CompilationConfig]] = []
        while len(batch) < size and self.attempts < 6 * self.trials:
            self.attempts += 1
            self.enqueue_quota()
            trial = self.study.ask()
            with _taken_over_ok(trial):
                trial.set_user_attr(attrs.WORKER, self.evaluator.worker)
                config, violations = self.sample(trial)
                trial.set_user_attr(attrs.CONFIG, config.canonical())
                grown = next((f for f in failed if at_least(config, f)), None) if not violations else None
                if grown is not None:
                    violations = [
                        f"every tile at least that of {grown.canonical()}, which failed to compile (stack or vector size limit)"
                    ]
                if violations:
                    trial.set_user_attr(attrs.STATUS, TrialStatus.CONSTRAINT.value)
                    trial.set_user_attr(attrs.ERROR, "; ".join(violations))
                    self.study.tell(trial, state=TrialState.FAIL)
                    continue
                if config.canonical() in seen or any(c == config for _, c in batch):
                    # TPE re-proposed a config this study already has: reuse it, charge no budget.
                    _tell_duplicate(self.study, trial, self.evaluator.lookup(self.target, config))
                    self.after_repeat(seen | {c.canonical() for _, c in batch})
                    continue
                if self.over_budget(trial.number):
                    trial.set_user_attr(attrs.STATUS, TrialStatus.OVER_BUDGET.value)
                    self.study.tell(trial, state=TrialState.FAIL)
                    break
                batch.append((trial, config))
        return batch

    def enqueue_quota(self) -> None:
        for name, wanted in self.quota.items():
            if name in self.by_name and _drawn(self.study, name) < wanted:
                self.study.enqueue_trial({"skeleton": name})
                break

    def sample(self, trial: optuna.Trial) -> tuple[CompilationConfig, list[str]]:
        """The trial's config and the space's constraints it breaks (a breaker the space can
        repair is repaired: the trial keeps its sampled values, the config is the repair)."""
        name = trial.suggest_categorical("skeleton", [s.name for s in self.skeletons])
        skeleton = self.by_name[name]
        values = {k: trial.suggest_categorical(f"{name}.{k}", list(choices)) for k, choices in skeleton.knobs()}
        config = skeleton.config(values, self.loops)
        violations = self.space.check_config(config, self.target.root)
        repaired = self.space.repair(skeleton, values, self.target.root) if violations else None
        if repaired is not None:
            trial.set_user_attr(attrs.REPAIRED, "; ".join(violations))
            return skeleton.config(repaired, self.loops), []
        return config, violations

    def after_repeat(self, known: set[str]) -> None:
        """In a small space TPE keeps re-proposing what it knows (a script skeleton ran out of
        attempts at 20 of 30 trials): after a few repeats each is answered by a legal point
        nobody has measured."""
        self.repeats += 1
        if self.repeats < REPEATS_BEFORE_UNSEEN:
            return
        unseen = _unseen_point(
            self.skeletons, self.loops, known, lambda c: not self.space.check_config(c, self.target.root), self.rng
        )
        if unseen is not None:
            self.study.enqueue_trial(unseen)

    def evaluate(self, batch: list[tuple[optuna.Trial, CompilationConfig]]) -> None:
        told: set[int] = set()

        def record(i: int, result: TrialResult) -> None:
            _tell(self.study, batch[i][0], self.target, result)
            told.add(i)

        results = self.evaluator.evaluate_many(self.target, [c for _, c in batch], record=record)
        # A cached result may be another worker's trial, told before it was published.
        seen = _counted_configs(self.study)
        for i, ((trial, config), result) in enumerate(zip(batch, results, strict=True)):
            if i in told:
                continue
            if result.cached and config.canonical() in seen:
                _tell_duplicate(self.study, trial, result)
                continue
            _tell(self.study, trial, self.target, result)


def _unseen_point(
    skeletons, loops: list[str], seen: set[str], legal, rng: random.Random, tries: int = 256
) -> dict | None:
    """Optuna parameters of a uniformly drawn `legal` config outside `seen` (None if none was found)."""
    for _ in range(tries):
        skeleton = rng.choice(skeletons)
        values = {name: rng.choice(choices) for name, choices in skeleton.knobs()}
        config = skeleton.config(values, loops)
        if config.canonical() not in seen and legal(config):
            return trial_params(skeleton.name, values)
    return None


def _counted_configs(study: optuna.Study) -> set[str]:
    return {t.user_attrs.get(attrs.CONFIG) for t in study.get_trials(deepcopy=False) if _counted(t)}


@contextlib.contextmanager
def _taken_over_ok(trial: optuna.Trial):
    """Another worker marked this trial lost (it thought our process dead): drop it, go on.

    Its result, if any, still reaches the shared cache, so nothing measured is lost.
    """
    try:
        yield
    except optuna.exceptions.UpdateFinishedTrialError:
        log.warning("trial %d was marked lost by another worker; continuing", trial.number)


def _tell_duplicate(study: optuna.Study, trial: optuna.Trial, known: TrialResult | None) -> None:
    """A config the study already counted: give TPE its known value, charge no budget."""
    with _taken_over_ok(trial):
        trial.set_user_attr(attrs.STATUS, TrialStatus.DUPLICATE.value)
        if known is not None and known.status == TrialStatus.OK and known.time_ns is not None:
            study.tell(trial, known.time_ns)
        else:
            study.tell(trial, state=TrialState.FAIL)


def _tell(study: optuna.Study, trial: optuna.Trial, target: TuningTarget, result: TrialResult) -> None:
    with _taken_over_ok(trial):
        _tell_result(study, trial, target, result)


def _tell_result(study: optuna.Study, trial: optuna.Trial, target: TuningTarget, result: TrialResult) -> None:
    trial.set_user_attr(attrs.STATUS, str(result.status))
    trial.set_user_attr(attrs.CACHED, result.cached)
    if result.error:
        trial.set_user_attr(attrs.ERROR, result.error[:2000])
    if result.status == TrialStatus.OK and result.time_ns is not None:
        study.tell(trial, result.time_ns)
    else:
        first_line = result.error.splitlines()[0] if result.error else ""
        log.info("%s trial %d: %s %s", target.label, trial.number, result.status, first_line)
        study.tell(trial, state=TrialState.FAIL)


def _untunable(study: optuna.Study) -> str:
    """IREE ignored the spec on every one of the first trials: no config can take effect.

    Known cause: batch-1 convolutions, whose config IREE drops when it re-inserts the batch
    dimension. Spending the budget there would only produce not-applied trials.
    """
    counted = [t for t in study.get_trials(deepcopy=False) if _counted(t)][:UNTUNABLE_AFTER]
    if len(counted) == UNTUNABLE_AFTER and all(
        t.user_attrs.get(attrs.STATUS) == TrialStatus.NOT_APPLIED.value for t in counted
    ):
        return "IREE does not apply a spec config to this op (known for batch-1 convolutions)"
    return ""


def summarize(
    study: optuna.Study, target: TuningTarget, skeletons: tuple[Skeleton, ...], study_name: str, compiles: int = 0
) -> TargetOutcome:
    statuses: dict[str, int] = {}
    baseline = None
    default_canon = target.root.default_config.canonical() if target.root.default_config else None
    counted = 0
    fastest: dict[str, float] = {}
    timeline = []
    for t in study.get_trials(deepcopy=False):
        status = t.user_attrs.get(attrs.STATUS, t.state.name.lower())
        statuses[status] = statuses.get(status, 0) + 1
        if t.state.is_finished():
            timeline.append((t.value if t.state == TrialState.COMPLETE else None, status))
        if _counted(t):
            counted += 1
        if t.state == TrialState.COMPLETE and t.value is not None:
            cfg = t.user_attrs.get(attrs.CONFIG)
            if cfg == default_canon and (baseline is None or t.value < baseline):
                baseline = t.value
            fastest[cfg] = min(t.value, fastest.get(cfg, t.value))
    ranked = tuple(
        (CompilationConfig.from_json(json.loads(cfg)), ns) for cfg, ns in sorted(fastest.items(), key=lambda kv: kv[1])
    )
    best_cfg, best_ns = ranked[0] if ranked else (None, None)
    return TargetOutcome(
        target,
        study_name,
        counted,
        statuses,
        best_cfg,
        best_ns,
        baseline,
        skeletons,
        compiles,
        _untunable(study),
        ranked,
        tuple(timeline),
    )


def settle(outcome: TargetOutcome, storage: optuna.storages.BaseStorage, timeout_s: float) -> TargetOutcome:
    """Wait for trials other workers still run on this study, then summarise it again.

    The exporting process must see every finished trial; a trial whose worker died is
    recovered as lost after the timeout instead of blocking the export forever.
    """
    study = optuna.load_study(study_name=outcome.study_name, storage=storage)
    me = worker_id()
    if not any(
        t.user_attrs.get(attrs.WORKER) not in (None, me) and (t.datetime_start or _STARTED) >= _STARTED
        for t in study.get_trials(deepcopy=False)
    ):  # nobody else worked this study during our run
        return summarize(study, outcome.target, outcome.skeletons, outcome.study_name, compiles=outcome.compiles)
    deadline = time.monotonic() + timeout_s
    quiet_since = None
    # Wait for a quiet spell, not just a moment without running trials: a worker whose trial
    # turned out free (a duplicate) asks its next one right after.
    while time.monotonic() < deadline:
        if study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            quiet_since = None
            recover_lost_trials(study, timeout_s)
        elif quiet_since is None:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= SETTLE_QUIET_S:
            break
        time.sleep(0.5)
    else:
        recover_lost_trials(study, 0.0)  # waited the full timeout: whoever still runs is gone
    return summarize(study, outcome.target, outcome.skeletons, outcome.study_name, compiles=outcome.compiles)
