"""Which model-level build(s) to tune dispatches under.

Flags change which ops a spec can match: data tiling + ukernels turn matmuls into mmt4d calls
no spec matches, im2col turns batch-1 convs (which drop a spec's config) into matmuls. A build
is judged by what it is expected to give end to end once tuned: its own measured time, with
the time in tunable ops cut by each family's expected gain. Builds whose expectations lie
within the measurement spread (and a floor margin) of the best are all tuned, up to
`max_builds`, and the end-to-end confirmation picks among them: a one-point wobble in a noisy
share cannot flip the result.
"""

from __future__ import annotations

import dataclasses

from ..families import expected_gain, max_expected_gain

# Expectations closer than this (relative) are a tie whatever the spread says: the family
# gains are priors, not measurements.
MIN_MARGIN = 0.08

# Room for noise when ruling a build out before its analysis (see `within_reach`).
REACH_MARGIN = 0.25


def within_reach(median_ms: float, fastest_ms: float) -> bool:
    """Whether a build measured at `median_ms` could still be expected to tie with the fastest
    build once tuned: even with all its time in the family of the largest prior it must come
    within `REACH_MARGIN` of the fastest build's untuned time. A build out of reach is not
    analysed or raced further (on a model whose default build takes a second per call those
    measurements took most of a job's time)."""
    return median_ms / max_expected_gain() <= fastest_ms * (1 + REACH_MARGIN)


@dataclasses.dataclass(frozen=True)
class BuildCandidate:
    """A flag set that compiled and gave correct results, with its measurements."""

    name: str
    flags: tuple[str, ...]
    median_ms: float
    spread: float  # (slowest - fastest round) / median, over its interleaved rounds
    tunable: dict[str, float]  # op family -> share of this build's time a spec can tune
    targets: frozenset[str] = frozenset()  # root-op signatures of its tunable dispatches

    @property
    def tunable_share(self) -> float:
        return sum(self.tunable.values())

    @property
    def expected_ms(self) -> float:
        """Time after tuning if every tunable family gains its prior."""
        left = 1.0 - self.tunable_share
        for family, share in self.tunable.items():
            left += share / expected_gain(family)
        return self.median_ms * left


@dataclasses.dataclass(frozen=True)
class TuningPlan:
    builds: tuple[str, ...]  # names to tune under, most promising first
    fastest: str  # the fastest flag set alone (weighed against the tuned builds at the export)
    expected_ms: dict[str, float]
    margin: float

    def describe(self) -> str:
        parts = ", ".join(f"{n} {ms:.2f} ms" for n, ms in sorted(self.expected_ms.items(), key=lambda kv: kv[1]))
        return f"expected after tuning: {parts}; margin {100 * self.margin:.0f}%; tuning under {', '.join(self.builds)}"


def plan_tuning_builds(candidates: list[BuildCandidate], fastest: str, max_builds: int = 2) -> TuningPlan:
    """The build(s) to tune under: those whose expectation ties with the best one.

    Among more tied builds than `max_builds`, the ones with the fewest flags win, then the
    order of `candidates` (the order of spaces/model_flags.yaml): within the noise, which of
    them looks best is chance, and chance must not pick the build. A tied build whose
    tunable ops are all in an already chosen build is passed over. Builds with nothing
    tunable are never tuned (the fastest flags alone are weighed at the export either way).
    """
    tunable = [c for c in candidates if c.tunable_share > 0]
    expected = {c.name: c.expected_ms for c in candidates}
    if not tunable:
        return TuningPlan((fastest,), fastest, expected, MIN_MARGIN)
    best = min(tunable, key=lambda c: c.expected_ms)
    tied = [c for c in tunable if c.expected_ms <= best.expected_ms * (1 + max(MIN_MARGIN, best.spread, c.spread))]
    order = {c.name: i for i, c in enumerate(candidates)}
    chosen: list[BuildCandidate] = []
    for c in sorted(tied, key=lambda c: (len(c.flags), order[c.name])):
        # A build whose tunable ops another chosen build already has offers nothing new to
        # tune (data tiling on a conv net only takes its classifier's matmul away).
        if len(chosen) < max_builds and not any(c.targets and c.targets <= o.targets for o in chosen):
            chosen.append(c)
    margin = max([MIN_MARGIN] + [c.spread for c in tied])
    return TuningPlan(tuple(c.name for c in chosen), fastest, expected, margin)
