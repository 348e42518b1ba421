"""The model as every build of it is made: source, entry, inputs, flags, where to work.

`compile` and `check` are the one "build, run, compare" path that trials, flag candidates,
the confirmation and the analysis all go through; timing is theirs (in-model profile or
end-to-end benchmark).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import pathlib
import shutil
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import iree
from ..store import TrialStatus
from ._numerics import all_sets_match, within_budget
from ._substitute import SubstitutedBuilds

log = logging.getLogger("schedtune")
_PREPARE_LOCK = threading.Lock()


def _tried_twice(build: Callable[[], iree.CompileResult | None], where: pathlib.Path) -> iree.CompileResult | None:
    """`build()`, once more if it timed out or crashed: iree-compile hangs now and then on
    builds that take seconds when run again, and such a failure must not be taken for the
    config's."""
    for _attempt in range(2):
        built = build()
        if built is None or built.status not in ("timeout", "crash"):
            break
        log.warning("iree-compile %s on %s; trying once more", built.status, where)
    return built


@dataclasses.dataclass
class NumericCheck:
    status: TrialStatus  # OK, RUN_ERROR or WRONG_RESULT
    error: str = ""
    max_error: float | None = None

    @property
    def ok(self) -> bool:
        return self.status == TrialStatus.OK


@dataclasses.dataclass
class ModelContext:
    """`inputs` is the timing set; `check_inputs` are further sets the numerics are checked on."""

    source: pathlib.Path
    entry: str
    inputs: list[pathlib.Path]
    flags: list[str]  # target flags + model-level flags
    workdir: pathlib.Path
    compile_timeout_s: float = 120.0
    run_timeout_s: float = 60.0
    profile_iterations: int = 20
    check_inputs: tuple[list[pathlib.Path], ...] = ()
    trial_build: str = "executable"  # or "model": see SearchSpec.trial_build
    scheduling: str = "batch"  # the policy every run is measured under: see TargetSpec.scheduling
    # Relative L2 error allowed per output when the flags demote arithmetic on purpose (the
    # job's `precision`); None: the element type's own tolerances (`outputs_match`).
    error_budget: float | None = None
    _substituted: SubstitutedBuilds | None = dataclasses.field(default=None, init=False, repr=False, compare=False)

    @property
    def input_sets(self) -> list[list[pathlib.Path]]:
        return [self.inputs, *self.check_inputs]

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
            "cpu_model": iree.host_cpu_model(),
            "cpu_features": iree.host_cpu_features(),
            "flags": self.flags,
        }

    def measurement(self) -> dict[str, Any]:
        """How results are obtained: the inputs' contents, the profile length, how trials are
        built and the scheduling policy runs are timed under."""
        digest = hashlib.sha256()
        for paths in self.input_sets:
            for path in paths:
                digest.update(path.read_bytes())
        return {
            "inputs": digest.hexdigest()[:16],
            "profile_iterations": self.profile_iterations,
            "trial_build": self.trial_build,
            "scheduling": self.scheduling,
            **({"error_budget": self.error_budget} if self.error_budget is not None else {}),
        }

    def build_key(self) -> str:
        """Everything a build of the whole model depends on: model content, entry, inputs,
        flags, compiler version, CPU model and features. Keys analyses, reference outputs,
        flag decisions and confirmations: an IREE upgrade or an edited model re-does them."""
        h = hashlib.sha256(self.source.read_bytes())
        h.update(json.dumps({"entry": self.entry, **self.fingerprint, **self.measurement()}, sort_keys=True).encode())
        return h.hexdigest()[:16]

    def compile(
        self,
        work: pathlib.Path,
        *,
        flags: list[str] | None = None,
        spec_text: str | None = None,
        dump_configs: bool = False,
        name: str = "model",
    ) -> iree.CompileResult:
        """Build into `work` with this model's flags (or `flags`) and an optional spec.

        A timed-out or crashed compile is tried once more (`_tried_twice`). A full disk raises
        ENOSPC (never a failed build to cache)."""
        work.mkdir(parents=True, exist_ok=True)
        spec = None
        if spec_text is not None:
            spec = work / f"{name}_spec.mlir"
            spec.write_text(spec_text)
        return _tried_twice(
            lambda: iree.compile_model(
                self.source,
                work / f"{name}.vmfb",
                self.flags if flags is None else flags,
                spec=spec,
                configs_dir=work / f"{name}_configs" if dump_configs else None,
                timeout_s=self.compile_timeout_s,
            ),
            work / name,
        )

    def compile_trial(
        self, work: pathlib.Path, functions: tuple[str, ...], spec_text: str, name: str = "model"
    ) -> iree.CompileResult:
        """Build the model with `spec_text` applied to the dispatch functions `functions` and
        their configs dumped (`configs_dir`). With `trial_build == "executable"` only their
        executables are compiled and the rest is the default build's; a model whose halves
        cannot be prepared falls back to whole-model builds. Retried once like `compile`."""
        substituted = self.prepare_trial_builds()
        if substituted is None or not substituted.knows(functions):
            return self.compile(work, spec_text=spec_text, dump_configs=True, name=name)
        work.mkdir(parents=True, exist_ok=True)
        spec = work / f"{name}_spec.mlir"
        spec.write_text(spec_text)
        configs = work / f"{name}_configs"

        def build() -> iree.CompileResult | None:
            shutil.rmtree(configs, ignore_errors=True)
            return substituted.build(work, functions, spec, configs)

        built = _tried_twice(build, work / name)
        if built is None:  # the new executable's workgroup count cannot be spliced in
            return self.compile(work, spec_text=spec_text, dump_configs=True, name=name)
        return built

    def prepare_trial_builds(self) -> SubstitutedBuilds | None:
        """The executable-level builds, prepared once; None under whole-model trial builds
        (asked for, or fallen back to: this sets `trial_build`, so call it before keying)."""
        if self.trial_build != "executable":
            return None
        with _PREPARE_LOCK:  # trial compiles run in a thread pool
            if self._substituted is None:
                builds = SubstitutedBuilds(
                    self.source, self.flags, self.workdir / f"executables_{self.build_key()}", self.compile_timeout_s
                )
                try:
                    builds.prepare()
                except iree.ToolError as exc:
                    log.warning("trials compile the whole model: %s", exc)
                    self.trial_build = "model"
                    return None
                self._substituted = builds
            return self._substituted

    def round_iterations(self, vmfb: pathlib.Path) -> int:
        """Calls per end-to-end benchmark round of `vmfb` (see `iree.round_iterations`)."""
        return iree.round_iterations(
            vmfb, self.entry, self.inputs, timeout_s=self.run_timeout_s, scheduling=self.scheduling
        )

    def benchmark(self, vmfb: pathlib.Path, iterations: int) -> float:
        """One end-to-end benchmark round of `vmfb`: ms per call, under this model's policy."""
        return iree.benchmark_model(
            vmfb,
            self.entry,
            self.inputs,
            iterations=iterations,
            timeout_s=self.run_timeout_s,
            scheduling=self.scheduling,
        )

    def outputs(self, vmfb: pathlib.Path, work: pathlib.Path) -> tuple[list[list[np.ndarray]], str]:
        """Every output on every input set, or ([], the run's error)."""
        try:
            count = iree.result_count(
                vmfb, self.entry, self.inputs, timeout_s=self.run_timeout_s, scheduling=self.scheduling
            )
        except iree.ToolError as exc:
            return [], str(exc)
        sets = []
        for k, inputs in enumerate(self.input_sets):
            run = iree.run_model(
                vmfb,
                self.entry,
                inputs,
                work / f"run_{k}",
                outputs=count,
                timeout_s=self.run_timeout_s,
                scheduling=self.scheduling,
            )
            if run.status != "ok":
                return [], f"{run.status}: {run.error}"
            sets.append(run.outputs)
        return sets, ""

    def check(
        self,
        vmfb: pathlib.Path,
        work: pathlib.Path,
        reference: list[list[np.ndarray]],
        *,
        error_budget: float | None = None,
    ) -> NumericCheck:
        """Run on every input set and compare every output with `reference` (IREE's default
        build): within the element type's tolerances, or within `error_budget` (this model's
        own when not given) as a relative L2 error for a build that demotes arithmetic."""
        sets, error = self.outputs(vmfb, work)
        if error:
            return NumericCheck(TrialStatus.RUN_ERROR, error)
        budget = self.error_budget if error_budget is None else error_budget
        if budget is not None:
            ok, worst = within_budget(sets, reference, budget)
            why = f"relative L2 error {worst:.3g} against IREE's f32 default build, over the budget {budget:g}"
        else:
            ok, worst = all_sets_match(sets, reference)
            why = f"outputs differ from IREE's default build (worst error {worst:.3g} of the output's magnitude)"
        if not ok:
            return NumericCheck(TrialStatus.WRONG_RESULT, why, worst)
        return NumericCheck(TrialStatus.OK, "", worst)

    def reference_outputs(self) -> list[list[np.ndarray]]:
        """Outputs of IREE's default build under this model's flags, per input set; kept on disk."""
        folder = self.workdir / f"reference_{self.build_key()}"
        done = folder / "done.json"
        if not done.exists():
            built = self.compile(folder, name="default")
            if not built.ok:
                raise iree.ToolError(f"the default build does not compile: {built.error}")
            sets, error = self.outputs(built.vmfb, folder)
            if error:
                raise iree.ToolError(f"the default build does not run: {error}")
            for k, outs in enumerate(sets):
                for i, out in enumerate(outs):
                    np.save(folder / f"set{k}_output_{i}.npy", out)
            done.write_text(json.dumps({"sets": len(sets), "outputs": len(sets[0])}))
        shape = json.loads(done.read_text())
        return [
            [iree.load_array(folder / f"set{k}_output_{i}.npy") for i in range(shape["outputs"])]
            for k in range(shape["sets"])
        ]
