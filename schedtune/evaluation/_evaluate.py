"""One candidate config, judged in the whole model: compile, applied?, correct?, how fast?

A candidate is timed inside the full model (per-dispatch profiling) rather than as an
isolated benchmark: isolated timings did not match in-model ones on this machine.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import logging
import os
import pathlib
import shutil
import subprocess
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import iree
from ..builds import ModelContext
from ..dispatches import TuningTarget, read_configured_executables
from ..spec import TRANSFORM_DIALECT, CompilationConfig, render_spec
from ..store import Cache, TrialStatus, cache_key, worker_id

log = logging.getLogger("schedtune")


@dataclasses.dataclass
class TrialResult:
    status: str  # a TrialStatus value
    time_ns: float | None = None
    error: str = ""
    per_dispatch_ns: dict[str, float] = dataclasses.field(default_factory=dict)
    max_error: float | None = None
    compile_s: float = 0.0
    timeout_s: float | None = None  # the compile time limit a compile_timeout verdict had
    cached: bool = False

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data.pop("cached")
        data["status"] = str(self.status)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any], cached: bool = True) -> TrialResult:
        return cls(**{**data, "cached": cached})


class Evaluator:
    """Evaluates configs for one model under one flag set; every outcome goes into the cache.

    Compiles of a batch run in parallel worker processes (`compile_workers`, default one per
    core); benchmarks run one at a time afterwards, with no compile running, so they don't
    disturb each other's timing.
    """

    def __init__(
        self,
        model: ModelContext,
        cache: Cache,
        *,
        compile_workers: int | None = None,
        reference: list[list[np.ndarray]] | None = None,
    ) -> None:
        """`reference`: outputs of IREE's default build per input set, when already computed (else
        built on first use)."""
        self.model = model
        self.cache = cache
        self._reference = reference
        self.compiles = 0
        self.compile_workers = compile_workers or os.cpu_count() or 1
        self.worker = worker_id()
        model.prepare_trial_builds()  # may fall back to whole-model builds, which keys differently
        self._measurement = model.measurement()

    def reference_outputs(self) -> list[list[np.ndarray]]:
        """Outputs of IREE's default build per input set (computed once, kept on disk)."""
        if self._reference is None:
            self._reference = self.model.reference_outputs()
        return self._reference

    def key(self, target: TuningTarget, config: CompilationConfig) -> str:
        """The whole dispatch (root op and what is fused with it, names canonicalised), the
        config, compiler, CPU, flags and how it is measured: a verdict is reused only where
        every input to it is the same."""
        # A transform-dialect config is its script: a new script template is a new candidate.
        script = {}
        if config.pipeline == TRANSFORM_DIALECT and target.root.matcher is not None:
            script = {"script": hashlib.sha256(render_spec([(target.root.matcher, config)]).encode()).hexdigest()}
        return cache_key(
            kind="trial",
            dispatch=target.dispatch_key,
            config=config.canonical(),
            measurement=self._measurement,
            **script,
            **self.model.fingerprint,
        )

    def mark_failed(self, target: TuningTarget, config: CompilationConfig, reason: str) -> None:
        """A cached `ok` verdict that turned out wrong (e.g. at the export): no run reuses it as a winner."""
        key = self.key(target, config)
        old = self.cache.get(key) or {}
        result = TrialResult(TrialStatus.WRONG_RESULT.value, error=reason, compile_s=old.get("compile_s", 0.0))
        self.cache.replace(key, "trial", f"{target.label} {config.canonical()}", result.to_json())

    def usable(self, target: TuningTarget, config: CompilationConfig) -> bool:
        """False when this config's verdict was withdrawn (`mark_failed`)."""
        hit = self.lookup(target, config)
        return hit is None or hit.status == TrialStatus.OK

    def lookup(self, target: TuningTarget, config: CompilationConfig) -> TrialResult | None:
        """The cached verdict; None also for a compile timeout under a shorter limit than today's
        (it may compile now)."""
        payload = self.cache.get(self.key(target, config))
        if payload is None:
            return None
        hit = TrialResult.from_json(payload)
        return None if self._outgrown(hit) else hit

    def _outgrown(self, hit: TrialResult) -> bool:
        return hit.status == TrialStatus.COMPILE_TIMEOUT and (hit.timeout_s or 0.0) < self.model.compile_timeout_s

    def evaluate(self, target: TuningTarget, config: CompilationConfig) -> TrialResult:
        return self.evaluate_many(target, [config])[0]

    def evaluate_many(
        self,
        target: TuningTarget,
        configs: list[CompilationConfig],
        record: Callable[[int, TrialResult], None] | None = None,
    ) -> list[TrialResult]:
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
            results[i] = hit or TrialResult(
                TrialStatus.IN_PROGRESS.value, error="another worker is evaluating this config", cached=True
            )
        # Keys holding an outgrown timeout verdict are overwritten; new ones keep first-writer-wins.
        outgrown = {i for i in todo if self.cache.get(self.key(target, configs[i])) is not None}
        try:
            workdirs = {i: self.model.workdir / f"trial_{os.getpid()}_{n}" for n, i in enumerate(todo)}
            with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, self.compile_workers)) as pool:
                compiled = dict(zip(todo, pool.map(lambda i: self._compile(target, configs[i], workdirs[i]), todo)))
            self.compiles += len(todo)
            for i in todo:
                result = (
                    compiled[i]
                    if isinstance(compiled[i], TrialResult)
                    else self._measure(target, configs[i], workdirs[i], compiled[i])
                )
                if record is not None:
                    record(i, result)
                store = self.cache.replace if i in outgrown else self.cache.put
                store(
                    self.key(target, configs[i]), "trial", f"{target.label} {configs[i].canonical()}", result.to_json()
                )
                self.cache.release(self.key(target, configs[i]))
                results[i] = result
        finally:
            for i in todo:
                if results[i] is None:  # interrupted: let another worker (or the re-run) take it
                    self.cache.release(self.key(target, configs[i]))
        return [r for r in results if r is not None]

    def race(self, target: TuningTarget, configs: list[CompilationConfig], rounds: int) -> list[list[float] | None]:
        """Each config's time on `target` in `rounds` interleaved rounds (A B C A B C ...), in
        the model like a trial; None for a config whose build fails. Numerics are not checked
        again (these configs passed as trials). Cached: a re-run races nothing twice."""
        key = cache_key(
            kind="race",
            dispatch=target.dispatch_key,
            configs=[self.key(target, c) for c in configs],
            rounds=rounds,
        )
        hit = self.cache.get(key)
        if hit is not None:
            return hit["times"]
        work = self.model.workdir / f"race_{os.getpid()}"
        builds: list[pathlib.Path | None] = []
        try:
            for i, config in enumerate(configs):
                compiled = self._compile(target, config, work / str(i))
                builds.append(None if isinstance(compiled, TrialResult) else compiled.vmfb)
            self.compiles += len(configs)
            times: list[list[float] | None] = [[] if vmfb else None for vmfb in builds]
            for _ in range(rounds):
                for i, vmfb in enumerate(builds):
                    if vmfb is None:
                        continue
                    try:
                        timings = iree.profile_dispatches(
                            vmfb,
                            self.model.entry,
                            self.model.inputs,
                            work / f"profile_{i}",
                            iterations=self.model.profile_iterations,
                            timeout_s=self.model.run_timeout_s,
                            scheduling=self.model.scheduling,
                        )
                    except iree.ToolError as exc:  # hung or failed: this config is out of the race
                        log.warning("race on %s: config %d dropped: %s", target.label, i, exc)
                        builds[i], times[i] = None, None
                        continue
                    times[i].append(iree.dispatches_ns(timings, target.dispatches))
        finally:
            shutil.rmtree(work, ignore_errors=True)
        self.cache.put(key, "race", target.label, {"times": times})
        return times

    def _compile(self, target: TuningTarget, config: CompilationConfig, work: pathlib.Path):
        assert target.root.matcher is not None
        shutil.rmtree(work, ignore_errors=True)
        spec_text = render_spec([(target.root.matcher, config)])
        if config.pipeline == TRANSFORM_DIALECT:
            # A codegen script is validated before any compile (IREE's pipelines need not be).
            error = iree.mlir_error(spec_text)
            if error is not None:
                return TrialResult(TrialStatus.COMPILE_ERROR.value, error=f"iree-opt rejects the script: {error}")
        compiled = self.model.compile_trial(work, target.dispatches, spec_text)
        if not compiled.ok:
            return TrialResult(
                TrialStatus.of_compile(compiled.status).value,
                error=compiled.error,
                compile_s=compiled.seconds,
                timeout_s=self.model.compile_timeout_s if compiled.status == "timeout" else None,
            )
        return compiled

    def _measure(
        self, target: TuningTarget, config: CompilationConfig, work: pathlib.Path, compiled: iree.CompileResult
    ) -> TrialResult:
        try:
            return self._check_and_time(target, config, work, compiled)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _check_and_time(
        self, target: TuningTarget, config: CompilationConfig, work: pathlib.Path, compiled: iree.CompileResult
    ) -> TrialResult:
        vmfb = compiled.vmfb
        applied = read_configured_executables(compiled.configs_dir)
        for name in target.dispatches:
            got = applied.get(name)
            same_op = got is not None and got.root is not None and got.root.text == target.root.text
            used = got.root.default_config if same_op else None
            if used is None and same_op and config.pipeline == got.root.pipeline == TRANSFORM_DIALECT:
                continue  # the script took the op; IREE dropped its lowering_config (a batch-1 conv)
            if used is None or used.canonical() != config.canonical():
                seen = used.canonical() if used else "no config found"
                return TrialResult(
                    TrialStatus.NOT_APPLIED.value, error=f"{name}: IREE used {seen}", compile_s=compiled.seconds
                )
        check = self.model.check(vmfb, work, self.reference_outputs())
        if not check.ok:
            return TrialResult(
                check.status.value, error=check.error, max_error=check.max_error, compile_s=compiled.seconds
            )
        try:
            timings = iree.profile_dispatches(
                vmfb,
                self.model.entry,
                self.model.inputs,
                work / "profile",
                iterations=self.model.profile_iterations,
                timeout_s=self.model.run_timeout_s,
                scheduling=self.model.scheduling,
            )
        except (iree.ToolError, subprocess.SubprocessError) as exc:
            return TrialResult(
                TrialStatus.RUN_ERROR.value, error=f"{type(exc).__name__}: {exc}", compile_s=compiled.seconds
            )
        in_model = iree.per_call_ns(timings)
        per = {n: in_model[n] for n in target.dispatches if n in in_model}
        if len(per) != len(target.dispatches):
            return TrialResult(
                TrialStatus.RUN_ERROR.value,
                error="a tuned dispatch is missing from the profile",
                compile_s=compiled.seconds,
            )
        return TrialResult(
            TrialStatus.OK.value,
            time_ns=sum(per.values()),
            per_dispatch_ns=per,
            max_error=check.max_error,
            compile_s=compiled.seconds,
        )
