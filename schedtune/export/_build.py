"""Building what a finished job exported: stock iree-compile, the report's spec and flags.

The report folder is the whole interface: summary.json names the model, its entry, inputs and
flags; tuning_spec.mlir and compile_flags.txt are the tuning. A build checks that the
compiler is the one the report was tuned with and that its outputs match IREE's default build.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import tempfile

from .. import iree
from ..builds import outputs_match, within_budget
from ..errors import SchedtuneError, last_line
from ..files import finish_pending


class ExportError(SchedtuneError):
    """A report folder that holds no usable export, or a tuned build that failed its checks."""


@dataclasses.dataclass(frozen=True)
class ExportedTuning:
    """A finished job's export, read from its report folder."""

    folder: pathlib.Path
    model: pathlib.Path  # the imported model (MLIR) the job tuned
    prepared_model: pathlib.Path | None  # its second half with batch-1 convs named, when shipped
    entry: str
    input_files: tuple[pathlib.Path, ...]
    default_flags: tuple[str, ...]  # target flags: the default build is built with these alone
    tuned_flags: tuple[str, ...]  # compile_flags.txt
    spec: pathlib.Path
    compiler_version: str
    scheduling: str
    speedup: float | None  # confirmed end to end against the default build (None: not measured)
    # The relative L2 error the tuned build may have (flags that demote arithmetic on purpose);
    # None: the element type's own tolerances.
    error_budget: float | None = None

    @classmethod
    def read(cls, folder: str | pathlib.Path) -> ExportedTuning:
        folder = pathlib.Path(folder)
        if folder.is_dir():
            finish_pending(folder)  # a spec + flags pair whose writing was interrupted
        summary_file = folder / "summary.json"
        if not summary_file.is_file():
            raise ExportError(f"{folder}: no summary.json (not a finished job's report folder)")
        try:
            summary = json.loads(summary_file.read_text())
        except json.JSONDecodeError as exc:
            raise ExportError(f"{summary_file}: unreadable ({exc.msg})") from None
        spec, flags_file = folder / "tuning_spec.mlir", folder / "compile_flags.txt"
        for needed in (spec, flags_file):
            if not needed.is_file():
                raise ExportError(f"{folder}: no {needed.name} (the job did not export)")
        try:
            prepared = summary.get("prepared_model")
            end_to_end = summary.get("end_to_end") or {}
            return cls(
                folder=folder,
                model=pathlib.Path(summary["model_mlir"]),
                prepared_model=pathlib.Path(prepared) if prepared else None,
                entry=summary["entry"],
                input_files=tuple(pathlib.Path(p) for p in summary["input_files"]),
                default_flags=tuple(summary["default_flags"]),
                tuned_flags=tuple(line for line in flags_file.read_text().splitlines() if line.strip()),
                spec=spec,
                compiler_version=summary["compiler_version"],
                scheduling=summary.get("scheduling", "batch"),
                speedup=end_to_end.get("speedup"),
                error_budget=(summary.get("precision") or {}).get("max_error"),
            )
        except KeyError as exc:
            raise ExportError(f"{summary_file}: no {exc.args[0]!r} (written by an older schedtune?)") from None

    def build_args(self, model: pathlib.Path | None = None) -> tuple[pathlib.Path, list[str]]:
        """The tuned build's source and flags (spec excluded). `model`: the user's own MLIR of
        the same model; where the job shipped a prepared half, it is prepared the same way."""
        flags = [*self.default_flags, *self.tuned_flags]
        if model is not None:
            if self.prepared_model is not None:
                flags.append(iree.NAMED_BATCH1_FLAG)
            return model, flags
        if self.prepared_model is not None:
            return self.prepared_model, ["--compile-from=global-optimization", *flags]
        return self.model, flags


@dataclasses.dataclass(frozen=True)
class TunedBuild:
    vmfb: pathlib.Path
    checked: bool  # outputs compared with the default build's
    worst_error: float | None  # the worst relative error of that comparison


def build_tuned(
    export: ExportedTuning,
    output: str | pathlib.Path,
    *,
    model: str | pathlib.Path | None = None,
    check: bool = True,
    any_compiler: bool = False,
    timeout_s: float = 1800.0,
) -> TunedBuild:
    """Build the tuned module into `output`; raises `ExportError` on a compiler other than the
    report's (unless `any_compiler`), a failed build, or outputs that differ from the default
    build's (when `check`)."""
    output = pathlib.Path(output)
    installed = iree.compiler_version()
    if installed != export.compiler_version and not any_compiler:
        raise ExportError(
            f"iree-compile is {installed}, the report was tuned with {export.compiler_version}: "
            "tune again with this compiler (or pass --any-compiler to build anyway)"
        )
    source = pathlib.Path(model) if model is not None else None
    if source is not None and not source.is_file():
        raise ExportError(f"model file not found: {source}")
    source, flags = export.build_args(source)
    if not source.is_file():
        raise ExportError(f"{source}: missing (the report folder was moved or its work files deleted)")
    output.parent.mkdir(parents=True, exist_ok=True)
    # The tuned module is built beside its destination and moved in only once it is checked.
    partial = output.with_name(f".{output.name}.partial")
    built = iree.compile_model(source, partial, flags, spec=export.spec, timeout_s=timeout_s)
    if built.status != "ok":
        partial.unlink(missing_ok=True)
        raise ExportError(f"the tuned build failed ({built.status}): {last_line(built.error)}")
    worst = None
    if check:
        try:
            worst = _check_against_default(export, partial, model, timeout_s)
        except ExportError:
            partial.unlink(missing_ok=True)
            raise
    partial.replace(output)
    return TunedBuild(output, check, worst)


def _check_against_default(
    export: ExportedTuning, tuned: pathlib.Path, model: str | pathlib.Path | None, timeout_s: float
) -> float:
    missing = [p for p in export.input_files if not p.is_file()]
    if missing:
        raise ExportError(f"{missing[0]}: the report's inputs are gone; build with check=False (--no-check)")
    with tempfile.TemporaryDirectory(prefix="schedtune-build-") as tmp:
        work = pathlib.Path(tmp)
        source = pathlib.Path(model) if model is not None else export.model
        default = iree.compile_model(source, work / "default.vmfb", list(export.default_flags), timeout_s=timeout_s)
        if default.status != "ok":
            raise ExportError(f"IREE's default build failed ({default.status}): {last_line(default.error)}")
        runs = {}
        for name, vmfb in (("default", work / "default.vmfb"), ("tuned", tuned)):
            run = iree.run_model(
                vmfb, export.entry, list(export.input_files), work / name, timeout_s=600, scheduling=export.scheduling
            )
            if run.status != "ok":
                raise ExportError(f"the {name} build failed to run ({run.status}): {last_line(run.error)}")
            runs[name] = run.outputs
    if export.error_budget is not None:
        ok, worst = within_budget([runs["tuned"]], [runs["default"]], export.error_budget)
        if not ok:
            raise ExportError(
                f"the tuned build's relative L2 error {worst:.3g} against the default build is over the "
                f"report's budget {export.error_budget:g}"
            )
        return worst
    ok, worst = outputs_match(runs["tuned"], runs["default"])
    if not ok:
        raise ExportError(
            f"the tuned build's outputs differ from the default build's (worst relative error {worst:.3g})"
        )
    return worst
