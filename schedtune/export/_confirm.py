"""Merge winners into one spec and confirm the speed-up in the whole model, A/B interleaved.

A winner is kept only if its dispatches are faster in the tuned full-model build than in
the default build measured in the same run; the end-to-end number reported is the
interleaved median ratio with its spread, never a per-dispatch estimate.
"""

from __future__ import annotations

import dataclasses
import logging
import pathlib
import shutil
import statistics
from collections.abc import Callable

from .. import iree
from ..builds import ModelContext
from ..dispatches import TuningTarget
from ..files import write_together
from ..pipelines import with_scripts_in
from ..spec import CompilationConfig, render_spec, uses_codegen_library
from ..store import Cache, TrialStatus, cache_key

log = logging.getLogger("schedtune")


@dataclasses.dataclass
class Confirmation:
    default_ms: list[float]
    tuned_ms: list[float]
    rounds: int
    kept: list[str]  # target labels whose config is in the final spec
    dropped: dict[str, str]  # label -> why
    per_target_ns: dict[str, tuple[float, float]]  # label -> (default, tuned) in the full model
    spec_text: str
    max_error: float
    configs: dict[str, dict] = dataclasses.field(default_factory=dict)  # label -> kept config (JSON form)

    @property
    def default_median(self) -> float:
        return statistics.median(self.default_ms)

    @property
    def tuned_median(self) -> float:
        return statistics.median(self.tuned_ms)

    @property
    def speedup(self) -> float:
        return self.default_median / self.tuned_median

    @property
    def speedup_range(self) -> tuple[float, float]:
        """Per-round ratios (round i default / round i tuned): min and max."""
        ratios = [d / t for d, t in zip(self.default_ms, self.tuned_ms)]
        return min(ratios), max(ratios)

    def to_json(self) -> dict:
        lo, hi = self.speedup_range
        return {
            "rounds": self.rounds,
            "default_ms": self.default_ms,
            "tuned_ms": self.tuned_ms,
            "default_median_ms": self.default_median,
            "tuned_median_ms": self.tuned_median,
            "speedup": self.speedup,
            "speedup_min": lo,
            "speedup_max": hi,
            "kept": self.kept,
            "dropped": self.dropped,
            "per_target_ns": {k: list(v) for k, v in self.per_target_ns.items()},
            "max_error": self.max_error,
            "spec_text": self.spec_text,
            "configs": self.configs,
        }

    @classmethod
    def from_json(cls, data: dict) -> Confirmation:
        return cls(
            default_ms=data["default_ms"],
            tuned_ms=data["tuned_ms"],
            rounds=data["rounds"],
            kept=data["kept"],
            dropped=data["dropped"],
            per_target_ns={k: tuple(v) for k, v in data["per_target_ns"].items()},
            spec_text=data["spec_text"],
            max_error=data["max_error"],
            configs=data.get("configs", {}),
        )


Winner = tuple[TuningTarget, CompilationConfig]
# Called with a winner whose spec gives wrong results in the merged build: its cached verdict
# is withdrawn so no later run picks it again.
OnWrong = Callable[[TuningTarget, CompilationConfig, str], None]


@dataclasses.dataclass
class _Attempt:
    ok: bool
    vmfb: pathlib.Path | None = None
    reason: str = ""
    wrong: bool = False  # built, but the outputs are wrong
    max_error: float = 0.0


