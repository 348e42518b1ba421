"""Skeletons derived from IREE's own default config and the family's space, no LLM needed."""

from __future__ import annotations

from ..spaces import Skeleton, loop_names
from ..spec import TRANSFORM_DIALECT
from ._base import Proposal, ProposalRequest, Proposer


def _around(value: int, legal: list[int]) -> list[int]:
    """Legal values within a factor of 4 of IREE's choice (IREE is usually close, rarely best)."""
    if value == 0:
        return [0] if 0 in legal else legal[:1]
    near = [v for v in legal if v and value / 4 <= v <= value * 4]
    if value in legal and value not in near:
        near.append(value)
    return sorted(set(near)) or legal


class HeuristicProposer(Proposer):
    """A neighbourhood of IREE's default, the family's skeleton library, and the whole space.

    The neighbourhood skeleton contains the default config itself, so the first trial can
    reproduce IREE's choice through the spec: a baseline measured the same way as every
    candidate.
    """

    def propose(self, request: ProposalRequest) -> Proposal:
        root = request.target.root
        space = request.space
        loops = loop_names(root)
        skeletons = []
        default = root.default_config
        if default is not None and default.pipeline in space.pipelines:
            dtiles = default.tile_map
            levels = {}
            for lvl in space.levels:
                if lvl in space.ties:
                    continue
                levels[lvl] = {}
                for i, (loop, l) in enumerate(zip(loops, root.loops)):
                    legal = space.legal_values(lvl, loop, l.bound)
                    dval = dtiles.get(lvl, (0,) * len(loops))[i] if lvl in dtiles else None
                    if dval is None:
                        levels[lvl][loop] = legal[:1] if len(legal) == 1 else [legal[0]]
                    elif space.is_legal(lvl, loop, l.bound, dval):
                        # IREE's vector tile can exceed the loop (16 on a 3-tap filter row).
                        levels[lvl][loop] = sorted(set(_around(min(dval, l.bound), legal)) | {dval})
                    else:
                        levels[lvl][loop] = legal
            peeling = sorted({default.loop_peeling, *space.loop_peeling}, reverse=True)
            ties = {lvl: src for lvl, src in space.ties.items() if lvl in dtiles}
            skeletons.append(
                Skeleton.make(
                    "near-default",
                    default.pipeline,
                    peeling,
                    levels,
                    ties,
                    "IREE's default config and tiles within 4x of it",
                )
            )
        skeletons += space.library_skeletons(root)
        if TRANSFORM_DIALECT in space.pipelines:
            skeletons.append(space.transform_skeleton(root))
        full = space.full_skeleton(root)
        skeletons.append(
            Skeleton.make(
                full.name, full.pipeline, list(full.loop_peeling), full.level_map, dict(full.ties), full.rationale
            )
        )
        valid = [s for s in skeletons if not space.check_skeleton(s, root)]
        return Proposal(tuple(valid), "heuristic")


def default_values(skeleton: Skeleton, request: ProposalRequest) -> dict[str, int] | None:
    """Knob values that reproduce IREE's default config inside `skeleton` (None if outside it)."""
    default = request.target.root.default_config
    if default is None:
        return None
    return skeleton.values_for(default, loop_names(request.target.root))
