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

from ..families import get_family

# Expectations closer than this (relative) are a tie whatever the spread says: the family
# gains are priors, not measurements.
MIN_MARGIN = 0.08


@dataclasses.dataclass(frozen=True)
class BuildCandidate:
    """A flag set that compiled and gave correct results, with its measurements."""

    name: str
    flags: tuple[str, ...]
    median_ms: float
    spread: float  # (slowest - fastest round) / median, over its interleaved rounds
    tunable: dict[str, float]  # op family -> share of this build's time a spec can tune

    @property
    def tunable_share(self) -> float:
        return sum(self.tunable.values())

    @property
    def expected_ms(self) -> float:
        """Time after tuning if every tunable family gains its prior."""
        left = 1.0 - self.tunable_share
        for family, share in self.tunable.items():
            owner = get_family(family)
            left += share / (owner.expected_gain if owner else 1.0)
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
    """The build(s) to tune under: the best expectation and those tied with it.

    Builds with nothing tunable are never tuned (the fastest flags alone are weighed at the
    export either way).
    """
    tunable = [c for c in candidates if c.tunable_share > 0]
    expected = {c.name: c.expected_ms for c in candidates}
    if not tunable:
        return TuningPlan((fastest,), fastest, expected, MIN_MARGIN)
    ranked = sorted(tunable, key=lambda c: (c.expected_ms, c.name != fastest))
    best = ranked[0]
    chosen = [best]
    for other in ranked[1:]:
        margin = max(MIN_MARGIN, best.spread, other.spread)
        if len(chosen) < max_builds and other.expected_ms <= best.expected_ms * (1 + margin):
            chosen.append(other)
    margin = max([MIN_MARGIN] + [c.spread for c in chosen])
    return TuningPlan(tuple(c.name for c in chosen), fastest, expected, margin)
