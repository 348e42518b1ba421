"""What every proposer gets and returns."""

from __future__ import annotations

import abc
import dataclasses
import pathlib
from collections.abc import Callable
from typing import Any

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

    @property
    def fell_back(self) -> bool:
        """The configured proposer failed and the heuristic one stood in."""
        return self.source.endswith("->heuristic")


class Proposer(abc.ABC):
    """Base class of proposers: skeletons for one dispatch at a time."""

    @abc.abstractmethod
    def propose(self, request: ProposalRequest) -> Proposal:
        """A few skeletons for `request`'s dispatch, each valid in its space."""

    def close(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release what the proposer holds (e.g. a local model server)."""

    def write_records(self, folder: pathlib.Path) -> dict[str, Any] | None:
        """Write per-call records into `folder`; return their summary for summary.json (None: nothing to say)."""
        return None
