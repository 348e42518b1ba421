"""Knob spaces per op family, skeletons within them, and model-level flag candidates."""

from ._space import (
    SPACES_DIR,
    FlagCandidate,
    KnobSpace,
    Skeleton,
    SpaceError,
    flag_candidates,
    load_space,
    loop_bounds,
    loop_names,
)

__all__ = [
    "SPACES_DIR",
    "FlagCandidate",
    "KnobSpace",
    "Skeleton",
    "SpaceError",
    "flag_candidates",
    "load_space",
    "loop_bounds",
    "loop_names",
]
