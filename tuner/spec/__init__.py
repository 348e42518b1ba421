"""Tuning-spec stage: configs as data, rendered into the MLIR spec IREE reads."""

from ._config import (
    PIPELINES,
    TILE_LEVELS,
    CompilationConfig,
    parse_lowering_config,
    parse_translation_info,
)
from ._render import OpMatcher, render_spec

__all__ = [
    "PIPELINES",
    "TILE_LEVELS",
    "CompilationConfig",
    "OpMatcher",
    "parse_lowering_config",
    "parse_translation_info",
    "render_spec",
]
