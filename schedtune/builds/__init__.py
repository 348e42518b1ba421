"""Builds of one model: its context (source, inputs, flags, reference outputs), trial builds
that swap in recompiled executables, and the numeric checks against IREE's default build."""

from ._model import ModelContext, NumericCheck
from ._numerics import all_sets_match, outputs_match, tolerance, within_budget
from ._substitute import SubstitutedBuilds

__all__ = [
    "ModelContext",
    "NumericCheck",
    "SubstitutedBuilds",
    "all_sets_match",
    "outputs_match",
    "tolerance",
    "within_budget",
]
