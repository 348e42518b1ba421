"""Thin, typed wrappers over IREE's command-line tools.

Every tool runs in its own process with a timeout: a crashing or hanging compiler or a
segfaulting benchmark becomes a result with a status, never a dead tuning job.
"""

from __future__ import annotations

import dataclasses
import errno
import functools
import io
import json
import math
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import ml_dtypes
import numpy as np

from ..errors import ToolError
from ..files import write_atomic
from ..spec import uses_codegen_library
from ._scheduling import DEFAULT_POLICY, child_setup


@functools.cache
def tool(name: str) -> str:
    """Path of an IREE tool: `SCHEDTUNE_<NAME>` (tests substitute fault-injecting tools), then
    the binary inside the pinned wheels, then PATH.

    The wheels' binaries come before PATH because pip's `iree-compile` on PATH is a Python
    console script that starts the binary: about 0.2 s more for every compile, run and
    profile, several times per trial.
    """
    override = os.environ.get(f"SCHEDTUNE_{name.upper().replace('-', '_')}")
    if override:
        return override
    for module in ("iree.compiler._mlir_libs", "iree._runtime_libs"):
        try:
            mod = __import__(module, fromlist=["__file__"])
        except ImportError:
            continue
        candidate = pathlib.Path(mod.__file__).parent / name
        if candidate.exists():
            return str(candidate)
    found = shutil.which(name)
    if found:
        return found
    raise ToolError(f"{name} not found: install iree-base-compiler and iree-base-runtime (pip install -e .)")


# A tool that fails with less free space than this where it writes ran out of disk.
_DISK_FULL_BYTES = 1 << 20


def _raise_if_disk_full(stderr: str, folder: pathlib.Path | None) -> None:
    """A tool failure caused by a full disk is the job's problem, never the candidate's.

    Raised as ENOSPC so that no caller can cache it as a failed trial: the message, or a
    nearly full disk where the tool writes, gives it away.
    """
    full = "No space left on device" in stderr
    if not full and folder is not None:
        try:
            full = shutil.disk_usage(folder).free < _DISK_FULL_BYTES
        except OSError:
            full = False
    if full:
        raise OSError(errno.ENOSPC, "No space left on device", str(folder) if folder else None)


def _run(
    args: list[str], timeout_s: float, writes_to: pathlib.Path | None = None, scheduling: str | None = None
) -> subprocess.CompletedProcess:
    """Run a tool in its own process group; on timeout the whole group is killed.

    `scheduling`: the policy a tool that runs a compiled model starts under (see `_scheduling`).

    Killing only the direct child can leave grandchildren holding the output pipes, and
    then the wait outlives the timeout. A failure caused by a full disk (at `writes_to`)
    raises ENOSPC.
    """
    proc = subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=child_setup(scheduling) if scheduling else None,
    )
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.communicate()
        raise
    except BaseException:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        raise
    if proc.returncode != 0:
        _raise_if_disk_full(err, writes_to)
    return subprocess.CompletedProcess(args, proc.returncode, out, err)


@functools.cache
def compiler_version() -> str:
    out = subprocess.run([tool("iree-compile"), "--version"], capture_output=True, text=True, timeout=60)
    for line in out.stdout.splitlines():
        if "IREE compiler version" in line:
            return line.split("version", 1)[1].strip()
    raise ToolError(f"cannot read the iree-compile version: {out.stdout[:200]}{out.stderr[:200]}")


@functools.cache
def host_cpu_features() -> str:
    """The CPU feature flags IREE's runtime sees; part of every cache key (AVX2 vs AVX-512 tiles differ)."""
    out = subprocess.run([tool("iree-cpuinfo")], capture_output=True, text=True, timeout=60)
    present = [line.split()[0] for line in out.stdout.splitlines() if line.split()[-1:] == ["1"]]
    return ",".join(present)


@functools.cache
def host_cpu_model() -> str:
    """The CPU's model name, with its family and model numbers where the kernel gives them:
    part of every cache key (the same features can time differently, and virtual machines
    often show one name, e.g. "AMD EPYC", for several generations)."""
    fields: dict[str, str] = {}
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if not key.strip():
                break  # the first processor's block is enough
            fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    if "model name" in fields:
        if "cpu family" in fields and "model" in fields:
            return f"{fields['model name']} (family {fields['cpu family']} model {fields['model']})"
        return fields["model name"]
    import platform

    return platform.processor() or platform.machine()


