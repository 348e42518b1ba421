"""One candidate config, judged in the whole model: compile, applied?, correct?, how fast?

A candidate is timed inside the full model (per-dispatch profiling) rather than as an
isolated benchmark: isolated timings did not match in-model ones on this machine.
"""
from __future__ import annotations

import dataclasses
import hashlib
import pathlib
import shutil
from typing import Any

import numpy as np

from .. import iree
from ..dispatches import TuningTarget, read_configured_executables
from ..spec import CompilationConfig, render_spec
from ._cache import Cache, cache_key

# Statuses a trial can end with; only "ok" has a time.
STATUSES = ("ok", "compile_error", "compile_timeout", "compile_crash", "not_applied", "wrong_result", "run_error", "constraint")


@dataclasses.dataclass
class TrialResult:
    status: str
    time_ns: float | None = None
    error: str = ""
    per_dispatch_ns: dict[str, float] = dataclasses.field(default_factory=dict)
    max_error: float | None = None
    compile_s: float = 0.0
    cached: bool = False

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data.pop("cached")
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any], cached: bool = True) -> "TrialResult":
        return cls(**{**data, "cached": cached})


@dataclasses.dataclass
class ModelContext:
    """The model as every trial compiles it: source, entry, inputs, flags, where to work."""

    source: pathlib.Path
    entry: str
    inputs: list[pathlib.Path]
    flags: list[str]  # target flags + model-level flags
    workdir: pathlib.Path
    compile_timeout_s: float = 120.0
    run_timeout_s: float = 60.0
    profile_iterations: int = 20

    @property
    def fingerprint(self) -> dict[str, Any]:
        """What the compiler and machine contribute to every cache key."""
        return {
            "compiler": iree.compiler_version(),
            "cpu_features": iree.host_cpu_features(),
            "flags": self.flags,
        }

    def model_hash(self) -> str:
        h = hashlib.sha256(self.source.read_bytes())
        h.update("\0".join(self.flags).encode())
        h.update(self.entry.encode())
        return h.hexdigest()[:16]


def outputs_match(outputs: list[np.ndarray], reference: list[np.ndarray]) -> tuple[bool, float]:
    """Agreement within float32 reassociation noise (tiling changes summation order)."""
    if len(outputs) != len(reference):
        return False, float("inf")
    worst = 0.0
    ok = True
    for out, ref in zip(outputs, reference):
        if out.shape != ref.shape:
            return False, float("inf")
        scale = max(1.0, float(np.max(np.abs(ref))) if ref.size else 1.0)
        err = float(np.max(np.abs(out.astype(np.float64) - ref.astype(np.float64)))) if ref.size else 0.0
        worst = max(worst, err / scale)
        if not np.isfinite(err) or err > 1e-3 * scale:
            ok = False
    return ok, worst


class Evaluator:
    """Evaluates configs for one model under one flag set; every outcome goes into the cache."""

    def __init__(self, model: ModelContext, cache: Cache) -> None:
        self.model = model
        self.cache = cache
        self._reference: list[np.ndarray] | None = None
        self.compiles = 0

    def reference_outputs(self) -> list[np.ndarray]:
        """Outputs of IREE's default build on the job's inputs, computed once and kept on disk."""
        if self._reference is not None:
            return self._reference
        folder = self.model.workdir / f"reference_{self.model.model_hash()}"
        files = sorted(folder.glob("output_*.npy"))
        if not files:
            folder.mkdir(parents=True, exist_ok=True)
            vmfb = folder / "default.vmfb"
            result = iree.compile_model(self.model.source, vmfb, self.model.flags, timeout_s=self.model.compile_timeout_s)
            self.compiles += 1
            if not result.ok:
                raise iree.ToolError(f"the default build does not compile: {result.error}")
            run = iree.run_model(vmfb, self.model.entry, self.model.inputs, folder, timeout_s=self.model.run_timeout_s)
            if run.status != "ok":
                raise iree.ToolError(f"the default build does not run: {run.error}")
            files = sorted(folder.glob("output_*.npy"))
        self._reference = [np.load(f) for f in files]
        return self._reference

    def key(self, target: TuningTarget, config: CompilationConfig) -> str:
        return cache_key(kind="trial", dispatch=target.root.text, config=config.canonical(), **self.model.fingerprint)

    def lookup(self, target: TuningTarget, config: CompilationConfig) -> TrialResult | None:
        payload = self.cache.get(self.key(target, config))
        return TrialResult.from_json(payload) if payload is not None else None

    def evaluate(self, target: TuningTarget, config: CompilationConfig) -> TrialResult:
        hit = self.lookup(target, config)
        if hit is not None:
            return hit
        result = self._evaluate_uncached(target, config)
        self.cache.put(self.key(target, config), "trial", f"{target.label} {config.canonical()}", result.to_json())
        return result

    def _evaluate_uncached(self, target: TuningTarget, config: CompilationConfig) -> TrialResult:
        assert target.root.matcher is not None
        work = self.model.workdir / "trial"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        spec = work / "spec.mlir"
        spec.write_text(render_spec([(target.root.matcher, config)]))
        vmfb = work / "model.vmfb"
        configs = work / "configs"
        compiled = iree.compile_model(
            self.model.source, vmfb, self.model.flags, spec=spec, configs_dir=configs,
            timeout_s=self.model.compile_timeout_s,
        )
        self.compiles += 1
        if not compiled.ok:
            return TrialResult(f"compile_{compiled.status}" if compiled.status != "error" else "compile_error",
                               error=compiled.error, compile_s=compiled.seconds)
        applied = read_configured_executables(configs)
        for name in target.dispatches:
            got = applied.get(name)
            same_op = got is not None and got.root is not None and got.root.text == target.root.text
            used = got.root.default_config if same_op else None
            if used is None or used.canonical() != config.canonical():
                seen = used.canonical() if used else "no config found"
                return TrialResult("not_applied", error=f"{name}: IREE used {seen}", compile_s=compiled.seconds)
        run = iree.run_model(vmfb, self.model.entry, self.model.inputs, work / "run", timeout_s=self.model.run_timeout_s)
        if run.status != "ok":
            return TrialResult("run_error", error=f"{run.status}: {run.error}", compile_s=compiled.seconds)
        ok, max_error = outputs_match(run.outputs, self.reference_outputs())
        if not ok:
            return TrialResult("wrong_result", error=f"max relative error {max_error:.3g}", max_error=max_error,
                               compile_s=compiled.seconds)
        try:
            timings = iree.profile_dispatches(vmfb, self.model.entry, self.model.inputs, work / "profile",
                                              iterations=self.model.profile_iterations, timeout_s=self.model.run_timeout_s)
        except (iree.ToolError, OSError) as exc:
            return TrialResult("run_error", error=str(exc), compile_s=compiled.seconds)
        except Exception as exc:  # subprocess.TimeoutExpired and friends
            return TrialResult("run_error", error=f"{type(exc).__name__}: {exc}", compile_s=compiled.seconds)
        calls = max((t.count for t in timings.values()), default=1) or 1
        per = {n: timings[n].avg_ns * timings[n].count / calls for n in target.dispatches if n in timings}
        if len(per) != len(target.dispatches):
            return TrialResult("run_error", error="a tuned dispatch is missing from the profile", compile_s=compiled.seconds)
        return TrialResult("ok", time_ns=sum(per.values()), per_dispatch_ns=per, max_error=max_error,
                           compile_s=compiled.seconds)
