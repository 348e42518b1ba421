"""The tuning job as typed data, read from YAML and validated before any work starts.

Every problem is reported as one `ConfigError` line naming the key, so `tune` can exit 2
before compiling anything.
"""

from __future__ import annotations

import dataclasses
import pathlib
import re
from typing import Any

import yaml

from ..errors import ConfigError
from ..iree import SCHEDULING_POLICIES
from ..pipelines import PipelineError, parse_passes


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """Where the model comes from and what it is run on. Relative paths are read from the job
    file's folder."""

    format: str = dataclasses.field(
        metadata={
            "doc": "How the model is read: `mlir` is used as is, `onnx` is imported with iree-import-onnx, "
            "`torch` exports the `nn.Module` of `factory` with iree-turbine."
        }
    )
    inputs: tuple[str, ...] = dataclasses.field(
        metadata={
            "doc": "The entry function's input shapes in `iree-run-module --input` syntax, e.g. `8x3x32x32xf32` "
            "(element types f32, f16, bf16, i8, i32, i64); filled with seeded random data for export, "
            "timing and numeric checks."
        }
    )
    input_ranges: tuple[str, ...] = dataclasses.field(
        default=(),
        metadata={
            "doc": "The value range of each input, one entry per input when given: `LOW..HIGH` (e.g. "
            "`0..30522` for token ids, `-128..127`, `-1.0..1.0`) or `default`. Default: floats standard normal "
            "and uniform in [-64, 64); i8 in [0, 8) and over its whole range; i32 and i64 in [0, 8) and "
            "[0, 64) (indices: a wider range could index out of bounds). Integer ranges include HIGH."
        },
    )
    path: pathlib.Path | None = dataclasses.field(
        default=None, metadata={"doc": "The model file; needed for formats `mlir` and `onnx`."}
    )
    factory: str | None = dataclasses.field(
        default=None,
        metadata={
            "doc": "`file.py:function` or `package.module:function` returning a `torch.nn.Module`; needed for "
            "format `torch`. An `mlir` model may name the factory it was exported from, so that "
            "`tune compare` can run the framework beside IREE."
        },
    )
    entry: str | None = dataclasses.field(
        default=None,
        metadata={"doc": "The function to run; null: `main` (for `onnx`: the ONNX graph's name)."},
    )
    input_type: str = dataclasses.field(
        default="auto",
        metadata={
            "doc": "The dialect an `mlir` model is written in, passed as `--iree-input-type` (`linalg` is "
            "`none`; `auto` passes nothing). Only for format `mlir`."
        },
    )

    def value_ranges(self) -> tuple[tuple[float, float] | None, ...]:
        """Each input's (low, high) from `input_ranges` (None: the default distributions)."""
        return tuple(input_range(spec, text) for spec, text in zip(self.inputs, self.input_ranges))


@dataclasses.dataclass(frozen=True)
class TargetSpec:
    """The CPU the model is compiled for and how it is measured."""

    cpu: str = dataclasses.field(
        default="host",
        metadata={"doc": "The `--iree-llvmcpu-target-cpu` to compile for; `host` is the machine tuning runs on."},
    )
    extra_flags: tuple[str, ...] = dataclasses.field(
        default=(), metadata={"doc": "More iree-compile flags for every build, IREE's default build included."}
    )
    # SCHED_BATCH keeps IREE's waiting host thread from preempting the worker it waits for
    # (see schedtune/iree/_scheduling.py).
    scheduling: str = dataclasses.field(
        default="batch",
        metadata={
            "doc": "The Linux scheduling policy every run of a compiled model is measured under: `batch` "
            "(SCHED_BATCH) gives steadier timings; `normal` keeps the tuner's own policy."
        },
    )


@dataclasses.dataclass(frozen=True)
class BudgetSpec:
    """How much tuning to do, and the time limits of each step."""

    trials_per_dispatch: int = dataclasses.field(
        default=40, metadata={"doc": "Search trials per tuning target (at least 1)."}
    )
    max_minutes: float | None = dataclasses.field(
        default=None,
        metadata={
            "doc": "Stop searching after this many minutes and confirm and export what was found; null: no "
            "limit. `tune --max-minutes` overrides it."
        },
    )
    time_share: float = dataclasses.field(
        default=0.9,
        metadata={
            "doc": "Tune the hottest dispatches until they cover this share of the model's time expected "
            "after tuning; in (0, 1]."
        },
    )
    max_dispatches: int = dataclasses.field(
        default=8,
        metadata={
            "doc": "At most this many tuning targets per build (dispatches with the same root op are one target)."
        },
    )
    compile_timeout_s: float = dataclasses.field(
        default=120.0,
        metadata={
            "doc": "Time limit of one iree-compile run, in seconds. A pipeline candidate gets less (10x the "
            "default build's compile time, 30 s at least); a model import at least 600 s."
        },
    )
    run_timeout_s: float = dataclasses.field(
        default=60.0, metadata={"doc": "Time limit of one run of a compiled model (timing or check), in seconds."}
    )
    confirm_rounds: int = dataclasses.field(
        default=7,
        metadata={
            "doc": "Interleaved rounds of the end-to-end comparison of the tuned build with IREE's default "
            "(and of the head-to-head race between tuned builds)."
        },
    )