def target_flags(cpu: str, extra: tuple[str, ...] = ()) -> list[str]:
    return [
        "--iree-hal-target-device=local",
        "--iree-hal-local-target-device-backends=llvm-cpu",
        f"--iree-llvmcpu-target-cpu={cpu}",
        *extra,
    ]


# A model-level flag of schedtune's own, not iree-compile's: build in two halves, with the
# batch-1 convs and pools named again in between (`_batch1`), so that a tuning spec reaches them.
NAMED_BATCH1_FLAG = "--schedtune-named-batch1-convs"
_NOTHING_NAMED = "nothing to rewrite"  # what `_batch1` run as a program prints then

_COMPILES = 0
_COMPILES_LOCK = threading.Lock()  # trial compiles run in a thread pool


def compiles_so_far() -> int:
    """How many times this process ran iree-compile (every build goes through `compile_model`)."""
    return _COMPILES


@dataclasses.dataclass
class CompileResult:
    status: str  # ok | error | timeout | crash
    vmfb: pathlib.Path | None
    configs_dir: pathlib.Path | None
    seconds: float
    error: str = ""
    log: str = ""  # iree-compile's stderr of a successful build (e.g. IR printed on request)

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def _tail(text: str, limit: int = 2000) -> str:
    """The informative end of a tool's error output (first error line kept in front)."""
    lines = [l if len(l) <= 400 else l[:400] + " ..." for l in text.splitlines() if l.strip()]
    errors = [l for l in lines if "error:" in l][:3]
    tail = "\n".join(l for l in lines[-8:] if l not in errors)
    return "\n".join(errors + [tail])[:limit]


def compile_model(
    source: pathlib.Path,
    output: pathlib.Path,
    flags: list[str],
    *,
    spec: pathlib.Path | None = None,
    configs_dir: pathlib.Path | None = None,
    keep_configs: bool = False,
    timeout_s: float = 120.0,
) -> CompileResult:
    """Compile `source` to `output`; with `configs_dir`, also dump each executable's chosen config
    (into an emptied folder, unless `keep_configs`: several compiles then dump into one)."""
    global _COMPILES
    with _COMPILES_LOCK:
        _COMPILES += 1
    prepared = None  # the second half this build made for itself, removed after it
    if NAMED_BATCH1_FLAG in flags:
        flags = [f for f in flags if f != NAMED_BATCH1_FLAG]
        if not any(f.startswith(("--compile-from=", "--compile-mode=")) for f in flags):
            prepared = output.with_name(output.name + ".prepared.mlirbc")
            named = _named_half(source, prepared, flags, timeout_s)
            if isinstance(named, CompileResult):
                prepared.unlink(missing_ok=True)
                return named
            source, flags = prepared, ["--compile-from=global-optimization", *flags]
    try:
        return _compile(source, output, flags, spec, configs_dir, keep_configs, timeout_s)
    finally:
        if prepared is not None:
            prepared.unlink(missing_ok=True)


def _compile(
    source: pathlib.Path,
    output: pathlib.Path,
    flags: list[str],
    spec: pathlib.Path | None,
    configs_dir: pathlib.Path | None,
    keep_configs: bool,
    timeout_s: float,
) -> CompileResult:
    args = [tool("iree-compile"), str(source), *flags, "-o", str(output)]
    if spec is not None:
        # IREE 3.13 deadlocks now and then (0% CPU, forever) when a tuning spec meets the
        # const-eval JIT's thread pool: a worker waits in getOrLoadTransformLibraryModule
        # (MaterializeTuningSpecsPass) while JitGlobalsPass waits for the pool; about one
        # compile in 15 of the GPT-2 block. Single-threaded MLIR passes avoid the race and
        # write the same module, byte for byte, for a slightly longer compile.
        args += [f"--iree-codegen-tuning-spec-path={spec}", "--mlir-disable-threading"]
        if uses_codegen_library(spec.read_text()):
            args.append(f"--iree-codegen-transform-dialect-library={spec}")
    if configs_dir is not None:
        if not keep_configs:
            shutil.rmtree(configs_dir, ignore_errors=True)
        args += ["--iree-codegen-add-tuner-attributes", f"--iree-hal-dump-executable-configurations-to={configs_dir}"]
    start = time.monotonic()
    proc, failure = _run_step("iree-compile", args, timeout_s, output.parent, start)
    if failure is not None:
        return failure
    return CompileResult("ok", output, configs_dir, time.monotonic() - start, log=proc.stderr)


