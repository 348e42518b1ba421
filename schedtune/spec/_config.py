"""The compilation config a trial sets on one root op, and its MLIR attribute form.

This module and `_render.py` are the only places that write or read IREE's CPU
`lowering_config` / `translation_info` syntax: when IREE changes it (it did in Feb 2026),
only these two files change.
"""

from __future__ import annotations

import dataclasses
import json

# Tile levels of `#iree_cpu.lowering_config`, in the order IREE prints them.
TILE_LEVELS = (
    "distribution",
    "cache_parallel",
    "cache_reduction",
    "vector_common_parallel",
    "vector_reduction",
    "vector_inner_parallel",
)

PIPELINES = (
    "Default",
    "DoubleTilingExpert",
    "ConvTileAndDecomposeExpert",
    "Mmt4dTilingExpert",
    "BufferOpsTileAndVectorize",
    "DataTiling",
    "LinalgExtTileAndVectorize",
    "TransformDialectCodegen",  # the transform-dialect tier (spec/_transform.py): not an IREE pipeline
)
TRANSFORM_DIALECT = "TransformDialectCodegen"
TRANSFORM_DIALECT_INFO = "#iree_codegen.transform_dialect_codegen"


@dataclasses.dataclass(frozen=True)
class CompilationConfig:
    """Tile sizes per level (one entry per loop of the root op), pipeline and peeling."""

    pipeline: str
    tiles: tuple[tuple[str, tuple[int, ...]], ...]
    loop_peeling: bool = False

    def __post_init__(self) -> None:
        if self.pipeline not in PIPELINES:
            raise ValueError(f"unknown pipeline {self.pipeline!r}; known: {', '.join(PIPELINES)}")
        for level, _ in self.tiles:
            if level not in TILE_LEVELS:
                raise ValueError(f"unknown tile level {level!r}; known: {', '.join(TILE_LEVELS)}")

    @classmethod
    def make(cls, pipeline: str, tiles: dict[str, list[int]], loop_peeling: bool = False) -> CompilationConfig:
        ordered = tuple((lvl, tuple(int(v) for v in tiles[lvl])) for lvl in TILE_LEVELS if lvl in tiles)
        return cls(pipeline=pipeline, tiles=ordered, loop_peeling=loop_peeling)

    @property
    def tile_map(self) -> dict[str, tuple[int, ...]]:
        return dict(self.tiles)

    def without_loop(self, loop: int) -> CompilationConfig:
        """This config for the op without loop `loop` (each level loses that entry)."""
        return dataclasses.replace(
            self, tiles=tuple((lvl, sizes[:loop] + sizes[loop + 1 :]) for lvl, sizes in self.tiles)
        )

    def lowering_config_attr(self) -> str:
        body = ", ".join(f"{lvl} = [{', '.join(map(str, sizes))}]" for lvl, sizes in sorted(self.tiles))
        return f"#iree_cpu.lowering_config<{body}>"

    def translation_info_attr(self, codegen: str = "") -> str:
        """`codegen`: the transform-dialect tier's codegen sequence for this op, by name."""
        if self.pipeline == TRANSFORM_DIALECT:
            if not codegen:
                raise ValueError("a transform-dialect config needs the name of its codegen sequence")
            return f"#iree_codegen.translation_info<pipeline = {TRANSFORM_DIALECT_INFO} codegen_spec = @{codegen}>"
        extra = ", {enable_loop_peeling}" if self.loop_peeling else ""
        return f"#iree_codegen.translation_info<pipeline = #iree_cpu.pipeline<{self.pipeline}>{extra}>"

    def compilation_info_attr(self, codegen: str = "") -> str:
        # Under the transform-dialect tier IREE keeps the lowering_config on the op: it is how
        # a build is read back to check that the script was applied.
        return (
            f"#iree_codegen.compilation_info<\n"
            f"      lowering_config = {self.lowering_config_attr()},\n"
            f"      translation_info = {self.translation_info_attr(codegen)}>"
        )

    def canonical(self) -> str:
        """Stable text used in cache keys and reports."""
        return json.dumps(
            {
                "pipeline": self.pipeline,
                "tiles": {k: list(v) for k, v in self.tiles},
                "loop_peeling": self.loop_peeling,
            },
            sort_keys=True,
        )

    def to_json(self) -> dict:
        return json.loads(self.canonical())

    @classmethod
    def from_json(cls, data: dict) -> CompilationConfig:
        return cls.make(data["pipeline"], data["tiles"], bool(data.get("loop_peeling", False)))


def parse_lowering_config(attr_text: str) -> dict[str, tuple[int, ...]]:
    """Read the tile levels out of a printed `#iree_cpu.lowering_config<...>`.

    The Python bindings expose no accessor for IREE's CPU attribute, so its printed form
    (a flat list of `level = [ints]`) is read here and nowhere else.
    """
    prefix = "#iree_cpu.lowering_config<"
    text = attr_text.strip()
    if not text.startswith(prefix) or not text.endswith(">"):
        raise ValueError(f"not a CPU lowering_config: {attr_text[:80]}")
    body = text[len(prefix) : -1]
    levels: dict[str, tuple[int, ...]] = {}
    for item in body.split("]"):
        item = item.strip().lstrip(",").strip()
        if not item:
            continue
        name, _, values = item.partition("=")
        values = values.strip().lstrip("[")
        levels[name.strip()] = tuple(int(v) for v in values.split(",") if v.strip())
    return levels


# IREE's large-vector check (LLVMCPUVerifyVectorSizeLegality): no vector, and no vector
# contraction's whole iteration space, may reach this many native vectors.
MAX_NATIVE_VECTORS = 512
# What IREE assumes when a target does not say (8 bytes).
DEFAULT_NATIVE_VECTOR_BYTES = 8


def parse_native_vector_bytes(target_attr_text: str) -> int:
    """`native_vector_size` (bytes) from a printed `#hal.executable.target<...>`."""
    marker = "native_vector_size = "
    start = target_attr_text.find(marker)
    if start < 0:
        return DEFAULT_NATIVE_VECTOR_BYTES
    digits = target_attr_text[start + len(marker) :].split(" ", 1)[0].rstrip(",}>")
    return int(digits) if digits.isdigit() else DEFAULT_NATIVE_VECTOR_BYTES


def parse_translation_info(attr_text: str) -> tuple[str, bool]:
    """(pipeline, loop peeling) from a printed `#iree_codegen.translation_info<...>`."""
    if TRANSFORM_DIALECT_INFO in attr_text:
        return TRANSFORM_DIALECT, False
    marker = "#iree_cpu.pipeline<"
    start = attr_text.find(marker)
    if start < 0:
        return "", False
    start += len(marker)
    pipeline = attr_text[start : attr_text.index(">", start)]
    return pipeline, "enable_loop_peeling" in attr_text