@dataclasses.dataclass(frozen=True)
class SearchSpec:
    """How the configs are searched: the dispatch search, the model-level pipeline search and
    the history."""

    sampler: str = dataclasses.field(
        default="tpe",
        metadata={"doc": "The Optuna sampler of each dispatch's study: `tpe` (multivariate TPE) or `random`."},
    )
    seed: int = dataclasses.field(
        default=0, metadata={"doc": "Seeds the samplers and the random input data, so that a job repeats."}
    )
    tune_model_flags: bool = dataclasses.field(
        default=True,
        metadata={
            "doc": "Search model-level pass pipelines and flag sets before the dispatches; false: tune under "
            "IREE's default flags only."
        },
    )
    trial_build: str = dataclasses.field(
        default="executable",
        metadata={
            "doc": "`executable`: a trial recompiles only its target's executables and links them into the "
            "model's default build (a model that cannot be split so falls back to `model`); `model`: every "
            "trial compiles the whole model."
        },
    )
    warm_start: bool = dataclasses.field(
        default=True,
        metadata={
            "doc": "A new study first tries the best configs of the most similar finished studies (this "
            "storage's and imported records)."
        },
    )
    from_history: bool = dataclasses.field(
        default=False,
        metadata={
            "doc": "Zero-trial tuning: per target, only IREE's default and the history's nearest configs are "
            "checked and timed, then the winners confirmed and exported; no search. `tune --from-history` "
            "sets it."
        },
    )
    pipeline_trials: int = dataclasses.field(
        default=16,
        metadata={
            "doc": "Model-level pass pipelines measured in all, the proposers' first; 0: only the fixed flag "
            "sets (and `pipelines`) are measured side by side."
        },
    )
    pipeline_patience: int = dataclasses.field(
        default=8,
        metadata={
            "doc": "The pipeline search stops after this many pipelines in a row without a 5% gain (at least 1)."
        },
    )
    pipelines: tuple[str, ...] = dataclasses.field(
        default=(),
        metadata={
            "doc": "Pipelines of your own, tried with the rest: passes in order, comma-separated, e.g. "
            '`"iree-preprocessing-convert-conv-to-channels-last, iree-preprocessing-pad-linalg-ops{pad-size=16}"`. '
            "Checked with iree-opt before anything is compiled."
        },
    )
    transform_dialect: bool = dataclasses.field(
        default=False,
        metadata={
            "doc": "Experimental: also search a transform-dialect codegen script per dispatch (its tiles as "
            "knobs) where a dispatch can be rebuilt by one."
        },
    )
    transform_dialect_trials: int = dataclasses.field(
        default=12,
        metadata={
            "doc": "The transform-dialect scripts' trials per target, on top of `budget.trials_per_dispatch` (>= 0)."
        },
    )
    # Batch-1 convs: see RootOp.script_only.
    transform_dialect_only_route: bool = dataclasses.field(
        default=True,
        metadata={
            "doc": "Tune the ops on which IREE drops a spec's pipeline config but keeps a script's (batch-1 "
            "convs) with transform-dialect scripts, even when `transform_dialect` is off; false: they are "
            "not tuned."
        },
    )
    # The two halves are built by schedtune/iree/_batch1.py.
    named_batch1_convs: bool = dataclasses.field(
        default=True,
        metadata={
            "doc": "Build in two halves with the batch-1 NHWC convs and pools named again in between, so that "
            "a spec's config reaches them; the export then ships the model's prepared second half "
            "(`model.prepared.mlirbc`, see the report's `use:` line)."
        },
    )

    @property
    def scripts_reach_known_issues(self) -> bool:
        """Whether ops only a transform script reaches are tuned (and weighed when planning)."""
        return self.transform_dialect or self.transform_dialect_only_route