def _run_step(
    what: str, args: list[str], timeout_s: float, writes_to: pathlib.Path, start: float
) -> tuple[subprocess.CompletedProcess | None, CompileResult | None]:
    """One tool of a build: its process, or the build's failure (timeout, crash or error, with
    the informative end of its output) counted from `start`."""
    try:
        proc = _run(args, timeout_s, writes_to=writes_to)
    except subprocess.TimeoutExpired:
        return None, CompileResult(
            "timeout", None, None, time.monotonic() - start, f"{what} timed out after {timeout_s:.0f} s"
        )
    if proc.returncode == 0:
        return proc, None
    detail = _tail(proc.stderr) or f"exit code {proc.returncode}"
    if proc.returncode < 0:
        detail = f"{what} died with signal {-proc.returncode}\n{detail}"
    status = "crash" if proc.returncode < 0 else "error"
    return proc, CompileResult(status, None, None, time.monotonic() - start, detail)


def prepare_named_batch1(
    source: pathlib.Path, prepared: pathlib.Path, flags: list[str], timeout_s: float = 600.0
) -> str:
    """Writes `prepared`: the model after IREE's global optimisation under `flags`, with its
    batch-1 convs and pools named again (`_batch1`), which `--compile-from=global-optimization`
    builds with stock iree-compile. Returns what was named ("" when nothing); raises ToolError
    when a step fails or times out."""
    named = _named_half(source, prepared, flags, timeout_s)
    if isinstance(named, CompileResult):
        raise ToolError(named.error)
    return named


def _named_half(
    source: pathlib.Path, prepared: pathlib.Path, flags: list[str], timeout_s: float
) -> str | CompileResult:
    """`prepare_named_batch1`, with a failure returned as the build's."""
    start = time.monotonic()
    optimised = prepared.with_name(prepared.name + ".global-opt.mlirbc")
    first_half = [f for f in flags if f != NAMED_BATCH1_FLAG and not f.startswith("--compile-to=")]
    steps = [
        (
            "iree-compile",
            [tool("iree-compile"), str(source), *first_half, "--compile-to=global-optimization"]
            + ["--emit-mlir-bytecode", "-o", str(optimised)],
        ),
        ("naming batch-1 convs", [sys.executable, "-m", f"{__package__}._batch1", str(optimised), str(prepared)]),
    ]
    try:
        for what, step in steps:
            proc, failure = _run_step(what, step, timeout_s, prepared.parent, start)
            if failure is not None:
                return failure
    finally:
        optimised.unlink(missing_ok=True)
    named = proc.stdout.strip()
    return "" if named == _NOTHING_NAMED else named


@dataclasses.dataclass
class RunResult:
    status: str  # ok | error | timeout | crash
    outputs: list[np.ndarray]
    error: str = ""


# Input distributions for the numeric check: a tiling bug can hide on one (e.g. small
# values round away an off-by-one tile), so every candidate is run on each. The first set
# is also the one timings are taken on.
INPUT_DISTRIBUTIONS = ("normal", "uniform_wide")


def _input_data(
    rng: np.random.Generator, shape: tuple[int, ...], dtype: str, distribution: str, value_range=None
) -> np.ndarray:
    if dtype.startswith("f") or dtype == "bf16":
        np_type = {"f16": np.float16, "bf16": ml_dtypes.bfloat16}.get(dtype, np.float32)
        if value_range is not None:
            return rng.uniform(value_range[0], value_range[1], size=shape).astype(np_type)
        if distribution == "normal":
            return rng.standard_normal(shape).astype(np_type)
        return rng.uniform(-64.0, 64.0, size=shape).astype(np_type)
    np_type = {"i8": np.int8, "i32": np.int32, "i64": np.int64}[dtype]
    if value_range is not None:
        low, high = value_range
    elif distribution == "normal":
        low, high = 0, 7
    elif dtype == "i8":  # quantized data, not indices: its whole range, negatives included
        low, high = -128, 127
    else:  # i32 / i64 are usually indices or small codes: a wider range could index out of bounds
        low, high = 0, 63
    return rng.integers(int(low), int(high), size=shape, endpoint=True, dtype=np_type)