class _Builder:
    """Builds of one model at the export, numbered; each checked against the reference.

    A search that found something must not end with nothing because one build failed: the
    callers drop what breaks a build and keep the rest.
    """

    def __init__(self, model: ModelContext, reference: list, work: pathlib.Path) -> None:
        self.model, self.reference, self.work = model, reference, work
        self.count = 0

    def build(self, winners: list[Winner], *, flags: list[str] | None = None, check: bool = True) -> _Attempt:
        spec_text = render_spec([(t.root.matcher, c) for t, c in winners]) if winners else None
        self.count += 1
        name = f"build_{self.count}"
        built = self.model.compile(self.work, flags=flags, spec_text=spec_text, name=name)  # retries a hang
        if not built.ok:
            return _Attempt(False, reason=f"compile {built.status}: {(built.error.splitlines() or [''])[0][:200]}")
        if not check:
            return _Attempt(True, built.vmfb)
        numerics = self.model.check(built.vmfb, self.work / f"{name}_run", self.reference)
        if not numerics.ok:
            return _Attempt(False, reason=numerics.error, wrong=numerics.status == TrialStatus.WRONG_RESULT)
        return _Attempt(True, built.vmfb, max_error=numerics.max_error or 0.0)

    def largest_working(
        self, winners: list[Winner], dropped: dict[str, str], on_wrong: OnWrong | None
    ) -> tuple[list[Winner], _Attempt]:
        """All winners if their merged build works; else, best first, each winner that still
        builds and checks with those kept before it (the others are dropped with the reason)."""
        merged = self.build(winners)
        if merged.ok or not winners:
            return list(winners), merged
        log.info("the merged tuned build failed (%s); adding winners one at a time", merged.reason)
        kept: list[Winner] = []
        last = _Attempt(False, reason="nothing built")
        for target, config in winners:
            attempt = self.build([*kept, (target, config)])
            if attempt.ok:
                kept.append((target, config))
                last = attempt
                continue
            dropped[target.label] = f"the tuned build fails with it: {attempt.reason}"
            log.info("dropping %s: %s", target.label, dropped[target.label])
            if attempt.wrong and on_wrong is not None:
                on_wrong(target, config, f"wrong results in the merged build at the export: {attempt.reason}")
        if not kept:
            last = self.build([])
        return kept, last


def confirm(
    model: ModelContext,
    default_flags: list[str],
    winners: list[Winner],
    reference: list,
    cache: Cache,
    *,
    rounds: int,
    min_gain: float = 0.02,
    on_wrong: OnWrong | None = None,
) -> Confirmation:
    """Build default and tuned, drop winners that break the build or do not help in the model,
    then A/B `rounds` times.

    `winners` come most valuable first: when the merged build fails, they are added back in
    that order. Winners are judged per dispatch against the same build without the spec; the
    end-to-end A/B is against IREE's default (`default_flags`, no spec).
    """
    spec_text = render_spec([(t.root.matcher, c) for t, c in winners])
    key = cache_key(
        kind="confirm", method=4, model=model.build_key(), default_flags=default_flags, spec=spec_text, rounds=rounds
    )
    hit = cache.get(key)
    if hit is not None:
        return Confirmation.from_json(hit)
    work = model.workdir / "confirm"
    shutil.rmtree(work, ignore_errors=True)
    builder = _Builder(model, reference, work)
    default = builder.build([], flags=default_flags, check=False)
    if not default.ok:
        raise iree.ToolError(f"default build failed: {default.reason}")

    # Each winner is judged against its own dispatches without the spec: under tuning flags
    # (im2col, ...) those dispatches do not exist in the default build at all.
    untuned_vmfb = default.vmfb
    if winners and list(model.flags) != list(default_flags):
        untuned = builder.build([], check=False)
        if not untuned.ok:
            raise iree.ToolError(f"build with the tuning flags failed: {untuned.reason}")
        untuned_vmfb = untuned.vmfb

    dropped: dict[str, str] = {}
    per_target: dict[str, tuple[float, float]] = {}
    kept, tuned = builder.largest_working(list(winners), dropped, on_wrong)
    while kept:
        # Profile both builds twice, interleaved, and keep each target's best showing.
        default_t: dict[str, float] = {}
        tuned_t: dict[str, float] = {}
        for _ in range(2):
            prof_d = iree.profile_dispatches(
                untuned_vmfb, model.entry, model.inputs, work / "prof_d", scheduling=model.scheduling
            )
            prof_t = iree.profile_dispatches(
                tuned.vmfb, model.entry, model.inputs, work / "prof_t", scheduling=model.scheduling
            )
            for t, _c in kept:
                default_t[t.label] = min(default_t.get(t.label, float("inf")), iree.dispatches_ns(prof_d, t.dispatches))
                tuned_t[t.label] = min(tuned_t.get(t.label, float("inf")), iree.dispatches_ns(prof_t, t.dispatches))
        for t, _c in kept:
            per_target[t.label] = (default_t[t.label], tuned_t[t.label])
        losers = [(t, c) for t, c in kept if tuned_t[t.label] > default_t[t.label] * (1 - min_gain)]
        if not losers:
            break
        for t, c in losers:
            dropped[t.label] = (
                f"not faster in the full model ({tuned_t[t.label] / 1e6:.3f} ms tuned vs {default_t[t.label] / 1e6:.3f} ms default)"
            )
            kept.remove((t, c))
            log.info("dropping %s: %s", t.label, dropped[t.label])
        kept, tuned = builder.largest_working(kept, dropped, on_wrong)
    if not tuned.ok:
        raise iree.ToolError(f"the build with the tuning flags alone failed: {tuned.reason}")

    default_ms: list[float] = []
    tuned_ms: list[float] = []
    iterations = model.round_iterations(default.vmfb)  # the same for both builds
    model.benchmark(tuned.vmfb, 3)  # its warm-up
    for _ in range(rounds):
        default_ms.append(model.benchmark(default.vmfb, iterations))
        tuned_ms.append(model.benchmark(tuned.vmfb, iterations))
    spec_text = render_spec([(t.root.matcher, c) for t, c in kept])
    result = Confirmation(
        default_ms,
        tuned_ms,
        rounds,
        [t.label for t, _ in kept],
        dropped,
        per_target,
        spec_text,
        tuned.max_error,
        {t.label: c.to_json() for t, c in kept},
    )
    # A result with dropped builds may be transient (a hung compile): not cached, re-tried next run.
    if not any("the tuned build fails" in why for why in dropped.values()):
        cache.put(key, "confirm", "confirmation", result.to_json())
    return result