@dataclasses.dataclass(frozen=True)
class ProposerSpec:
    """Who proposes the search spaces' skeletons: the built-in heuristics or an LLM."""

    kind: str = dataclasses.field(
        default="heuristic",
        metadata={
            "doc": "`heuristic`: IREE's default neighbourhood and the skeleton library, no LLM; `llm`: an LLM "
            "proposes (validated, with the heuristic proposer as fallback)."
        },
    )
    provider: str | None = dataclasses.field(
        default=None,
        metadata={
            "doc": "For `llm`: `local` starts the embedded local model (`bash scripts/setup-local-llm` once); "
            "null or `openai`: the OpenAI-compatible endpoint at `base_url`."
        },
    )
    base_url: str | None = dataclasses.field(
        default=None,
        metadata={
            "doc": "The OpenAI-compatible endpoint, e.g. `http://127.0.0.1:11434/v1`; needed for `llm` unless "
            "`provider` is `local`."
        },
    )
    model: str | None = dataclasses.field(
        default=None,
        metadata={"doc": "The model name sent to the endpoint; null: `gpt-4o-mini`, or the local model."},
    )
    api_key_env: str | None = dataclasses.field(
        default=None,
        metadata={
            "doc": "The environment variable holding the endpoint's API key (the key is never written "
            "anywhere); null: no key."
        },
    )
    max_skeletons: int = dataclasses.field(
        default=3, metadata={"doc": "At most this many skeletons (or pipelines) kept from one LLM answer."}
    )
    repair_rounds: int = dataclasses.field(
        default=2,
        metadata={"doc": "Rounds in which the errors of invalid proposals are sent back to the LLM to repair."},
    )
    timeout_s: float = dataclasses.field(
        default=60.0,
        metadata={"doc": "Time limit of one LLM call, in seconds; past it, the heuristic proposer is used."},
    )


@dataclasses.dataclass(frozen=True)
class PrecisionSpec:
    """Narrower arithmetic than the model's own, opt-in, under an accuracy budget."""

    contractions: str = dataclasses.field(
        default="f32",
        metadata={
            "doc": "The type the inputs of contractions (matmuls, convs) may be demoted to, with f32 "
            "accumulation (`--iree-global-opt-demote-contraction-inputs-type`): `bf16` or `f16` adds a "
            "demoted twin of every model-level flag set, judged against the f32 reference with "
            "`max_error`; `f32` (default): no demotion. Fast only where the CPU has the narrow type "
            "(e.g. AVX512-BF16)."
        },
    )
    operations: str = dataclasses.field(
        default="all",
        metadata={"doc": "Which contractions are demoted: `all`, `matmul` or `conv`."},
    )
    max_error: float = dataclasses.field(
        default=0.01,
        metadata={
            "doc": "The accuracy budget of a demoted build: every output's relative L2 error against IREE's "
            "f32 default build, on every input set, at most this."
        },
    )

    @property
    def demotes(self) -> bool:
        return self.contractions != "f32"

    def flags(self) -> tuple[str, ...]:
        """The iree-compile flags of the demotion (none at f32)."""
        if not self.demotes:
            return ()
        return (
            f"{DEMOTE_FLAG}={self.contractions}",
            f"--iree-global-opt-demote-contraction-inputs-operations={self.operations}",
        )


DEMOTE_FLAG = "--iree-global-opt-demote-contraction-inputs-type"


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
    config_path: pathlib.Path | None  # None for a job built in Python
    precision: PrecisionSpec = PrecisionSpec()

    @property
    def report_dir(self) -> pathlib.Path:
        return self.output_dir / self.name


