"""Evaluation stage: compile, verify, check numerics and time a config; cache every outcome."""

from ._evaluate import Evaluator, TrialResult
from ._machine import busy_fraction, busy_warning

__all__ = ["Evaluator", "TrialResult", "busy_fraction", "busy_warning"]
