"""Dispatch stage: which dispatches a model has, their root ops, and their share of the time."""

from ._analysis import Analysis, analyze_model
from ._analyze import Dispatch, Loop, RootOp, read_configured_executables
from ._targets import DispatchRow, TuningTarget, find_targets

__all__ = [
    "Analysis",
    "Dispatch",
    "DispatchRow",
    "Loop",
    "RootOp",
    "TuningTarget",
    "analyze_model",
    "find_targets",
    "read_configured_executables",
]
