"""What ships: the winners worth exporting, and which end-to-end build wins.

Candidates are the tuned build(s) (each confirmed with its spec), the fastest flags alone
(when they differ from every tuning build's flags) and, implicitly, IREE's default: nothing
slower than the default end to end is exported.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Callable

from ..dispatches import TuningTarget
from ..spec import CompilationConfig
from ._confirm import Confirmation

# A best trial must beat the baseline by this much to be worth confirming.
MIN_SEARCH_GAIN = 0.02
# Contenders whose head-to-head medians lie within this share of the fastest tie: the race
# cannot tell them apart, and their own confirmations decide.
RACE_TIE = 0.01
# What `ExportDecision.shipped` is called when nothing is exported (build names are flag-set names,
# and the flag set without flags is called "default").
NOTHING = "none"


def select_winners(
    outcomes, usable: Callable[[TuningTarget, CompilationConfig], bool]
) -> list[tuple[TuningTarget, CompilationConfig]]:
    """Per target, the fastest config that is not IREE's default, beats the baseline and whose
    verdict still stands (`usable`); most time saved first."""
    picked = []
    for o in outcomes:
        baseline = o.baseline_ns or o.target.default_ns
        default = o.target.root.default_config.canonical() if o.target.root.default_config else None
        for config, ns in o.ranked:
            if ns >= baseline * (1 - MIN_SEARCH_GAIN):
                break
            if config.canonical() == default or not usable(o.target, config):
                continue
            picked.append((baseline - ns, o.target, config))
            break
    picked.sort(key=lambda p: -p[0])
    return [(t, c) for _, t, c in picked]


def carry_winners(
    winners: list[tuple[TuningTarget, CompilationConfig]], targets: list[TuningTarget]
) -> list[tuple[TuningTarget, CompilationConfig]]:
    """`winners` re-targeted at the same root ops among another build's `targets` (its own
    dispatch names), in the same order; a winner whose op that build lacks is left out.

    Flags that leave an op alone (data tiling and attention) leave its dispatch, and so its
    tuned config, as it was: the fastest flags need not give up what tuning found elsewhere.
    """
    by_signature = {t.root.signature: t for t in targets}
    carried, seen = [], set()
    for target, config in winners:
        own = by_signature.get(target.root.signature)
        if own is not None and own.root.signature not in seen:
            seen.add(own.root.signature)
            carried.append((own, config))
    return carried


@dataclasses.dataclass
class Contender:
    """One end-to-end candidate: a tuned build (with its spec) or flags alone."""

    name: str
    flags: list[str]
    confirmation: Confirmation
    tuned: bool  # carries dispatch configs (a tuning build) rather than flags alone
    race_ms: list[float] = dataclasses.field(default_factory=list)  # head to head with the others

    @property
    def speedup(self) -> float:
        return self.confirmation.speedup

    @property
    def race_median(self) -> float | None:
        return statistics.median(self.race_ms) if self.race_ms else None


@dataclasses.dataclass
class ExportDecision:
    shipped: Contender
    contenders: list[Contender]
    withdrawn: dict | None  # the best contender, when it was slower than the default
    note: str  # why a tuned build did not ship, if it did not
    race_tie: list[str] = dataclasses.field(default_factory=list)  # contenders the race could not tell apart

    def to_json(self) -> dict:
        return {
            "shipped": self.shipped.name,
            "flags": self.shipped.flags,
            "contenders": [
                {
                    "name": c.name,
                    "flags": c.flags,
                    "tuned": c.tuned,
                    "speedup": c.speedup,
                    "kept": c.confirmation.kept,
                    "head_to_head_ms": c.race_ms,
                }
                for c in self.contenders
            ],
            "withdrawn": self.withdrawn,
            "note": self.note,
            "race_tie": self.race_tie,
        }


def decide_export(contenders: list[Contender], default: Callable[[], Confirmation]) -> ExportDecision:
    """The fastest contender end to end; IREE's default (from `default()`) if even that one is
    slower than the default. Contenders raced head to head (`race_ms`, all of them) are ranked
    by that race, ties (`RACE_TIE`) by their speed-ups; unraced ones by their speed-ups over the
    default, each from a run of its own. No contender (every confirmation failed): nothing ships."""
    if not contenders:
        return ExportDecision(Contender(NOTHING, [], default(), False), [], None, "no tuned build could be confirmed")
    raced = len(contenders) > 1 and all(c.race_ms for c in contenders)
    tied: list[Contender] = []
    if raced:
        fastest = min(c.race_median for c in contenders)
        tied = [c for c in contenders if c.race_median <= fastest * (1 + RACE_TIE)]
        best = max(tied, key=lambda c: c.speedup)

        def said(c: Contender) -> str:
            return f"{c.race_median:.2f} ms head to head"
    else:
        best = max(contenders, key=lambda c: c.speedup)

        def said(c: Contender) -> str:
            return f"{c.speedup:.2f}x"

    note = ""
    if best.tuned is False and any(c.tuned for c in contenders):
        others = ", ".join(f"{c.name} {said(c)}" for c in contenders if c is not best)
        note = f"{best.name} alone was faster end to end ({said(best)}, against {others})"
    elif len([c for c in contenders if c.tuned]) > 1:
        others = ", ".join(f"{c.name} {said(c)}" for c in contenders if c is not best and c.tuned)
        note = f"tuned under {best.name} ({said(best)}) rather than {others}"
    if best.speedup < 1.0 and (best.confirmation.kept or best.flags):
        # Per-dispatch gains that do not add up end to end (or noise) must not ship as a "tuning".
        withdrawn = {"name": best.name, "speedup": best.speedup, "kept": best.confirmation.kept, "flags": best.flags}
        shipped = Contender(NOTHING, [], default(), False)
        return ExportDecision(shipped, contenders, withdrawn, f"the tuned build was {best.speedup:.2f}x end to end")
    return ExportDecision(best, contenders, None, note, [c.name for c in tied] if len(tied) > 1 else [])
