"""Reductions written as `linalg.generic` (layer norm's mean and variance, softmax's max and
sum, mean pooling): loops `par` (kept) and `red` (reduced).

IREE's CPU pipeline for them is DoubleTilingExpert: distribution and a vector tile over the
kept loops, a vector step over the reduced ones. There is no shape matcher for a generic op
on CPU, so the spec matches it by op name and the exact number and types of its operands;
ops the same in those but computing something else (a max where the tuned op sums) take the
same config, which is legal for them (same loops, same bounds) and is judged, like every
config, in the whole model at the export.
"""

from __future__ import annotations

from typing import ClassVar

from ._base import OpFamily, Recognised, operands_matcher


class ReductionFamily(OpFamily):
    name = "reduction"
    expected_gain = 1.1
    flops_per_point = None  # memory-bound: its speed is bytes, not flops
    reduction_roles: ClassVar[frozenset[str]] = frozenset({"red"})
    prompt_notes = (
        "A linalg.generic reduction (layer norm, softmax, pooling) on DoubleTilingExpert: distribution and "
        "vector tiles over the kept loops (par), a vector step over the reduced ones (red); memory-bound, "
        "so long contiguous vector steps and enough workgroups for every thread matter most."
    )

    def recognise(self, op, maps, bounds):
        if op.name != "linalg.generic" or "iterator_types" not in op.attributes:
            return None
        kinds = [str(a) for a in op.attributes["iterator_types"]]
        if not any("reduction" in k for k in kinds) or not all("parallel" in k or "reduction" in k for k in kinds):
            return None
        roles = tuple("red" if "reduction" in k else "par" for k in kinds)
        outputs = len(op.results)
        return Recognised(roles, operands_matcher(op, maps, len(list(op.operands)) - outputs))
