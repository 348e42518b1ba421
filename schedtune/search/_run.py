"""One tuning build's search: a proposal and a study per target, hottest target first."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from typing import Protocol

from ..dispatches import TuningTarget
from ..evaluation import Evaluator
from ..spaces import KnobSpace, Skeleton, load_space, loop_names
from ..spec import TRANSFORM_DIALECT, CompilationConfig
from ..store import TrialStatus
from ._study import TargetOutcome, trial_params, tune_target

log = logging.getLogger("schedtune")


@dataclasses.dataclass
class SearchSettings:
    job: str
    build_tag: str  # compiler + CPU + flags: a new one starts new studies that re-verify old winners
    trials: int
    sampler: str
    seed: int
    deadline: float | None
    # Configs from similar finished studies, per target (mapped onto its space): enqueued
    # after IREE's default. With `history_only`, they (and the default) are the whole search.
    hints: Callable[[TuningTarget, KnobSpace], list[CompilationConfig]] | None = None
    history_only: bool = False
    transform_dialect: bool = False  # offer the transform-dialect tier where a dispatch allows it
    transform_dialect_trials: int = 0  # its trials per target, on top of `trials`


class TargetProposal(Protocol):
    """What the job's proposer offers for one target (a `proposers.Proposal` is one)."""

    skeletons: tuple[Skeleton, ...]
    source: str
    notes: tuple[str, ...]

    @property
    def fell_back(self) -> bool: ...


# The job's proposer for one target: (target, its space, a config check) -> proposal. The
# check compiles one config in the model and returns the compiler's error (None: applied).
Propose = Callable[[TuningTarget, KnobSpace, Callable[[CompilationConfig], "str | None"]], TargetProposal]


@dataclasses.dataclass
class SearchResult:
    outcomes: list[TargetOutcome]
    skipped: dict[str, str]  # target key -> why it was not searched
    fallbacks: dict[str, str]  # target label -> why the configured proposer was replaced


def _centre_check(evaluator: Evaluator, target: TuningTarget):
    """A proposer's skeleton check: compile one of its points in the model (cached like any trial)."""

    def check(config) -> str | None:
        result = evaluator.evaluate(target, config)
        if result.status in (TrialStatus.OK, TrialStatus.IN_PROGRESS):
            return None
        return f"{result.status}: {result.error}"

    return check


def search_targets(
    targets: list[TuningTarget],
    evaluator: Evaluator,
    propose: Propose,
    settings: SearchSettings,
    storage,
    progress,
    label: Callable[[int, TuningTarget], str],
) -> SearchResult:
    outcomes: list[TargetOutcome] = []
    skipped: dict[str, str] = {}
    fallbacks: dict[str, str] = {}
    for i, target in enumerate(targets):
        space = load_space(target.root.family)
        if space is None:
            skipped[target.key] = f"no space for op family {target.root.family}"
            continue
        space = space.admitting(target.root)
        script_only = target.root.script_only
        if settings.transform_dialect or script_only:
            space = space.offering_transform_dialect(target.root)
        if target.root.known_issue and TRANSFORM_DIALECT not in space.pipelines:
            # IREE drops every pipeline config on it and no script can rebuild its dispatches.
            skipped[target.key] = target.root.known_issue
            continue
        proposal = propose(target, space, _centre_check(evaluator, target))
        if proposal.notes:
            log.info("%s: proposals from %s (%s)", target.label, proposal.source, "; ".join(proposal.notes))
        if proposal.fell_back:
            fallbacks[target.label] = "; ".join(proposal.notes) or "the proposer failed"
        skeletons = proposal.skeletons
        if script_only:
            skeletons = _script_only_skeletons(target, space, skeletons)
        if not skeletons:
            skipped[target.key] = "no valid skeleton proposed"
            continue
        defaults = _default_point(target, skeletons)
        warm = _warm_start(settings, target, space, skeletons, defaults)
        if not settings.history_only:
            warm = _default_tiles_scripted(target, skeletons) + warm
        trials = settings.trials
        if settings.history_only:
            if not warm:
                skipped[target.key] = "no similar config in the history: IREE's default kept"
                continue
            trials = len(warm) + bool(defaults)
        # A quota gives the scripts their share beside IREE's pipelines; alone, they have it all.
        quota = (
            {}
            if script_only
            else {s.name: settings.transform_dialect_trials for s in skeletons if s.pipeline == TRANSFORM_DIALECT}
        )
        if not settings.history_only:
            trials += sum(quota.values())
        task = progress.add(label(i, target), trials)
        outcome = tune_target(
            target,
            space,
            skeletons,
            defaults,
            evaluator,
            storage=storage,
            # The transform-dialect tier widens the search space: a study of its own.
            study_name=f"{settings.job}:{target.key}:{settings.build_tag}"
            + (":td" if TRANSFORM_DIALECT in space.pipelines else ""),
            history_prefix=f"{settings.job}:{target.key}:",
            trials=trials,
            warm_start=warm,
            quota=quota,
            sampler=settings.sampler,
            seed=settings.seed,
            deadline=share_of_time_left(settings.deadline, len(targets) - i),
            progress=lambda d, n, b, task=task: progress.update(task, d, n, None if b is None else b / 1e6),
        )
        progress.update(task, outcome.trials, trials, None if outcome.best_ns is None else outcome.best_ns / 1e6)
        outcomes.append(outcome)
    return SearchResult(outcomes, skipped, fallbacks)


