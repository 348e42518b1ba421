"""What every proposer gets and returns."""

from __future__ import annotations

import abc
import dataclasses
import pathlib
from collections.abc import Callable
from typing import Any

from ..dispatches import TuningTarget
from ..pipelines import Pipeline, PipelineSpace
from ..spaces import FlagCandidate, KnobSpace, Skeleton
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


@dataclasses.dataclass(frozen=True)
class PipelineRequest:
    """The model-level question: which passes, in which order, under which flags.

    The model is summarised (op families' time shares, the hottest dispatches), never given
    whole. `check` returns why a pipeline cannot be compiled (space, iree-opt), or None.
    """

    space: PipelineSpace  # the passes and flag groups that can act on this model
    fixed: tuple[FlagCandidate, ...]  # today's fixed flag sets for the model (spaces/model_flags.yaml)
    shares: dict[str, float]  # op family -> share of the default build's time
    hot_dispatches: tuple[tuple[str, float], ...] = ()  # (dispatch label, share), hottest first
    past: tuple[tuple[str, str, float | None], ...] = ()  # (pipeline, status, time ratio) measured before
    check: Callable[[Pipeline], str | None] | None = None


@dataclasses.dataclass(frozen=True)
class PipelineProposal:
    pipelines: tuple[tuple[Pipeline, str], ...]  # (pipeline, source), in the order to try them
    notes: tuple[str, ...] = ()


def fixed_pipelines(request: PipelineRequest) -> list[tuple[Pipeline, str]]:
    """Today's fixed flag sets as points of the pipeline space (IREE's default first)."""
    out = []
    for candidate in request.fixed:
        pipeline = request.space.from_flags(candidate.flags)
        if pipeline is not None and pipeline not in {p for p, _ in out}:
            out.append((pipeline, "heuristic"))
    return out


class Proposer(abc.ABC):
    """Base class of proposers: skeletons for one dispatch at a time."""

    @abc.abstractmethod
    def propose(self, request: ProposalRequest) -> Proposal:
        """A few skeletons for `request`'s dispatch, each valid in its space."""

    def propose_pipelines(self, request: PipelineRequest) -> PipelineProposal:
        """Model-level pipelines to try first; by default today's fixed flag sets."""
        return PipelineProposal(tuple(fixed_pipelines(request)))

    def close(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release what the proposer holds (e.g. a local model server)."""

    def write_records(self, folder: pathlib.Path) -> dict[str, Any] | None:
        """Write per-call records into `folder`; return their summary for summary.json (None: nothing to say)."""
        return None
