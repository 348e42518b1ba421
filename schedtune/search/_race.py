"""The search's best few configs raced against IREE's default before one is picked.

A trial is one profile of the model: a noisy sample. The best of thirty noisy samples is the
luckiest one (the winner's curse), and on a noisy machine most such winners were dropped at
the export as "not faster in the full model". The top few configs and the default, timed
again in interleaved rounds with the median deciding, give a winner that holds up, and the
report's per-dispatch speed-ups rest on that measurement, not on the luckiest sample.
"""

from __future__ import annotations

import dataclasses
import logging
import statistics

from ..evaluation import Evaluator
from ._study import TargetOutcome

log = logging.getLogger("schedtune")

RACE_TOP = 3  # the search's fastest configs that race the default
RACE_ROUNDS = 5


def race(outcome: TargetOutcome, evaluator: Evaluator, top: int = RACE_TOP, rounds: int = RACE_ROUNDS) -> TargetOutcome:
    """`outcome` with its ranking, best and baseline from the race (unchanged when nothing
    beat the default in the search: there is nothing to pick)."""
    default = outcome.target.root.default_config
    if default is None or outcome.best_ns is None or outcome.baseline_ns is None or rounds < 1:
        return outcome
    if outcome.best_ns >= outcome.baseline_ns:
        return outcome
    contenders = [c for c, _ in outcome.ranked if evaluator.usable(outcome.target, c) and c != default][:top]
    if not contenders:
        return outcome
    contenders.append(default)
    times = evaluator.race(outcome.target, contenders, rounds)
    ranked = sorted(
        ((config, statistics.median(ts)) for config, ts in zip(contenders, times) if ts), key=lambda p: p[1]
    )
    baseline = next((ns for config, ns in ranked if config == default), None)
    if baseline is None:  # the default's build failed here: keep the search's view
        return outcome
    log.info(
        "%s: raced %d config(s) and the default over %d rounds: best %.0f ns, default %.0f ns (search: %.0f, %.0f)",
        outcome.target.label,
        len(contenders) - 1,
        rounds,
        ranked[0][1],
        baseline,
        outcome.best_ns,
        outcome.baseline_ns,
    )
    return dataclasses.replace(
        outcome, ranked=tuple(ranked), best_config=ranked[0][0], best_ns=ranked[0][1], baseline_ns=baseline
    )
