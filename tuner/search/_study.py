"""Optuna search over one target's skeletons: skeleton choice categorical, its knobs conditional.

One study per target (named job:target), in the job's storage; trials are told as they
finish, so a killed job loses at most the trial in flight and resumes where it stopped.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import time
from typing import Callable

import optuna

from ..dispatches import TuningTarget
from ..evaluation import Evaluator, TrialResult
from ..spaces import KnobSpace, Skeleton, loop_names
from ..spec import CompilationConfig

log = logging.getLogger("schedtune")


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


def make_sampler(kind: str, seed: int) -> optuna.samplers.BaseSampler:
    if kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    # Few startup trials: the default config is enqueued first, the budget is small.
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=8, multivariate=True, group=True)


def _counted(trial: optuna.trial.FrozenTrial) -> bool:
    """Trials that consumed budget: finished, not rejected before compiling, not a repeat."""
    return trial.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL) and trial.user_attrs.get(
        "status"
    ) not in (None, "constraint", "duplicate")


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
) -> TargetOutcome:
    study = optuna.create_study(
        study_name=study_name,
        storage=storage,
        sampler=make_sampler(sampler, seed),
        direction="minimize",
        load_if_exists=True,
    )
    stored = study.user_attrs.get("skeletons")
    if stored:
        # Resume with the skeletons the study started with: Optuna's distributions must not change.
        skeletons = tuple(Skeleton.from_json(s) for s in json.loads(stored))
    else:
        study.set_user_attr("skeletons", json.dumps([s.to_json() for s in skeletons]))
        study.set_user_attr("target", target.label)
        for name, values in default_values.items():
            study.enqueue_trial({"skeleton": name, **{f"{name}.{k}": v for k, v in values.items()}})
            break
    by_name = {s.name: s for s in skeletons}
    loops = loop_names(target.root)
    compiles_before = evaluator.compiles

    def done() -> int:
        return sum(1 for t in study.get_trials(deepcopy=False) if _counted(t))

    def best() -> float | None:
        vals = [t.value for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))]
        return min(vals) if vals else None

    attempts = 0
    finished = done()
    untunable = _untunable(study)
    seen = {t.user_attrs.get("config") for t in study.get_trials(deepcopy=False) if _counted(t)}
    while finished < trials and attempts < 6 * trials and skeletons and not untunable:
        if deadline is not None and time.monotonic() > deadline:
            log.info("%s: time budget reached after %d trials", target.label, finished)
            break
        attempts += 1
        trial = study.ask()
        name = trial.suggest_categorical("skeleton", [s.name for s in skeletons])
        skeleton = by_name[name]
        values = {k: trial.suggest_categorical(f"{name}.{k}", list(choices)) for k, choices in skeleton.knobs()}
        config = skeleton.config(values, loops)
        trial.set_user_attr("config", config.canonical())
        violations = space.check_config(config, target.root)
        if violations:
            trial.set_user_attr("status", "constraint")
            trial.set_user_attr("error", "; ".join(violations))
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            continue
        if config.canonical() in seen:
            # TPE re-proposed a config this study already measured: reuse it, do not charge budget.
            cached = evaluator.lookup(target, config)
            trial.set_user_attr("status", "duplicate")
            if cached is not None and cached.status == "ok":
                study.tell(trial, cached.time_ns)
            else:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
            continue
        result: TrialResult = evaluator.evaluate(target, config)
        seen.add(config.canonical())
        trial.set_user_attr("status", result.status)
        trial.set_user_attr("cached", result.cached)
        if result.error:
            trial.set_user_attr("error", result.error[:2000])
        if result.status == "ok" and result.time_ns is not None:
            study.tell(trial, result.time_ns)
        else:
            log.info("%s trial %d: %s %s", target.label, trial.number, result.status, result.error.splitlines()[0] if result.error else "")
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        finished += 1
        untunable = _untunable(study)
        if untunable:
            log.warning("%s: %s; not tuned", target.label, untunable)
        if progress:
            progress(finished, trials, best())
    return summarize(study, target, skeletons, study_name, compiles=evaluator.compiles - compiles_before)


UNTUNABLE_AFTER = 3


def _untunable(study: optuna.Study) -> str:
    """IREE ignored the spec on every one of the first trials: no config can take effect.

    Known cause: batch-1 convolutions, whose config IREE drops when it re-inserts the batch
    dimension. Spending the budget there would only produce not-applied trials.
    """
    counted = [t for t in study.get_trials(deepcopy=False) if _counted(t)][:UNTUNABLE_AFTER]
    if len(counted) == UNTUNABLE_AFTER and all(t.user_attrs.get("status") == "not_applied" for t in counted):
        return "IREE does not apply a spec config to this op (known for batch-1 convolutions)"
    return ""


def summarize(
    study: optuna.Study, target: TuningTarget, skeletons: tuple[Skeleton, ...], study_name: str, compiles: int = 0
) -> TargetOutcome:
    statuses: dict[str, int] = {}
    best_cfg, best_ns, baseline = None, None, None
    default_canon = target.root.default_config.canonical() if target.root.default_config else None
    counted = 0
    for t in study.get_trials(deepcopy=False):
        status = t.user_attrs.get("status", t.state.name.lower())
        statuses[status] = statuses.get(status, 0) + 1
        if _counted(t):
            counted += 1
        if t.state == optuna.trial.TrialState.COMPLETE and t.value is not None:
            cfg = t.user_attrs.get("config")
            if cfg == default_canon and (baseline is None or t.value < baseline):
                baseline = t.value
            if best_ns is None or t.value < best_ns:
                best_ns, best_cfg = t.value, CompilationConfig.from_json(json.loads(cfg))
    return TargetOutcome(target, study_name, counted, statuses, best_cfg, best_ns, baseline, skeletons, compiles,
                         _untunable(study))
