"""Contractions (matmul, batch matmul, transposed variants, generic contractions): loops b, m, n, k."""

from __future__ import annotations

from typing import ClassVar

from iree.compiler.dialects import linalg

from ._base import OpFamily, is_mul_add, recognised_by_groups

_GROUPS = ("b", "m", "n", "k")


class MatmulFamily(OpFamily):
    name = "matmul"
    expected_gain = 1.3
    reduction_roles: ClassVar[frozenset[str]] = frozenset({"k"})
    prompt_notes = (
        "DoubleTilingExpert: distribution (= cache) tiles, then a register tile m x n with a k step; "
        "on AVX2 an n tile of two vector registers per row is typical."
    )

    def recognise(self, op, maps, bounds):
        if len(list(op.operands)) < 3 or not is_mul_add(op):
            return None
        dims = linalg.infer_contraction_dimensions(op)
        if dims is None or not list(dims.k) or not (list(dims.m) or list(dims.n)):
            return None
        groups = {"b": list(dims.batch), "m": list(dims.m), "n": list(dims.n), "k": list(dims.k)}
        if sum(len(v) for v in groups.values()) != len(bounds):
            return None
        return recognised_by_groups(op, maps, bounds, "contraction", groups)
