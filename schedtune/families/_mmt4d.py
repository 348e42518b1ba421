"""Data-tiled matmuls (`linalg.mmt4d`, `linalg.batch_mmt4d`): loops [b,] m, n, k, mi, ni, ki.

Data tiling packs a matmul's operands into tiles sized for the CPU's registers; the op is
then an mmt4d whose inner loops (mi, ni, ki) are those tiles: IREE picks them per ISA and the
packed layouts depend on them, so a config keeps them whole. What a spec can tune is the
outer loops: how many tiles a workgroup takes (distribution), how many tiles one vector step
unrolls (with ukernels: how many tiles one ukernel call takes), and the k step.

A spec reaches the mmt4d only when encodings are materialised early
(`--iree-global-opt-data-tiling`); with `--iree-opt-data-tiling` the op is still a matmul on
encoded tensors when specs apply, and becomes an mmt4d without the spec's config later.
"""

from __future__ import annotations

from typing import ClassVar

from iree.compiler.dialects import linalg

from ._base import Loop, OpFamily, Recognised, operands_matcher

OP_NAMES = ("linalg.mmt4d", "linalg.batch_mmt4d")


class Mmt4dFamily(OpFamily):
    name = "mmt4d"
    expected_gain = 1.1
    reduction_roles: ClassVar[frozenset[str]] = frozenset({"k", "ki"})
    # The mmt4d ukernel (IREE's default on x86-64) takes a whole vector_common_parallel tile of
    # outer tiles in one call, looping over them itself (LHS panel reused across n, RHS panels
    # across m): a larger tile there means fewer calls and more panel reuse, not wider vectors.
    ukernel_roles: ClassVar[frozenset[str]] = frozenset({"b", "m", "n"})
    prompt_notes = (
        "Mmt4dTilingExpert on a data-tiled matmul: the inner tiles mi x ni x ki are the packed register "
        "tiles and stay whole; tune the outer tiles per workgroup (distribution m, n), the outer tiles "
        "unrolled per vector step (vector_common_parallel m, n) and the k step."
    )

    def recognise(self, op, maps, bounds):
        if op.name not in OP_NAMES:
            return None
        dims = linalg.infer_contraction_dimensions(op)
        if dims is None:
            return None
        roles = ["d"] * len(bounds)
        for position in dims.batch:
            roles[position] = "b"
        for group, (outer, inner) in (("m", ("m", "mi")), ("n", ("n", "ni")), ("k", ("k", "ki"))):
            positions = sorted(getattr(dims, group))
            if len(positions) != 2:
                return None
            roles[positions[0]], roles[positions[1]] = outer, inner
        if "d" in roles:
            return None
        return Recognised(tuple(roles), operands_matcher(op, maps, 2))

    def check_config(
        self, config, loops: tuple[Loop, ...], vector_limit: int, native_vector_bytes: int = 32
    ) -> list[str]:
        errors = []
        tiles = config.tile_map
        for level, role_of_whole in (("vector_common_parallel", ("mi", "ni")), ("vector_reduction", ("ki",))):
            for loop, size in zip(loops, tiles.get(level, ())):
                if loop.role in role_of_whole and size != loop.bound:
                    errors.append(f"{level} must keep the packed tile {loop.role} whole ({loop.bound}), got {size}")
        return errors