def save_input_sets(
    specs: tuple[str, ...], folder: pathlib.Path, seed: int, ranges: tuple = ()
) -> list[list[pathlib.Path]]:
    """One list of .npy input files per distribution in `INPUT_DISTRIBUTIONS`; `ranges` gives
    an input's (low, high) instead (None or absent: the defaults). A file already there is kept
    only when it holds exactly the data these specs and this seed give (a new seed or shape, or
    a truncated file, writes it again)."""
    sets = []
    for k, distribution in enumerate(INPUT_DISTRIBUTIONS):
        rng = np.random.default_rng(seed + 1000 * k)
        sub = folder if k == 0 else folder / distribution
        sub.mkdir(parents=True, exist_ok=True)
        paths = []
        for i, spec in enumerate(specs):
            *dims, dtype = spec.split("x")
            value_range = ranges[i] if i < len(ranges) else None
            data = _input_data(rng, tuple(int(d) for d in dims), dtype, distribution, value_range)
            path = sub / f"input_{i}.npy"
            if not _holds(path, data):
                npy = io.BytesIO()
                np.save(npy, data)
                write_atomic(path, npy.getvalue())
            paths.append(path)
        sets.append(paths)
    return sets


def load_array(path: pathlib.Path) -> np.ndarray:
    """An .npy file as an array; bf16 (which numpy stores as 2-byte voids) as ml_dtypes' bfloat16."""
    data = np.load(path, allow_pickle=False)
    return data.view(ml_dtypes.bfloat16) if data.dtype == np.dtype("V2") else data


def _holds(path: pathlib.Path, data: np.ndarray) -> bool:
    try:
        old = load_array(path)
    except (OSError, ValueError, EOFError):
        return False
    return old.dtype == data.dtype and old.shape == data.shape and np.array_equal(old, data, equal_nan=True)


def save_inputs(specs: tuple[str, ...], folder: pathlib.Path, seed: int, ranges: tuple = ()) -> list[pathlib.Path]:
    """Seeded random inputs for the `--input` shape specs (the first, timing, set)."""
    return save_input_sets(specs, folder, seed, ranges)[0]


def _declaration(vmfb: pathlib.Path, entry: str) -> str:
    """`entry`'s ABI declaration (`sync func @main(%input0: tensor<...>) -> (...)`), from the
    function or its `$async` twin (iree-turbine's `main` carries it only there); "" if none."""
    import iree.runtime as rt

    try:
        module = rt.VmModule.mmap(rt.VmInstance(), str(vmfb))
        function = module.lookup_function(entry)
        twin = module.lookup_function(f"{entry}$async")
    except (RuntimeError, ValueError, OSError) as exc:
        raise ToolError(f"cannot read {vmfb.name}: {exc}") from None
    if function is None:
        raise ToolError(f"{vmfb.name} has no function {entry!r}")
    for candidate in (function, twin):
        declaration = candidate.reflection.get("iree.abi.declaration", "") if candidate is not None else ""
        if "->" in declaration:
            return declaration
    return ""


def _top_level_items(text: str) -> list[str]:
    """`text` split at the commas outside any brackets."""
    items, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += ch in "<([{"
        depth -= ch in ">)]}"
        if ch == "," and depth == 0:
            items.append(text[start:i].strip())
            start = i + 1
    last = text[start:].strip()
    return items + [last] if last else items


def _declared_results(vmfb: pathlib.Path, entry: str) -> list[str] | None:
    """Each result's type as declared (`tensor<2x2xbf16>`, `i32`, ...); None when the
    function declares none."""
    declaration = _declaration(vmfb, entry)
    _, arrow, results = declaration.partition("->")
    results = results.strip()
    if not arrow or not results:
        return None
    inner = results[1:-1] if results.startswith("(") else results
    return [item.partition(":")[2].strip() or item for item in _top_level_items(inner)]


def _bf16_shape(result_type: str) -> tuple[int, ...] | None:
    """The shape of a bf16 tensor result (`tensor<2x2xbf16>` or `2x2xbf16` -> (2, 2)); None for
    other types, which iree-run-module writes as .npy (it cannot write bf16 there)."""
    text = result_type.strip()
    if text.startswith("tensor<") and text.endswith(">"):
        text = text[len("tensor<") : -1]
    if not text.endswith("xbf16"):
        return None
    dims = text[: -len("xbf16")].split("x")
    return tuple(int(d) for d in dims) if all(d.isdigit() for d in dims) else None


