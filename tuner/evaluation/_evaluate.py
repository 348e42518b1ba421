"""One candidate config, judged in the whole model: compile, applied?, correct?, how fast?

A candidate is timed inside the full model (per-dispatch profiling) rather than as an
isolated benchmark: isolated timings did not match in-model ones on this machine.
"""
from __future__ import annotations

import concurrent.futures
import errno
import dataclasses
import hashlib
import os
import pathlib
import shutil
import subprocess
from typing import Any, Callable

import numpy as np

from .. import iree
from ..dispatches import TuningTarget, read_configured_executables
from ..spec import CompilationConfig, render_spec
from ._cache import Cache, cache_key
from ._worker import worker_id

# Statuses a trial can end with; only "ok" has a time.
STATUSES = ("ok", "compile_error", "compile_timeout", "compile_crash", "not_applied", "wrong_result", "run_error",
            "constraint", "duplicate", "in_progress", "lost")


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
    def stale_after_s(self) -> float:
        """How long a trial or claim may stay in flight before its worker is presumed dead:
        one compile and a few runs, with slack."""
        return self.compile_timeout_s + 4 * self.run_timeout_s + 120

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
    """Evaluates configs for one model under one flag set; every outcome goes into the cache.

    Compiles of a batch run in parallel worker processes (`compile_workers`, default one per
    core); benchmarks run one at a time afterwards, with no compile running, so they don't
    disturb each other's timing.
    """

    def __init__(self, model: ModelContext, cache: Cache, *, compile_workers: int | None = None,
                 reference: list[np.ndarray] | None = None) -> None:
        """`reference`: outputs of IREE's default build, when already computed (else built on first use)."""
        self.model = model
        self.cache = cache
        self._reference = reference
        self.compiles = 0
        self.compile_workers = compile_workers or os.cpu_count() or 1
        self.worker = worker_id()

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
        return self.evaluate_many(target, [config])[0]

    def evaluate_many(self, target: TuningTarget, configs: list[CompilationConfig],
                      record: Callable[[int, TrialResult], None] | None = None) -> list[TrialResult]:
        """Results in the order of `configs`; status `in_progress` when another worker holds one.

        `record(i, result)` is called for each freshly measured result *before* it enters the
        shared cache and its claim is released: another worker that then finds it in the
        cache also finds the trial that owns it (it must not count the config a second time).
        """
        results: list[TrialResult | None] = [None] * len(configs)
        todo: list[int] = []
        for i, config in enumerate(configs):
            hit = self.lookup(target, config)
            if hit is None and self.cache.claim(self.key(target, config), self.worker, self.model.stale_after_s):
                # The holder may have published and released between our lookup and our claim.
                hit = self.lookup(target, config)
                if hit is None:
                    todo.append(i)
                    continue
                self.cache.release(self.key(target, config))
            results[i] = hit or TrialResult("in_progress", error="another worker is evaluating this config",
                                            cached=True)
        try:
            workdirs = {i: self.model.workdir / f"trial_{os.getpid()}_{n}" for n, i in enumerate(todo)}
            with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, self.compile_workers)) as pool:
                compiled = dict(zip(todo, pool.map(lambda i: self._compile(target, configs[i], workdirs[i]), todo)))
            self.compiles += len(todo)
            for i in todo:
                result = compiled[i] if isinstance(compiled[i], TrialResult) else self._measure(
                    target, configs[i], workdirs[i], compiled[i])
                if record is not None:
                    record(i, result)
                self.cache.put(self.key(target, configs[i]), "trial",
                               f"{target.label} {configs[i].canonical()}", result.to_json())
                self.cache.release(self.key(target, configs[i]))
                results[i] = result
        finally:
            for i in todo:
                if results[i] is None:  # interrupted: let another worker (or the re-run) take it
                    self.cache.release(self.key(target, configs[i]))
        return [r for r in results if r is not None]

    def _compile(self, target: TuningTarget, config: CompilationConfig, work: pathlib.Path):
        assert target.root.matcher is not None
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        spec = work / "spec.mlir"
        spec.write_text(render_spec([(target.root.matcher, config)]))
        compiled = iree.compile_model(
            self.model.source, work / "model.vmfb", self.model.flags, spec=spec, configs_dir=work / "configs",
            timeout_s=self.model.compile_timeout_s,
        )
        if not compiled.ok:
            if "No space left on device" in compiled.error:
                # Not the config's fault: caching it as a failure would poison every re-run.
                raise OSError(errno.ENOSPC, "No space left on device", str(work))
            return TrialResult(f"compile_{compiled.status}", error=compiled.error, compile_s=compiled.seconds)
        return compiled

    def _measure(self, target: TuningTarget, config: CompilationConfig, work: pathlib.Path,
                 compiled: iree.CompileResult) -> TrialResult:
        try:
            return self._check_and_time(target, config, work, compiled)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _check_and_time(self, target: TuningTarget, config: CompilationConfig, work: pathlib.Path,
                        compiled: iree.CompileResult) -> TrialResult:
        vmfb = compiled.vmfb
        applied = read_configured_executables(compiled.configs_dir)
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
        except (iree.ToolError, OSError, subprocess.SubprocessError) as exc:
            return TrialResult("run_error", error=f"{type(exc).__name__}: {exc}", compile_s=compiled.seconds)
        in_model = iree.per_call_ns(timings)
        per = {n: in_model[n] for n in target.dispatches if n in in_model}
        if len(per) != len(target.dispatches):
            return TrialResult("run_error", error="a tuned dispatch is missing from the profile", compile_s=compiled.seconds)
        return TrialResult("ok", time_ns=sum(per.values()), per_dispatch_ns=per, max_error=max_error,
                           compile_s=compiled.seconds)
