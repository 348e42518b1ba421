"""Knob spaces per op family, skeletons within them, and model-level flag candidates."""

from ._space import (
    SPACES_DIR,
    FlagCandidate,
    KnobSpace,
    Skeleton,
    SpaceError,
    flag_candidates,
    host_threads,
    load_space,
    loop_bounds,
    loop_names,
    resolve_flags,
)

__all__ = [
    "SPACES_DIR",
    "FlagCandidate",
    "KnobSpace",
    "Skeleton",
    "SpaceError",
    "flag_candidates",
    "host_threads",
    "load_space",
    "loop_bounds",
    "loop_names",
    "resolve_flags",
]
