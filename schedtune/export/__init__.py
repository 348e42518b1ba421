"""Export stage: winners merged into one spec + flags, confirmed end to end; the build that ships."""

from ._build import ExportedTuning, ExportError, TunedBuild, build_tuned
from ._confirm import Confirmation, confirm, head_to_head, write_exports
from ._decide import RACE_TIE, Contender, ExportDecision, carry_winners, decide_export, select_winners

__all__ = [
    "RACE_TIE",
    "Confirmation",
    "Contender",
    "ExportError",
    "ExportedTuning",
    "TunedBuild",
    "build_tuned",
    "ExportDecision",
    "carry_winners",
    "confirm",
    "decide_export",
    "head_to_head",
    "select_winners",
    "write_exports",
]
