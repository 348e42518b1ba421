"""Op families: one class per kind of tunable root op, in one list.

`FAMILIES` is tried in order; the first family that recognises a root op owns it. Convolutions
come before contractions: linalg's contraction inference also accepts some convolutions; so
does it mmt4d, which has a family of its own. Reductions come last: any generic op with a
reduction loop that no family before took.
"""

from __future__ import annotations

import math

from ._attention import AttentionFamily
from ._base import Loop, OpFamily, Recognised, element_bytes
from ._convolution import Conv2dFamily, DepthwiseFamily, PoolingFamily
from ._matmul import MatmulFamily
from ._mmt4d import Mmt4dFamily
from ._reduction import ReductionFamily

FAMILIES: tuple[OpFamily, ...] = (
    AttentionFamily(),
    Conv2dFamily(),
    DepthwiseFamily(),
    PoolingFamily(),
    Mmt4dFamily(),
    MatmulFamily(),
    ReductionFamily(),
)

_BY_NAME = {f.name: f for f in FAMILIES}

# Planning key of the time in ops that only a transform script reaches (batch-1 convs, see
# RootOp.script_only), whatever their family, and its prior: scripts beat IREE's default on
# fewer of them than IREE's pipelines do on the ops they reach (the issue notes hold the
# measurements), so the prior is set lower than the families'.
SCRIPTED = "script"
SCRIPTED_GAIN = 1.15


def get_family(name: str) -> OpFamily | None:
    """The family called `name` (None for `other`: an op no family recognises)."""
    return _BY_NAME.get(name)


def expected_gain(name: str) -> float:
    """The planning prior of family `name`; 1.0 (no gain) for ops no family tunes."""
    if name == SCRIPTED:
        return SCRIPTED_GAIN
    family = _BY_NAME.get(name)
    return family.expected_gain if family else 1.0


def max_expected_gain() -> float:
    """The largest planning prior of any family: no build can be expected to gain more."""
    return max([family.expected_gain for family in _BY_NAME.values()] + [SCRIPTED_GAIN])


def op_flops(name: str, bounds: list[int] | tuple[int, ...]) -> int | None:
    """Floating-point operations of one op of family `name` with these loop trip counts (None
    when the family's loops do not say, or for ops no family tunes)."""
    family = _BY_NAME.get(name)
    if family is None or family.flops_per_point is None or not bounds:
        return None
    return family.flops_per_point * math.prod(bounds)


def family_names() -> tuple[str, ...]:
    return tuple(_BY_NAME)


__all__ = [
    "FAMILIES",
    "SCRIPTED",
    "Loop",
    "OpFamily",
    "Recognised",
    "element_bytes",
    "expected_gain",
    "max_expected_gain",
    "family_names",
    "get_family",
    "op_flops",
]