def _default_point(target: TuningTarget, skeletons) -> dict[str, dict]:
    """IREE's default config as knob values of the first skeleton that holds it (empty when none does)."""
    default = target.root.default_config
    if default is None:
        return {}
    loops = loop_names(target.root)
    for sk in skeletons:
        values = sk.values_for(default, loops)
        if values is not None:
            return {sk.name: values}
    return {}


def share_of_time_left(deadline: float | None, parts: int) -> float | None:
    """A deadline for one of `parts` equal shares of the time left before `deadline` (None:
    no limit). Given to each target in turn, what an earlier one did not use passes on, so a
    time limit cuts every target's trials rather than the last targets' all."""
    if deadline is None:
        return None
    now = time.monotonic()
    return now + max(deadline - now, 0.0) / max(parts, 1)


def _script_only_skeletons(target: TuningTarget, space: KnobSpace, proposed) -> tuple[Skeleton, ...]:
    """For an op only a script reaches: IREE's default config alone (the baseline: its spec
    does not take, IREE picks that config itself) and the proposed script skeletons (the
    space's own when none was proposed). Any other IREE-pipeline config would be dropped."""
    scripts = tuple(s for s in proposed if s.pipeline == TRANSFORM_DIALECT)
    if not scripts and TRANSFORM_DIALECT in space.pipelines:
        scripts = (space.transform_skeleton(target.root),)
    default = target.root.default_config
    if default is None:
        return scripts
    baseline = Skeleton.pinned("iree-default", default, loop_names(target.root), "IREE's default config")
    return (baseline, *scripts)


def _default_tiles_scripted(target: TuningTarget, skeletons) -> list[dict]:
    """IREE's default tiles under a script, as a script skeleton's first trial: a script at
    the default's tiles runs about as fast as the default, so the search starts beside it."""
    default = target.root.default_config
    if default is None:
        return []
    scripted = CompilationConfig.make(TRANSFORM_DIALECT, {k: list(v) for k, v in default.tile_map.items()})
    loops = loop_names(target.root)
    for sk in skeletons:
        if sk.pipeline == TRANSFORM_DIALECT and (values := sk.values_for(scripted, loops)) is not None:
            return [trial_params(sk.name, values)]
    return []


def _warm_start(settings: SearchSettings, target: TuningTarget, space: KnobSpace, skeletons, defaults) -> list[dict]:
    """Optuna parameters of the history's configs for this target, each in the first skeleton
    that holds it; the default config and repeats are left out."""
    if settings.hints is None:
        return []
    loops = loop_names(target.root)
    default = target.root.default_config.canonical() if target.root.default_config else None
    seen = {default}
    params = []
    for config in settings.hints(target, space):
        if config.canonical() in seen:
            continue
        seen.add(config.canonical())
        for sk in skeletons:
            values = sk.values_for(config, loops)
            if values is not None:
                params.append(trial_params(sk.name, values))
                break
    if params:
        log.info("%s: warm start with %d config(s) from the history", target.label, len(params))
    return params
