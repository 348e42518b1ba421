"""Evaluation stage: compile, verify, check numerics and time a config; cache every outcome."""
from ._cache import Cache, cache_key, schema_lock
from ._evaluate import STATUSES, Evaluator, ModelContext, TrialResult, outputs_match
from ._machine import busy_fraction, busy_warning
from ._worker import worker_dead, worker_id

__all__ = ["STATUSES", "Cache", "busy_fraction", "busy_warning", "Evaluator", "ModelContext", "TrialResult", "cache_key", "schema_lock", "outputs_match", "worker_dead", "worker_id"]
