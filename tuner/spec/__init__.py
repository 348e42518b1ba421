"""Tuning-spec stage: configs as data, rendered into the MLIR spec IREE reads."""

from ._config import (
    MAX_NATIVE_VECTORS,
    PIPELINES,
    TILE_LEVELS,
    CompilationConfig,
    parse_lowering_config,
    parse_native_vector_bytes,
    parse_translation_info,
)
from ._render import OpMatcher, render_spec

__all__ = [
    "PIPELINES",
    "MAX_NATIVE_VECTORS",
    "TILE_LEVELS",
    "CompilationConfig",
    "OpMatcher",
    "parse_lowering_config",
    "parse_native_vector_bytes",
    "parse_translation_info",
    "render_spec",
]
