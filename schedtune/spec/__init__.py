"""Tuning-spec stage: configs as data, rendered into the MLIR spec IREE reads."""

from ._config import (
    MAX_NATIVE_VECTORS,
    PIPELINES,
    TILE_LEVELS,
    TRANSFORM_DIALECT,
    CompilationConfig,
    parse_lowering_config,
    parse_native_vector_bytes,
    parse_translation_info,
)
from ._render import OpMatcher, render_spec
from ._transform import DispatchOps, transform_problems, uses_codegen_library

__all__ = [
    "PIPELINES",
    "MAX_NATIVE_VECTORS",
    "TILE_LEVELS",
    "TRANSFORM_DIALECT",
    "CompilationConfig",
    "DispatchOps",
    "OpMatcher",
    "parse_lowering_config",
    "parse_native_vector_bytes",
    "parse_translation_info",
    "render_spec",
    "transform_problems",
    "uses_codegen_library",
]