def result_count(
    vmfb: pathlib.Path,
    entry: str,
    inputs: list[pathlib.Path],
    *,
    timeout_s: float = 60.0,
    scheduling: str = DEFAULT_POLICY,
) -> int:
    """How many results `entry` returns: from its ABI declaration, else from one run that
    prints them (`result[i]: ...`). A count of zero would compare nothing, so it is an error."""
    declared = _declared_results(vmfb, entry)
    if declared is None:
        declared = _printed_result_types(vmfb, entry, inputs, timeout_s, scheduling)
    count = len(declared)
    if count == 0:
        raise ToolError(f"{entry} returns no results: nothing to compare against IREE's default build")
    return count


def run_model(
    vmfb: pathlib.Path,
    entry: str,
    inputs: list[pathlib.Path],
    workdir: pathlib.Path,
    *,
    outputs: int | None = None,
    timeout_s: float = 60.0,
    scheduling: str = DEFAULT_POLICY,
) -> RunResult:
    """Run once on the given inputs and return every output (in a subprocess: a segfault is a result).

    `outputs`: how many results `entry` returns (read from the module when not given). bf16
    results, which iree-run-module cannot write as .npy, come back as ml_dtypes' bfloat16.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    count = outputs
    if count is None:
        count = result_count(vmfb, entry, inputs, timeout_s=timeout_s, scheduling=scheduling)
    declared = _declared_results(vmfb, entry) or []
    shapes = [_bf16_shape(declared[i]) if i < len(declared) else None for i in range(count)]
    result = _run_once(vmfb, entry, inputs, workdir, shapes, timeout_s, scheduling)
    if result.status == "error" and "unsupported data encoding" in result.error and not any(shapes):
        # A bf16 result of a module that declares no result types: read them off a printing run.
        try:
            printed = _printed_result_types(vmfb, entry, inputs, timeout_s, scheduling)
        except ToolError:
            return result
        shapes = [_bf16_shape(t) for t in printed]
        if len(shapes) == count and any(shapes):
            result = _run_once(vmfb, entry, inputs, workdir, shapes, timeout_s, scheduling)
    return result


def _run_once(vmfb, entry, inputs, workdir: pathlib.Path, bf16_shapes, timeout_s: float, scheduling: str) -> RunResult:
    out_paths = [workdir / f"output_{i}.{'npy' if shape is None else 'bin'}" for i, shape in enumerate(bf16_shapes)]
    for p in [*workdir.glob("output_*.npy"), *workdir.glob("output_*.bin")]:
        p.unlink()
    args = [tool("iree-run-module"), f"--module={vmfb}", f"--function={entry}", "--device=local-task"]
    args += [f"--input=@{p}" for p in inputs]
    args += [f"--output=@{p}" for p in out_paths]  # iree-run-module wants exactly one per result
    try:
        proc = _run(args, timeout_s, writes_to=workdir, scheduling=scheduling)
    except subprocess.TimeoutExpired:
        return RunResult("timeout", [], f"iree-run-module timed out after {timeout_s:.0f} s")
    if proc.returncode != 0:
        status = "crash" if proc.returncode < 0 else "error"
        return RunResult(status, [], _tail(proc.stderr) or f"exit code {proc.returncode}")
    return RunResult(
        "ok",
        [
            load_array(p) if shape is None else np.fromfile(p, dtype=ml_dtypes.bfloat16).reshape(shape)
            for p, shape in zip(out_paths, bf16_shapes)
        ],
    )


def _printed_result_types(vmfb, entry, inputs, timeout_s: float, scheduling: str) -> list[str]:
    """Each result's type as iree-run-module prints it (values elided): `SHAPExTYPE` for a
    buffer, the printed text for anything else."""
    args = [tool("iree-run-module"), f"--module={vmfb}", f"--function={entry}", "--device=local-task"]
    args += ["--output_max_element_count=0", *[f"--input=@{p}" for p in inputs]]
    try:
        proc = _run(args, timeout_s, scheduling=scheduling)
    except subprocess.TimeoutExpired:
        raise ToolError(f"iree-run-module timed out after {timeout_s:.0f} s") from None
    if proc.returncode != 0:
        raise ToolError(f"cannot run {vmfb.name} to count its results: {_tail(proc.stderr, 300)}")
    lines = proc.stdout.splitlines()
    types = []
    for i, line in enumerate(lines):
        if not line.startswith("result["):
            continue
        printed = line.partition(":")[2].strip()
        if printed == "hal.buffer_view" and i + 1 < len(lines):
            printed = lines[i + 1].partition("=")[0].strip()
        types.append(printed)
    return types


@dataclasses.dataclass(frozen=True)
class DispatchTiming:
    name: str
    count: int
    avg_ns: float
    min_ns: float
    # Model calls in the profile. Not the largest dispatch count: a dispatch that runs three
    # times per call (a copy between convs) would cut every other dispatch's time to a third.
    calls: int = 0


def _benchmark(
    vmfb: pathlib.Path,
    entry: str,
    inputs: list[pathlib.Path],
    iterations: int,
    timeout_s: float,
    extra: list[str],
    writes_to: pathlib.Path | None = None,
    scheduling: str = DEFAULT_POLICY,
) -> subprocess.CompletedProcess:
    args = [
        tool("iree-benchmark-module"),
        f"--module={vmfb}",
        f"--function={entry}",
        "--device=local-task",
        f"--benchmark_min_time={iterations}x",
        *extra,
        *[f"--input=@{p}" for p in inputs],
    ]
    try:
        proc = _run(args, timeout_s, writes_to=writes_to, scheduling=scheduling)
    except subprocess.TimeoutExpired:
        raise ToolError(f"benchmark of {vmfb.name} timed out after {timeout_s:.0f} s") from None
    if proc.returncode != 0:
        raise ToolError(f"benchmark failed ({proc.returncode}): {_tail(proc.stderr, 500)}")
    return proc


def per_call_ns(timings: dict[str, DispatchTiming]) -> dict[str, float]:
    """Each dispatch's time in one model call: a dispatch run twice per call counts twice."""
    calls = max((t.calls for t in timings.values()), default=0)
    if not calls:  # a profile recorded before the call count was kept
        calls = max((t.count for t in timings.values()), default=1) or 1
    return {name: t.avg_ns * t.count / calls for name, t in timings.items()}


