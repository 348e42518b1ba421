"""Evaluation stage: compile, verify, check numerics and time a config; cache every outcome."""
from ._cache import Cache, cache_key
from ._evaluate import STATUSES, Evaluator, ModelContext, TrialResult, outputs_match

__all__ = ["STATUSES", "Cache", "Evaluator", "ModelContext", "TrialResult", "cache_key", "outputs_match"]
