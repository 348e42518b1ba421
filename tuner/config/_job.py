"""The tuning job as typed data, read from YAML and validated before any work starts.

Every problem is reported as one `ConfigError` line naming the key, so `tune` can exit 2
before compiling anything.
"""

from __future__ import annotations

import dataclasses
import pathlib
from typing import Any

import yaml

from ..errors import ConfigError
from ..iree import SCHEDULING_POLICIES
from ..pipelines import PipelineError, parse_passes


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """Where the model comes from.

    `mlir` and `onnx` read `path`; `torch` calls `factory` (`module:function` or
    `file.py:function`) for an `nn.Module`. `inputs` are `iree-run-module` shapes
    (8x3x32x32xf32) used for export, benchmarks and numeric checks. An `mlir` model may name
    the `factory` it was exported from, so that benchmarks/compare.py can run the framework.
    """

    format: str
    inputs: tuple[str, ...]
    path: pathlib.Path | None = None
    factory: str | None = None
    entry: str | None = None
    input_type: str = "auto"


@dataclasses.dataclass(frozen=True)
class TargetSpec:
    cpu: str = "host"
    extra_flags: tuple[str, ...] = ()
    # The Linux scheduling policy every run of a compiled model is measured under: "batch"
    # (SCHED_BATCH) keeps IREE's waiting host thread from preempting the worker it waits for
    # (see tuner/iree/_scheduling.py); "normal" measures under the tuner's own policy.
    scheduling: str = "batch"


@dataclasses.dataclass(frozen=True)
class BudgetSpec:
    trials_per_dispatch: int = 40
    max_minutes: float | None = None
    time_share: float = 0.9
    max_dispatches: int = 8
    compile_timeout_s: float = 120.0
    run_timeout_s: float = 60.0
    confirm_rounds: int = 7


@dataclasses.dataclass(frozen=True)
class SearchSpec:
    sampler: str = "tpe"
    seed: int = 0
    tune_model_flags: bool = True
    # "executable": a trial recompiles only its target's executables and links them into the
    # model's default build; "model": every trial compiles the whole model.
    trial_build: str = "executable"
    # A new study first tries the best configs of the most similar finished studies.
    warm_start: bool = True
    # Zero-trial tuning: per target, only IREE's default and the history's nearest configs are
    # evaluated (numerics checked, timed) and the winners confirmed and exported; no search.
    from_history: bool = False
    # Model-level pipeline search (spaces/pipelines.yaml): pipelines measured in all, the
    # proposers' ones first (0: only today's fixed flag sets, measured side by side), and how
    # many measured in a row without a gain stop it.
    pipeline_trials: int = 16
    pipeline_patience: int = 8
    # Pipelines of your own, tried with the rest: passes in order, e.g.
    # "iree-preprocessing-convert-conv-to-channels-last, iree-preprocessing-pad-linalg-ops{pad-size=16}".
    # Checked with iree-opt before anything is compiled.
    pipelines: tuple[str, ...] = ()
    # Experimental: offer the transform-dialect tier (a codegen script per dispatch, its tiles
    # as knobs) beside IREE's pipelines, where a dispatch can be rebuilt by a script, with
    # `transform_dialect_trials` trials of its own per target on top of trials_per_dispatch.
    transform_dialect: bool = False
    transform_dialect_trials: int = 12
    # Ops on which IREE drops a spec's pipeline config but keeps a script's (batch-1 convs, see
    # RootOp.script_only) are tuned with the transform-dialect tier alone, even when the tier
    # is off elsewhere: without it they are not tuned at all.
    transform_dialect_only_route: bool = True
    # Build in two halves with the batch-1 convs and pools named again in between
    # (tuner/iree/_batch1.py), so that IREE's pipelines take a spec's config on them. The
    # export then ships the model's prepared second half (see the report's "use:" line).
    named_batch1_convs: bool = True

    @property
    def scripts_reach_known_issues(self) -> bool:
        """Whether ops only a transform script reaches are tuned (and weighed when planning)."""
        return self.transform_dialect or self.transform_dialect_only_route


@dataclasses.dataclass(frozen=True)
class ProposerSpec:
    kind: str = "heuristic"
    provider: str | None = None
    base_url: str | None = None
    model: str | None = None
    api_key_env: str | None = None
    max_skeletons: int = 3
    repair_rounds: int = 2
    timeout_s: float = 60.0


@dataclasses.dataclass(frozen=True)
class JobConfig:
    name: str
    model: ModelSpec
    target: TargetSpec
    budget: BudgetSpec
    search: SearchSpec
    proposer: ProposerSpec
    output_dir: pathlib.Path
    storage: str
    config_path: pathlib.Path

    @property
    def report_dir(self) -> pathlib.Path:
        return self.output_dir / self.name


_SECTIONS = {
    "model": ModelSpec,
    "target": TargetSpec,
    "budget": BudgetSpec,
    "search": SearchSpec,
    "proposer": ProposerSpec,
}
_TOP_KEYS = {"name", "output", "storage", *_SECTIONS}
_CHOICES = {
    "model.format": ("mlir", "torch", "onnx"),
    "model.input_type": ("auto", "none", "linalg", "torch", "stablehlo", "tosa", "onnx"),
    "search.sampler": ("tpe", "random"),
    "search.trial_build": ("executable", "model"),
    "target.scheduling": SCHEDULING_POLICIES,
    "proposer.kind": ("heuristic", "llm"),
    "proposer.provider": (None, "local", "openai"),
}


