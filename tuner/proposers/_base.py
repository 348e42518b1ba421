"""What every proposer gets and returns."""
from __future__ import annotations

import dataclasses
from typing import Protocol

from ..dispatches import TuningTarget
from ..spaces import KnobSpace, Skeleton


@dataclasses.dataclass(frozen=True)
class ProposalRequest:
    """One dispatch's context: never the whole model (context size broke earlier attempts)."""

    target: TuningTarget
    space: KnobSpace
    past_results: tuple[dict, ...] = ()


@dataclasses.dataclass(frozen=True)
class Proposal:
    skeletons: tuple[Skeleton, ...]
    source: str  # heuristic | llm | llm->heuristic (fallback)
    notes: tuple[str, ...] = ()


class Proposer(Protocol):
    def propose(self, request: ProposalRequest) -> Proposal: ...
