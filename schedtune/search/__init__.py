"""Search stage: model-level flags first, then Optuna studies over each dispatch's skeleton knobs."""

from ._builds import BuildCandidate, TuningPlan, plan_tuning_builds, within_reach
from ._flags import FlagDecision, choose_flags
from ._pipelines import PipelineEvaluator, PipelineResult, PipelineSearch, measured_pipelines, search_pipelines
from ._race import race
from ._run import Propose, SearchResult, SearchSettings, TargetProposal, search_targets, share_of_time_left
from ._study import (
    TargetOutcome,
    at_least,
    growing_failures,
    join_study,
    make_sampler,
    recover_lost_trials,
    settle,
    summarize,
    tune_target,
)

__all__ = [
    "BuildCandidate",
    "FlagDecision",
    "PipelineEvaluator",
    "PipelineResult",
    "PipelineSearch",
    "Propose",
    "SearchResult",
    "SearchSettings",
    "TargetOutcome",
    "TargetProposal",
    "TuningPlan",
    "at_least",
    "choose_flags",
    "growing_failures",
    "join_study",
    "make_sampler",
    "measured_pipelines",
    "plan_tuning_builds",
    "race",
    "recover_lost_trials",
    "search_pipelines",
    "search_targets",
    "settle",
    "share_of_time_left",
    "summarize",
    "tune_target",
    "within_reach",
]
