"""What every proposer gets and returns."""
from __future__ import annotations

import dataclasses
from typing import Callable, Protocol

from ..dispatches import TuningTarget
from ..spaces import KnobSpace, Skeleton
from ..spec import CompilationConfig


@dataclasses.dataclass(frozen=True)
class ProposalRequest:
    """One dispatch's context: never the whole model (context size broke earlier attempts).

    `check_config` compiles one config in the model and returns the compiler's error (None
    when it compiled and was applied): proposers use it to validate a skeleton's centre point.
    """

    target: TuningTarget
    space: KnobSpace
    cpu_features: str = ""
    check_config: Callable[[CompilationConfig], str | None] | None = None


@dataclasses.dataclass(frozen=True)
class Proposal:
    skeletons: tuple[Skeleton, ...]
    source: str  # heuristic | llm | llm->heuristic (fallback)
    notes: tuple[str, ...] = ()


class Proposer(Protocol):
    def propose(self, request: ProposalRequest) -> Proposal: ...
