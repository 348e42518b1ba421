"""What an op family is: one class per kind of root op, kept in one list (`FAMILIES`).

A family knows how to recognise its root op (and name its loops), how a spec matches it,
which IREE bugs make a spec useless on it, which constraints its configs must satisfy beyond
the space file's, and what the LLM prompt should say about it. Its knob space and skeleton
library live in `spaces/<name>.yaml`. Adding a family is one module here, one YAML file and
its tests.
"""

from __future__ import annotations

import abc
import dataclasses
from typing import TYPE_CHECKING, ClassVar

from iree.compiler import ir

from ..spec import OpMatcher

if TYPE_CHECKING:
    from ..spec import CompilationConfig


@dataclasses.dataclass(frozen=True)
class Loop:
    """One loop of a root op: its role (m, n, k, oc, oh, ...), trip count and iterator kind."""

    role: str
    bound: int
    parallel: bool


@dataclasses.dataclass(frozen=True)
class Recognised:
    """A family's reading of a root op: a role per loop and the spec's matcher for it."""

    roles: tuple[str, ...]
    matcher: OpMatcher


class OpFamily(abc.ABC):
    """One kind of tunable root op."""

    name: ClassVar[str]
    # Reduction roles: loops a family calls this way are reductions when the op does not say.
    reduction_roles: ClassVar[frozenset[str]] = frozenset()
    # What the LLM prompt says about this family (one or two sentences, no measured numbers).
    prompt_notes: ClassVar[str] = ""
    # A prior for planning only: the factor by which tuning is expected to cut this family's
    # time, set below what tuning usually reached (measurements: the project's issue notes),
    # so that a flag set's certain gain is not traded for an optimistic guess.
    expected_gain: ClassVar[float] = 1.2
    # Floating-point operations per point of the op's iteration space (2: a multiply and an
    # add; None where the loops alone do not say, as for attention's two products, or where
    # the op is memory-bound and GFLOP/s says nothing of its speed, as for reductions).
    flops_per_point: ClassVar[int | None] = 2
    # Roles whose vector-level tiles are loops around a ukernel call, not a vector shape: they
    # do not count against the target's vector size limit.
    ukernel_roles: ClassVar[frozenset[str]] = frozenset()

    @abc.abstractmethod
    def recognise(self, op: ir.Operation, maps: list[ir.AffineMap], bounds: list[int]) -> Recognised | None:
        """This family's reading of `op`, or None when the op is not of this family."""

    def known_issue(self, loops: tuple[Loop, ...], op_name: str = "linalg.generic") -> str | None:
        """Why a spec cannot take effect on such an op (`op_name` as the configured dispatch
        holds it) with this IREE, if it is a known bug."""
        return None

    def check_config(
        self, config: CompilationConfig, loops: tuple[Loop, ...], vector_limit: int, native_vector_bytes: int = 32
    ) -> list[str]:
        """Constraint violations beyond the space file's (empty when none); `vector_limit` is the
        element count at which IREE rejects a vector (or a vector contraction) on this CPU,
        `native_vector_bytes` the width of its vector registers."""
        return []


# Reading helpers shared by the families (IREE's Python bindings only).


def element_type(value: ir.Value) -> str:
    t = value.type
    return str(t.element_type) if isinstance(t, ir.ShapedType) else str(t)


def element_bytes(element_type: str) -> int:
    """Bytes of an MLIR element type (f32, bf16, i8, ui8, f8E4M3FN, ...); 8 for index and
    unknown types, as IREE assumes."""
    for prefix in ("bf", "si", "ui", "f", "i"):
        if element_type.startswith(prefix):
            rest = element_type[len(prefix) :]
            bits = rest[: len(rest) - len(rest.lstrip("0123456789"))]
            return max(int(bits) // 8, 1) if bits else 8
    return 8


def operand_types(op: ir.Operation) -> tuple[str, str, str]:
    """(lhs, rhs, output) element types of a linalg op with two inputs and one init."""
    types = tuple(element_type(v) for v in list(op.operands)[:3])
    return (types + ("", "", ""))[:3]  # type: ignore[return-value]


def body_ops(op: ir.Operation) -> set[str]:
    names = set()
    for region in op.regions:
        for block in region.blocks:
            names.update(o.name for o in block.operations)
    return names


def is_mul_add(op: ir.Operation) -> bool:
    """A multiply-accumulate body (named linalg ops carry no visible body and count as one)."""
    body = body_ops(op)
    if not body:
        return True
    return bool(body & {"arith.mulf", "arith.muli"}) and bool(body & {"arith.addf", "arith.addi"})


def map_texts(maps: list[ir.AffineMap]) -> tuple[str, ...]:
    return tuple(str(ir.AffineMapAttr.get(m)) for m in maps)


def maps_without_loop(maps: list[ir.AffineMap], loop: int) -> tuple[str, ...]:
    """`maps` with loop `loop` gone: its results dropped, the later loops renumbered down."""
    n = maps[0].n_dims
    shift = ir.AffineMap.get(
        n - 1,
        0,
        [ir.AffineConstantExpr.get(0) if j == loop else ir.AffineDimExpr.get(j - (j > loop)) for j in range(n)],
    )
    kept = [
        ir.AffineMap.get(
            n - 1,
            0,
            [r.compose(shift) for r in m.results if not (isinstance(r, ir.AffineDimExpr) and r.position == loop)],
        )
        for m in maps
    ]
    return map_texts(kept)


def operands_matcher(op: ir.Operation, maps: list[ir.AffineMap], output_index: int) -> OpMatcher:
    """A matcher by op name and the exact type of every shaped operand (for ops IREE has no
    shape matcher for on CPU); `output_index` names the operand whose element type is the output's."""
    operands = list(op.operands)
    return OpMatcher(
        op_name=op.name,
        kind="operands",
        lhs_type=element_type(operands[0]),
        rhs_type=element_type(operands[1]),
        output_type=element_type(operands[output_index]),
        dims=(),
        indexing_maps=map_texts(maps),
        operand_types=tuple((i, str(v.type)) for i, v in enumerate(operands) if isinstance(v.type, ir.ShapedType)),
        operand_count=len(operands),
    )


def recognised_by_groups(
    op: ir.Operation,
    maps: list[ir.AffineMap],
    bounds: list[int],
    kind: str,
    groups: dict[str, list[int]],
    role_names: dict[str, tuple[str, ...]] | None = None,
    **matcher_fields,
) -> Recognised:
    """A reading from linalg's loop groups (in the matcher's result order): each loop gets its
    group's name (or the group's own per-position names), the matcher gets each group's sizes."""
    role_names = role_names or {}
    roles = ["d"] * len(bounds)
    for key, positions in groups.items():
        for i, pos in enumerate(positions):
            roles[pos] = role_names[key][i] if key in role_names else key
    lhs, rhs, out = operand_types(op)
    matcher = OpMatcher(
        op_name=op.name,
        kind=kind,
        lhs_type=lhs,
        rhs_type=rhs,
        output_type=out,
        dims=tuple(tuple(bounds[p] for p in positions) for positions in groups.values()),
        indexing_maps=map_texts(maps),
        **matcher_fields,
    )
    return Recognised(tuple(roles), matcher)