def dispatches_ns(timings: dict[str, DispatchTiming], names) -> float:
    """The time in one model call of the dispatches `names` (one absent from the profile counts 0)."""
    in_model = per_call_ns(timings)
    return sum(in_model.get(n, 0.0) for n in names)


def profile_dispatches(
    vmfb: pathlib.Path,
    entry: str,
    inputs: list[pathlib.Path],
    workdir: pathlib.Path,
    *,
    iterations: int = 20,
    timeout_s: float = 60.0,
    scheduling: str = DEFAULT_POLICY,
) -> dict[str, DispatchTiming]:
    """Per-dispatch time inside the whole model (host-execution profiling, no Tracy)."""
    workdir.mkdir(parents=True, exist_ok=True)
    prof = workdir / "profile.ireeprof"
    prof.unlink(missing_ok=True)
    _benchmark(
        vmfb,
        entry,
        inputs,
        iterations,
        timeout_s,
        ["--device_profiling_mode=host-execution,executable-metadata", f"--device_profiling_output={prof}"],
        writes_to=workdir,
        scheduling=scheduling,
    )
    try:
        out = _run([tool("iree-profile"), "dispatch", "--format=jsonl", str(prof)], timeout_s, writes_to=workdir)
    except subprocess.TimeoutExpired:
        raise ToolError(f"iree-profile timed out after {timeout_s:.0f} s") from None
    if out.returncode != 0:
        raise ToolError(f"iree-profile failed: {_tail(out.stderr, 500)}")
    timings: dict[str, DispatchTiming] = {}
    for line in out.stdout.splitlines():
        row = json.loads(line)
        if row.get("type") != "host_dispatch_group":
            continue
        name = row["key"]
        timings[name] = DispatchTiming(
            name, int(row["count"]), float(row["avg_ns"]), float(row["min_ns"]), calls=iterations
        )
    return timings


# How long one end-to-end benchmark round lasts, at least: on a shared machine a round of a
# few milliseconds is one scheduling hiccup away from a 1.5x outlier.
ROUND_MS = 300.0


