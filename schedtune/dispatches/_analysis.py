"""The dispatch stage's input: a model's default build under some flags, timed in the model."""

from __future__ import annotations

import dataclasses
import functools
import json
from typing import TYPE_CHECKING

from .. import iree
from ..families import SCRIPTED
from ..files import write_atomic
from ._analyze import Dispatch, read_configured_executables
from ._targets import DispatchRow, TuningTarget, find_targets

if TYPE_CHECKING:
    from ..builds import ModelContext


@dataclasses.dataclass(frozen=True)
class Analysis:
    """Every dispatch of one build (root op, IREE's default config) and its in-model time."""

    dispatches: dict[str, Dispatch]
    timings: dict[str, iree.DispatchTiming]

    @property
    def families(self) -> set[str]:
        return {d.root.family for d in self.dispatches.values() if d.root is not None}

    @functools.cached_property
    def _everything(self) -> tuple[list[TuningTarget], list[DispatchRow]]:
        # No time-share cut: a target of no measurable time is still one (a winner may be
        # carried onto it), and each dispatch is at most one target.
        return find_targets(
            self.dispatches, self.timings, time_share=float("inf"), max_targets=len(self.timings) + 1, scripts=True
        )

    @property
    def all_targets(self) -> list[TuningTarget]:
        """Every tuning target of this build, hottest first, whatever its share of the time."""
        return self._everything[0]

    @property
    def _rows(self) -> list[DispatchRow]:
        """Every dispatch with its tuning target key (None: no spec can tune it)."""
        return self._everything[1]

    @property
    def tunable_targets(self) -> frozenset[str]:
        """Root-op signatures of the dispatches a spec can tune."""
        return frozenset(r.target_key for r in self._rows if r.target_key is not None)

    @property
    def tunable_share(self) -> float:
        """Share of the model's time a spec can tune, all families together."""
        return sum(self.tunable.values())

    @property
    def family_shares(self) -> dict[str, float]:
        """Op family (or "other": no tunable root op) -> share of the model's time."""
        shares: dict[str, float] = {}
        for row in self._rows:
            family = row.family if row.target_key is not None else "other"
            shares[family] = shares.get(family, 0.0) + row.share
        return shares

    @property
    def hottest(self) -> list[tuple[str, float]]:
        """(dispatch name, share of the model's time), hottest first."""
        return [(r.name, r.share) for r in sorted(self._rows, key=lambda r: -r.share)]

    @property
    def tunable(self) -> dict[str, float]:
        """Op family -> share of the model's time a spec can tune; the time only transform
        scripts reach is under `families.SCRIPTED`, with a prior of its own."""
        shares: dict[str, float] = {}
        for row in self._rows:
            if row.target_key is not None:
                key = SCRIPTED if row.scripted else row.family
                shares[key] = shares.get(key, 0.0) + row.share
        return shares


def analyze_model(model: ModelContext) -> Analysis:
    """Build with IREE's defaults under the model's flags, read every dispatch, profile them.

    Kept on disk under the model's build key (model content, inputs, flags, compiler, CPU): a
    re-run reads it back, a new IREE or an edited model analyses again.
    """
    folder = model.workdir / f"analysis_{model.build_key()}"
    timings_file = folder / "timings.json"
    if not timings_file.exists():
        built = model.compile(folder, dump_configs=True, name="default")
        if not built.ok:
            raise iree.ToolError(f"the model does not compile with IREE's defaults: {built.error}")
        timings = iree.profile_dispatches(
            built.vmfb,
            model.entry,
            model.inputs,
            folder / "profile",
            iterations=30,
            timeout_s=model.run_timeout_s,
            scheduling=model.scheduling,
        )
        write_atomic(timings_file, json.dumps({k: dataclasses.asdict(v) for k, v in timings.items()}))
    timings = {k: iree.DispatchTiming(**v) for k, v in json.loads(timings_file.read_text()).items()}
    return Analysis(read_configured_executables(folder / "default_configs"), timings)
