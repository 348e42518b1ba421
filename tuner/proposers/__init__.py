"""Proposers: a few named skeletons per dispatch (structure fixed, numeric knobs as choices)."""

from ._base import Proposal, ProposalRequest, Proposer
from ._heuristic import HeuristicProposer, default_values

__all__ = ["HeuristicProposer", "Proposal", "ProposalRequest", "Proposer", "default_values"]
