"""Attention (`iree_linalg_ext.online_attention`): loops batch, m, n, head, keys.

On CPU, `iree_linalg_ext.attention` (what SDPA imports as) is already rewritten to
`online_attention` when tuning specs are applied, so that is the op this family owns. Its
loops are read from the indexing maps (IREE's attention convention, with IREE's k1 named `head`
and k2 `keys`: a role may not end in a digit, knob names number repeated roles):

    Q : batch x m x head    K : batch x keys x head    V : batch x keys x n    O : batch x m x n

The pipeline tiles m and n (distribution, vector_common_parallel) and steps over keys
(vector_reduction): per step it computes an m x keys block of scores against the whole head
dimension (never tiled) and accumulates an m x n block of the output.
"""

from __future__ import annotations

import math
from typing import ClassVar

from iree.compiler import ir

from ._base import Loop, OpFamily, Recognised, operands_matcher

OP_NAME = "iree_linalg_ext.online_attention"


def _dims(amap: ir.AffineMap) -> set[int]:
    return {e.position for e in amap.results if isinstance(e, ir.AffineDimExpr)}


def attention_roles(maps: list[ir.AffineMap]) -> list[str] | None:
    """A role per loop from the Q, K, V and output maps, or None when they do not fit."""
    if len(maps) < 5:
        return None
    q, k, v = (_dims(m) for m in maps[:3])
    out = _dims(maps[-3])  # outs are (output, running max, running sum)
    roles = []
    for d in range(maps[0].n_dims):
        if d in q and d in k and d in v and d in out:
            roles.append("batch")
        elif d in q and d in out and d not in k:
            roles.append("m")
        elif d in v and d in out and d not in q:
            roles.append("n")
        elif d in q and d in k and d not in out:
            roles.append("head")
        elif d in k and d in v and d not in q:
            roles.append("keys")
        else:
            return None
    if not {"m", "n", "head", "keys"} <= set(roles):
        return None
    return roles


class AttentionFamily(OpFamily):
    name = "attention"
    expected_gain = 2.0
    flops_per_point = None
    reduction_roles: ClassVar[frozenset[str]] = frozenset({"head", "keys"})
    prompt_notes = (
        "LinalgExtTileAndVectorize on online attention: distribution and vector tiles on m and n, "
        "a keys step in vector_reduction; head (the head dimension, IREE's k1) is never tiled. Each step "
        "builds an m x keys score block against the whole head, so m x keys x head bounds the vector size."
    )

    def recognise(self, op, maps, bounds):
        if op.name != OP_NAME:
            return None
        roles = attention_roles(maps)
        if roles is None:
            return None
        # outs are (output, running max, running sum)
        return Recognised(tuple(roles), operands_matcher(op, maps, len(list(op.operands)) - 3))

    def check_config(
        self, config, loops: tuple[Loop, ...], vector_limit: int, native_vector_bytes: int = 32
    ) -> list[str]:
        tiles = config.tile_map
        roles = [loop.role for loop in loops]
        errors = []
        for level in ("distribution", "vector_common_parallel"):
            for role, size in zip(roles, tiles.get(level, ())):
                if role in ("head", "keys") and size:
                    errors.append(f"{level} must not tile {role} (got {size})")
        vector = tiles.get("vector_common_parallel", (0,) * len(loops))
        reduction = tiles.get("vector_reduction", (0,) * len(loops))
        m_step = math.prod(v or 1 for v, r in zip(vector, roles) if r in ("batch", "m"))
        keys_step = math.prod(v or l.bound for v, l in zip(reduction, loops) if l.role == "keys")
        head = math.prod(l.bound for l in loops if l.role == "head")
        # The score contraction's whole iteration space is one vector contraction: IREE's
        # large-vector check applies to it as to any vector.
        if m_step * keys_step * head >= vector_limit:
            errors.append(
                f"score step m x keys x head = {m_step} x {keys_step} x {head} reaches {vector_limit} elements "
                "(IREE rejects the vector contraction on this CPU)"
            )
        return errors
