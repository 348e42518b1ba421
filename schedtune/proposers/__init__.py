"""Proposers: a few named skeletons per dispatch (structure fixed, numeric knobs as choices)."""

from ._base import PipelineProposal, PipelineRequest, Proposal, ProposalRequest, Proposer, fixed_pipelines
from ._heuristic import HeuristicProposer, default_values

__all__ = [
    "HeuristicProposer",
    "PipelineProposal",
    "PipelineRequest",
    "Proposal",
    "ProposalRequest",
    "Proposer",
    "default_values",
    "fixed_pipelines",
]