def _check_type(key: str, value: Any, annotation: str) -> Any:
    """Coerce/validate one scalar by the dataclass field's annotation text."""
    ann = annotation.replace(" ", "")
    optional = "None" in ann
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{key}: must not be empty")
    if ann.startswith("int"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if ann.startswith("float"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if ann.startswith("bool"):
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if ann.startswith("tuple"):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{key}: expected a list of strings, got {value!r}")
        return tuple(value)
    if ann.startswith(("str", "pathlib.Path")):
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    return value


def _section(name: str, raw: Any, cls: type) -> dict[str, Any]:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{name}: expected a mapping, got {type(raw).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in fields:
            raise ConfigError(f"{name}.{key}: unknown key (known: {', '.join(fields)})")
        value = _check_type(f"{name}.{key}", value, str(fields[key].type))
        choices = _CHOICES.get(f"{name}.{key}")
        if choices is not None and value not in choices:
            shown = ", ".join(str(c) for c in choices if c is not None)
            raise ConfigError(f"{name}.{key}: {value!r} is not one of {shown}")
        out[key] = value
    for key, field in fields.items():
        if key not in out and field.default is dataclasses.MISSING:
            raise ConfigError(f"{name}.{key}: missing required key")
    return out


def load_config(path: str | pathlib.Path, *, output_override: str | None = None) -> JobConfig:
    """Read and validate a job config; raises `ConfigError` with a one-line message."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}: malformed YAML{where}: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    for key in raw:
        if key not in _TOP_KEYS:
            raise ConfigError(f"{key}: unknown key (known: {', '.join(sorted(_TOP_KEYS))})")
    name = raw.get("name")
    if not isinstance(name, str) or not name or not name.replace("-", "_").replace(".", "_").isidentifier():
        raise ConfigError(f"name: expected a plain job name (letters, digits, -, _), got {name!r}")
    if "model" not in raw:
        raise ConfigError("model: missing required key")
    base = path.parent
    sections = {key: _section(key, raw.get(key), cls) for key, cls in _SECTIONS.items()}

    model = _model_section(sections["model"], base)
    budget = sections["budget"]
    if budget.get("trials_per_dispatch", 1) < 1:
        raise ConfigError("budget.trials_per_dispatch: must be at least 1")
    if not 0 < budget.get("time_share", 0.9) <= 1:
        raise ConfigError("budget.time_share: must be in (0, 1]")
    search = sections["search"]
    if search.get("transform_dialect_trials", 0) < 0:
        raise ConfigError("search.transform_dialect_trials: must be >= 0")
    if search.get("pipeline_trials", 0) < 0 or search.get("pipeline_patience", 1) < 1:
        raise ConfigError("search.pipeline_trials: must be >= 0, and search.pipeline_patience >= 1")
    for i, text in enumerate(search.get("pipelines", ())):
        try:
            if not parse_passes(text):
                raise PipelineError("no pass")
        except PipelineError as exc:
            raise ConfigError(f"search.pipelines[{i}]: {exc}") from None
    proposer = sections["proposer"]
    if proposer.get("kind") == "llm" and proposer.get("provider") != "local" and not proposer.get("base_url"):
        raise ConfigError("proposer.base_url: needed for an llm proposer unless provider is local")

    output = output_override or raw.get("output") or "reports"
    if not isinstance(output, str):
        raise ConfigError(f"output: expected a folder path, got {output!r}")
    output_dir = pathlib.Path(output)
    if not output_dir.is_absolute():
        output_dir = (pathlib.Path.cwd() / output_dir).resolve()
    storage = raw.get("storage")
    if storage is None:
        storage = f"sqlite:///{output_dir / name / 'study.db'}"
    elif not isinstance(storage, str) or "://" not in storage:
        raise ConfigError(f"storage: expected a database URL such as sqlite:///x.db, got {storage!r}")
    return JobConfig(
        name=name,
        model=ModelSpec(**model),
        target=TargetSpec(**sections["target"]),
        budget=BudgetSpec(**budget),
        search=SearchSpec(**sections["search"]),
        proposer=ProposerSpec(**proposer),
        output_dir=output_dir,
        storage=storage,
        config_path=path.resolve(),
    )


def _model_section(model: dict[str, Any], base: pathlib.Path) -> dict[str, Any]:
    fmt = model["format"]
    if fmt in ("mlir", "onnx"):
        if not model.get("path"):
            raise ConfigError(f"model.path: needed for format {fmt}")
    elif not model.get("factory"):
        raise ConfigError("model.factory: needed for format torch (module:function returning an nn.Module)")
    if model.get("path"):
        model_path = (base / model["path"]).resolve()
        if not model_path.is_file():
            raise ConfigError(f"model.path: file not found: {model_path}")
        model["path"] = model_path
    if model.get("factory"):
        module, _, function = model["factory"].rpartition(":")
        if not module or not function.isidentifier():
            raise ConfigError(f"model.factory: {model['factory']!r} is not of the form module:function")
        if module.endswith(".py"):
            module_path = (base / module).resolve()
            if not module_path.is_file():
                raise ConfigError(f"model.factory: file not found: {module_path}")
            model["factory"] = f"{module_path}:{function}"
    if model.get("input_type", "auto") != "auto" and fmt != "mlir":
        raise ConfigError(f"model.input_type: only for format mlir (format {fmt} sets it)")
    if not model["inputs"]:
        raise ConfigError("model.inputs: at least one input is needed")
    for spec in model["inputs"]:
        _validate_input(spec)
    return model


_DTYPES = {"f32", "f16", "i32", "i64", "i8", "bf16"}


def _validate_input(spec: str) -> None:
    """Inputs use `iree-run-module --input` shape syntax, e.g. 8x3x32x32xf32."""
    parts = spec.split("x")
    if len(parts) < 2 or parts[-1] not in _DTYPES or not all(p.isdigit() and int(p) > 0 for p in parts[:-1]):
        raise ConfigError(f"model.inputs: {spec!r} is not of the form 8x3x32x32xf32")
