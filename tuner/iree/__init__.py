"""IREE's tools behind small typed calls (compile, run, profile, benchmark)."""
from ._tools import (
    CompileResult,
    DispatchTiming,
    RunResult,
    ToolError,
    benchmark_model,
    compile_model,
    compiler_version,
    host_cpu_features,
    per_call_ns,
    profile_dispatches,
    run_model,
    save_inputs,
    target_flags,
    tool,
)

__all__ = [
    "CompileResult",
    "DispatchTiming",
    "RunResult",
    "ToolError",
    "benchmark_model",
    "compile_model",
    "compiler_version",
    "host_cpu_features",
    "per_call_ns",
    "profile_dispatches",
    "run_model",
    "save_inputs",
    "target_flags",
    "tool",
]
