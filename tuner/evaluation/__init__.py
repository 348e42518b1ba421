"""Evaluation stage: compile, verify, check numerics and time a config; cache every outcome."""

from ._cache import Cache, cache_key, schema_lock
from ._evaluate import Evaluator, TrialResult
from ._machine import busy_fraction, busy_warning
from ._model import ModelContext, NumericCheck
from ._numerics import all_sets_match, outputs_match, tolerance
from ._status import TrialStatus, spends_budget
from ._worker import worker_dead, worker_id

__all__ = [
    "Cache",
    "Evaluator",
    "ModelContext",
    "NumericCheck",
    "TrialResult",
    "TrialStatus",
    "all_sets_match",
    "busy_fraction",
    "busy_warning",
    "cache_key",
    "outputs_match",
    "schema_lock",
    "spends_budget",
    "tolerance",
    "worker_dead",
    "worker_id",
]
