"""Merge winners into one spec and confirm the speed-up in the whole model, A/B interleaved.

A winner is kept only if its dispatches are faster in the tuned full-model build than in
the default build measured in the same run; the end-to-end number reported is the
interleaved median ratio with its spread, never a per-dispatch estimate.
"""
from __future__ import annotations

import dataclasses
import logging
import pathlib
import statistics

from .. import iree
from ..dispatches import TuningTarget
from ..evaluation import Cache, ModelContext, cache_key, outputs_match
from ..spec import CompilationConfig, render_spec

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
        }

    @classmethod
    def from_json(cls, data: dict) -> "Confirmation":
        return cls(
            default_ms=data["default_ms"], tuned_ms=data["tuned_ms"], rounds=data["rounds"], kept=data["kept"],
            dropped=data["dropped"], per_target_ns={k: tuple(v) for k, v in data["per_target_ns"].items()},
            spec_text=data["spec_text"], max_error=data["max_error"],
        )


def _per_call(timings: dict[str, iree.DispatchTiming], names: tuple[str, ...]) -> float:
    in_model = iree.per_call_ns(timings)
    return sum(in_model.get(n, 0.0) for n in names)


def confirm(
    model: ModelContext,
    default_flags: list[str],
    winners: list[tuple[TuningTarget, CompilationConfig]],
    reference: list,
    cache: Cache,
    *,
    rounds: int,
    min_gain: float = 0.02,
) -> Confirmation:
    """Build default and tuned, drop winners that do not help in the model, then A/B `rounds` times.

    Winners are judged per dispatch against the same build without the spec; the end-to-end
    A/B is against IREE's default (`default_flags`, no spec).
    """
    spec_text = render_spec([(t.root.matcher, c) for t, c in winners])
    key = cache_key(kind="confirm", method=2, model=model.model_hash(), default_flags=default_flags, spec=spec_text,
                    rounds=rounds, **model.fingerprint)
    hit = cache.get(key)
    if hit is not None:
        return Confirmation.from_json(hit)
    work = model.workdir / "confirm"
    work.mkdir(parents=True, exist_ok=True)
    default_vmfb = work / "default.vmfb"
    built = iree.compile_model(model.source, default_vmfb, default_flags, timeout_s=model.compile_timeout_s)
    if not built.ok:
        raise iree.ToolError(f"default build failed: {built.error}")

    # Each winner is judged against its own dispatches without the spec: under tuning flags
    # (im2col, ...) those dispatches do not exist in the default build at all.
    untuned_vmfb = default_vmfb
    if winners and list(model.flags) != list(default_flags):
        untuned_vmfb = work / "flags_only.vmfb"
        built = iree.compile_model(model.source, untuned_vmfb, model.flags, timeout_s=model.compile_timeout_s)
        if not built.ok:
            raise iree.ToolError(f"build with the tuning flags failed: {built.error}")

    kept = list(winners)
    dropped: dict[str, str] = {}
    per_target: dict[str, tuple[float, float]] = {}
    tuned_vmfb = work / "tuned.vmfb"
    max_error = 0.0
    while True:
        spec_text = render_spec([(t.root.matcher, c) for t, c in kept])
        spec_path = work / "tuning_spec.mlir"
        spec_path.write_text(spec_text)
        built = iree.compile_model(model.source, tuned_vmfb, model.flags, spec=spec_path if kept else None,
                                   timeout_s=model.compile_timeout_s)
        if not built.ok:
            raise iree.ToolError(f"tuned build failed: {built.error}")
        run = iree.run_model(tuned_vmfb, model.entry, model.inputs, work / "run", timeout_s=model.run_timeout_s)
        ok, max_error = outputs_match(run.outputs, reference) if run.status == "ok" else (False, float("inf"))
        if not ok:
            raise iree.ToolError(f"tuned build gives wrong results (max relative error {max_error:.3g})")
        if not kept:
            break
        # Profile both builds twice, interleaved, and keep each target's best showing.
        default_t: dict[str, float] = {}
        tuned_t: dict[str, float] = {}
        for _ in range(2):
            prof_d = iree.profile_dispatches(untuned_vmfb, model.entry, model.inputs, work / "prof_d")
            prof_t = iree.profile_dispatches(tuned_vmfb, model.entry, model.inputs, work / "prof_t")
            for t, _c in kept:
                default_t[t.label] = min(default_t.get(t.label, float("inf")), _per_call(prof_d, t.dispatches))
                tuned_t[t.label] = min(tuned_t.get(t.label, float("inf")), _per_call(prof_t, t.dispatches))
        losers = [
            (t, c) for t, c in kept if tuned_t[t.label] > default_t[t.label] * (1 - min_gain)
        ]
        for t, _c in kept:
            per_target[t.label] = (default_t[t.label], tuned_t[t.label])
        if not losers:
            break
        for t, c in losers:
            dropped[t.label] = (
                f"not faster in the full model ({tuned_t[t.label] / 1e6:.3f} ms tuned vs {default_t[t.label] / 1e6:.3f} ms default)"
            )
            kept.remove((t, c))
            log.info("dropping %s: %s", t.label, dropped[t.label])

    default_ms: list[float] = []
    tuned_ms: list[float] = []
    for _ in range(rounds):
        default_ms.append(iree.benchmark_model(default_vmfb, model.entry, model.inputs))
        tuned_ms.append(iree.benchmark_model(tuned_vmfb, model.entry, model.inputs))
    result = Confirmation(default_ms, tuned_ms, rounds, [t.label for t, _ in kept], dropped, per_target,
                          spec_text, max_error)
    cache.put(key, "confirm", "confirmation", result.to_json())
    return result


def write_exports(folder: pathlib.Path, confirmation: Confirmation, tuned_flags: list[str]) -> tuple[pathlib.Path, pathlib.Path]:
    folder.mkdir(parents=True, exist_ok=True)
    spec = folder / "tuning_spec.mlir"
    spec.write_text(confirmation.spec_text)
    flags = folder / "compile_flags.txt"
    flags.write_text("".join(f"{f}\n" for f in tuned_flags))
    return spec, flags
