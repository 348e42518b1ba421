"""Search stage: model-level flags first, then Optuna studies over each dispatch's skeleton knobs."""
from ._flags import FlagDecision, choose_flags, tuning_build
from ._study import TargetOutcome, make_sampler, recover_lost_trials, settle, summarize, tune_target

__all__ = ["FlagDecision", "TargetOutcome", "choose_flags", "make_sampler", "recover_lost_trials", "settle", "summarize", "tune_target", "tuning_build"]