def head_to_head(
    builds: list[tuple[ModelContext, str]], cache: Cache, work: pathlib.Path, *, rounds: int
) -> list[list[float]] | None:
    """Every (model, spec text) built and timed in the same interleaved rounds, with the same
    calls per round: ms per call, one list per build in the order given (None when one does
    not build; then there is nothing to race).

    Each build's speed-up was measured against the default in a run of its own, one after
    another. On a machine whose speed drifts between runs (a shared host, a CPU that throttles
    under long vector loads) two such ratios do not compare; times taken side by side do. The
    builds were confirmed with these very flags and specs, so their numerics are known."""
    key = cache_key(kind="head_to_head", method=1, builds=[[m.build_key(), spec] for m, spec in builds], rounds=rounds)
    hit = cache.get(key)
    if hit is not None:
        return hit["ms"]
    shutil.rmtree(work, ignore_errors=True)
    vmfbs = []
    for i, (model, spec_text) in enumerate(builds):
        built = model.compile(work, spec_text=spec_text or None, name=f"contender_{i}")
        if not built.ok:
            log.warning("head to head: contender %d did not build again (%s): not raced", i, built.status)
            return None
        vmfbs.append(built.vmfb)
    model = builds[0][0]  # entry, inputs and policy are the same for every build
    ms: list[list[float]] = [[] for _ in vmfbs]
    try:
        iterations = model.round_iterations(vmfbs[0])
        for vmfb in vmfbs:
            model.benchmark(vmfb, 3)  # warm-up
        for _ in range(rounds):
            for times, vmfb in zip(ms, vmfbs):
                times.append(model.benchmark(vmfb, iterations))
    except iree.ToolError as exc:  # a hung or failed run: the contenders' own speed-ups decide
        log.warning("head to head: %s; not raced", exc)
        return None
    cache.put(key, "head_to_head", "times", {"ms": ms})
    return ms


def write_exports(folder: pathlib.Path, confirmation: Confirmation, tuned_flags: list[str]) -> list[str]:
    """Write the spec and the flags (any transform script a pipeline names copied next to
    them); returns the flags as written."""
    folder.mkdir(parents=True, exist_ok=True)
    flags = with_scripts_in(tuned_flags, folder / "pipeline_scripts")
    if uses_codegen_library(confirmation.spec_text):
        flags.append(f"--iree-codegen-transform-dialect-library={(folder / 'tuning_spec.mlir').resolve()}")
    write_together(
        folder, {"tuning_spec.mlir": confirmation.spec_text, "compile_flags.txt": "".join(f"{f}\n" for f in flags)}
    )
    return flags