def profile_iterations_for(call_ms: float) -> int:
    """Model calls per dispatch profile for a model whose call takes `call_ms`: 20 for small
    models (each dispatch is microseconds: more calls, less noise), fewer for large ones,
    whose every dispatch is long enough to time in a few calls (a 170 ms ResNet-50 call
    profiled 20 times took 3.4 s per trial). Coarse steps, so that a noisy estimate rarely
    changes the value (it is part of every cache key)."""
    if call_ms > 100.0:
        return 5
    if call_ms > 25.0:
        return 10
    return 20


def round_iterations(
    vmfb: pathlib.Path,
    entry: str,
    inputs: list[pathlib.Path],
    *,
    minimum: int = 5,
    timeout_s: float = 120.0,
    scheduling: str = DEFAULT_POLICY,
) -> int:
    """Calls per benchmark round so that a round lasts about `ROUND_MS`, after a warm-up call
    (page faults, thread start-up) whose time is the estimate; `minimum` calls at least (a
    fixed 20 made one round of a one-second model take 20 s, and a job's flag stage take most
    of its time limit)."""
    warm_ms = benchmark_model(vmfb, entry, inputs, iterations=3, timeout_s=timeout_s, scheduling=scheduling)
    return max(minimum, math.ceil(ROUND_MS / max(warm_ms, 1e-3)))


def benchmark_model(
    vmfb: pathlib.Path,
    entry: str,
    inputs: list[pathlib.Path],
    *,
    iterations: int = 20,
    timeout_s: float = 120.0,
    scheduling: str = DEFAULT_POLICY,
) -> float:
    """Mean wall time of one call, in ms, over `iterations` calls (one benchmark round)."""
    proc = _benchmark(vmfb, entry, inputs, iterations, timeout_s, ["--benchmark_format=json"], scheduling=scheduling)
    data = json.loads(proc.stdout)
    for bench in data["benchmarks"]:
        if bench.get("run_type", "iteration") == "iteration":
            unit = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}[bench.get("time_unit", "ns")]
            return float(bench["real_time"]) * unit
    raise ToolError("benchmark printed no result")


@functools.cache
def registered_passes() -> dict[str, frozenset[str]]:
    """Pass name -> its option names, as the installed `iree-opt --help` lists them.

    Passes are the `--name` lines indented six spaces under "Passes:"; a pass's options
    follow it indented eight."""
    proc = _run([tool("iree-opt"), "--help"], 120)
    passes: dict[str, set[str]] = {}
    current: str | None = None
    for line in proc.stdout.splitlines():
        stripped = line.lstrip(" ")
        indent = len(line) - len(stripped)
        if not stripped.startswith("--"):
            continue
        name = stripped[2:].split("=")[0].split()[0]
        if indent == 6:
            current = name
            passes[current] = set()
        elif indent == 8 and current is not None:
            passes[current].add(name)
        else:
            current = None
    return {name: frozenset(options) for name, options in passes.items()}


def _iree_opt_error(text: str, args: list[str]) -> str | None:
    """Run iree-opt with `args` on `text` (in a temporary file): None when it succeeds, else
    its error message, without the file's name."""
    with tempfile.TemporaryDirectory(prefix="schedtune-opt-") as folder:
        path = pathlib.Path(folder) / "input.mlir"
        path.write_text(text)
        proc = _run([tool("iree-opt"), *args, str(path)], 60)
    if proc.returncode == 0:
        return None
    lines = [ln.strip() for ln in proc.stderr.splitlines() if ln.strip()]
    for line in lines:
        # "<unknown>:0: error: MLIR Textual PassPipeline Parser:1:11: error: 'x' does not refer to ...":
        # the text after the last "error:".
        message = line.split("error:")[-1].strip() if "error:" in line else ""
        if message:
            return message
    return lines[0] if lines else f"iree-opt exited {proc.returncode}"


def mlir_error(text: str) -> str | None:
    """None when iree-opt parses and verifies `text` (e.g. a tuning spec with codegen
    sequences), else its first error: a script that cannot be read fails here in a fraction
    of a second instead of in a compile."""
    return _iree_opt_error(text, ["-o", os.devnull])


@functools.cache
def pass_pipeline_error(pipeline: str) -> str | None:
    """None when iree-opt parses `pipeline` (a textual pass pipeline, e.g.
    `builtin.module(util.func(p1, p2{opt=1}))`) with the installed passes, else iree-opt's
    first error. Needed because iree-compile ignores a pipeline it cannot parse and still
    exits 0."""
    return _iree_opt_error("module {}\n", [f"--pass-pipeline={pipeline}"])