_SECTIONS = {
    "model": ModelSpec,
    "target": TargetSpec,
    "budget": BudgetSpec,
    "search": SearchSpec,
    "proposer": ProposerSpec,
    "precision": PrecisionSpec,
}
_TOP_KEYS = {"name", "output", "storage", *_SECTIONS}
# The top-level keys that are not sections, for the config reference: key -> (type, default
# as shown, or None when the key is required, doc).
_TOP_DOCS = {
    "name": (
        "string",
        None,
        "The job's name (letters, digits, `-`, `_`, `.`): it names the report folder and the studies.",
    ),
    "output": (
        "path",
        "reports",
        "The reports folder, relative to the current directory; the job writes to `<output>/<name>/`. "
        "`tune --output` overrides it.",
    ),
    "storage": (
        "string",
        "sqlite:///<output>/<name>/study.db",
        "The database URL of the studies and the cache: any Optuna RDB storage, e.g. "
        "`postgresql+psycopg2://user@host/db`, which several workers and jobs can share.",
    ),
}
_CHOICES = {
    "model.format": ("mlir", "torch", "onnx"),
    "model.input_type": ("auto", "none", "linalg", "torch", "stablehlo", "tosa", "onnx"),
    "search.sampler": ("tpe", "random"),
    "search.trial_build": ("executable", "model"),
    "target.scheduling": SCHEDULING_POLICIES,
    "proposer.kind": ("heuristic", "llm"),
    "proposer.provider": (None, "local", "openai"),
    "precision.contractions": ("f32", "bf16", "f16"),
    "precision.operations": ("all", "matmul", "conv"),
}
# The lowest value each numeric key can work with: (bound, whether the bound itself is allowed).
_MINIMUMS = {
    "budget.trials_per_dispatch": (1, True),
    "budget.max_minutes": (0, True),
    "budget.max_dispatches": (1, True),
    "budget.compile_timeout_s": (0, False),
    "budget.run_timeout_s": (0, False),
    "budget.confirm_rounds": (1, True),
    "search.seed": (0, True),
    "search.pipeline_trials": (0, True),
    "search.pipeline_patience": (1, True),
    "search.transform_dialect_trials": (0, True),
    "proposer.max_skeletons": (1, True),
    "proposer.repair_rounds": (0, True),
    "proposer.timeout_s": (0, False),
    "precision.max_error": (0, False),
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
        bound = _MINIMUMS.get(f"{name}.{key}")
        if bound is not None and value is not None and (value < bound[0] or (value == bound[0] and not bound[1])):
            raise ConfigError(
                f"{name}.{key}: must be {'at least' if bound[1] else 'more than'} {bound[0]}, got {value!r}"
            )
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
    return config_from_dict(raw, base_dir=path.parent, config_path=path.resolve(), output_override=output_override)


def config_from_dict(
    raw: dict[str, Any],
    *,
    base_dir: str | pathlib.Path = ".",
    config_path: pathlib.Path | None = None,
    output_override: str | None = None,
) -> JobConfig:
    """Validate a job given as the YAML file's mapping (the Python API builds one); relative
    paths in it are read from `base_dir`. Raises `ConfigError` with a one-line message."""
    if not isinstance(raw, dict):
        raise ConfigError("expected a mapping at the top level")
    for key in raw:
        if key not in _TOP_KEYS:
            raise ConfigError(f"{key}: unknown key (known: {', '.join(sorted(_TOP_KEYS))})")
    name = raw.get("name")
    # The name is a folder under the output: nothing that could climb out of it or hide.
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise ConfigError(f"name: expected a plain job name (letters, digits, '.', '-', '_'), got {name!r}")
    if "model" not in raw:
        raise ConfigError("model: missing required key")
    base = pathlib.Path(base_dir)
    sections = {key: _section(key, raw.get(key), cls) for key, cls in _SECTIONS.items()}

    model = _model_section(sections["model"], base)
    budget = sections["budget"]
    if not 0 < budget.get("time_share", 0.9) <= 1:
        raise ConfigError("budget.time_share: must be in (0, 1]")
    search = sections["search"]
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
        precision=PrecisionSpec(**sections["precision"]),
        output_dir=output_dir,
        storage=storage,
        config_path=config_path,
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
    ranges = model.get("input_ranges", ())
    if ranges and len(ranges) != len(model["inputs"]):
        raise ConfigError(
            f"model.input_ranges: {len(ranges)} entries for {len(model['inputs'])} inputs (one per input, or none)"
        )
    for i, (spec, text) in enumerate(zip(model["inputs"], ranges)):
        try:
            input_range(spec, text)
        except ValueError as exc:
            raise ConfigError(f"model.input_ranges[{i}]: {exc}") from None
    return model


_INT_LIMITS = {"i8": (-(2**7), 2**7 - 1), "i32": (-(2**31), 2**31 - 1), "i64": (-(2**63), 2**63 - 1)}


def input_range(spec: str, text: str) -> tuple[float, float] | None:
    """The (low, high) range `text` gives input `spec` (None for `default`); ValueError when it
    is malformed, empty, or outside the element type."""
    if text == "default":
        return None
    low_text, sep, high_text = text.partition("..")
    dtype = spec.split("x")[-1]
    try:
        if not sep:
            raise ValueError
        low, high = (int(low_text), int(high_text)) if dtype in _INT_LIMITS else (float(low_text), float(high_text))
    except ValueError:
        kind = "integers" if dtype in _INT_LIMITS else "numbers"
        raise ValueError(f"expected LOW..HIGH ({kind}) or default, got {text!r}") from None
    if not low < high:
        raise ValueError(f"{text!r} is empty: LOW must be below HIGH")
    if dtype in _INT_LIMITS and not (_INT_LIMITS[dtype][0] <= low and high <= _INT_LIMITS[dtype][1]):
        raise ValueError(f"{text!r} does not fit in {dtype}")
    return low, high


_DTYPES = {"f32", "f16", "i32", "i64", "i8", "bf16"}


def _validate_input(spec: str) -> None:
    """Inputs use `iree-run-module --input` shape syntax, e.g. 8x3x32x32xf32."""
    parts = spec.split("x")
    if len(parts) < 2 or parts[-1] not in _DTYPES or not all(p.isdigit() and int(p) > 0 for p in parts[:-1]):
        raise ConfigError(f"model.inputs: {spec!r} is not of the form 8x3x32x32xf32")
