"""The transform-dialect tier: a whole dispatch's codegen as a transform script.

Instead of handing the root op to one of IREE's pipelines, the spec points its
`translation_info` at a codegen sequence of its own (`#iree_codegen.transform_dialect_codegen`)
that tiles the dispatch to workgroups (`tile_using_forall`, every other op of the dispatch
fused in), tiles again to register blocks, tiles the root's reductions, vectorises (IREE's
own conv decomposition and vectorisation passes, run from the script), bufferises and lowers.
The knobs are the config's tile levels, read as:

- `distribution`: the workgroup tile of each of the root's parallel loops (1 to 3 of them);
- `vector_common_parallel`: the register block, a tile of the workgroup tile;
- `vector_reduction`: the step of each reduction loop of the root (0: the whole loop).

When the root feeds one elementwise consumer that writes the result (bias + activation), the
consumer is what is tiled, through the loop map in `DispatchOps.last_loops`, and the root is
fused into its tiles. IREE's notes record two traps: a script without the workgroup-count op
compiles and computes the wrong thing, and a pattern set can hang the compiler. So every
candidate is checked like any other (numerics against the default build, compile timeout).
"""

from __future__ import annotations

import dataclasses

from ._config import TRANSFORM_DIALECT_INFO, CompilationConfig

_OP = "!transform.any_op"
# IREE maps at most three forall loops onto the workgroup grid, innermost on x.
_BLOCKS = ("#gpu.block<z>", "#gpu.block<y>", "#gpu.block<x>")
WORKGROUP_COUNT = "transform.iree.populate_workgroup_count_region_using_num_threads_slice"


@dataclasses.dataclass(frozen=True)
class DispatchOps:
    """A dispatch as the transform-dialect tier rebuilds it: its linalg ops in IR order (the
    store's producer last), the root's position among them, and, when the last op is an
    elementwise consumer rather than the root, the root loop behind each of its loops."""

    count: int
    root: int
    last_loops: tuple[int, ...] | None = None

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


def uses_codegen_library(spec_text: str) -> bool:
    """Whether a spec names codegen sequences of its own: iree-compile must then also be given
    it as its transform library (`--iree-codegen-transform-dialect-library`)."""
    return TRANSFORM_DIALECT_INFO in spec_text


def _tiles_of_last(ops: DispatchOps, sizes: tuple[int, ...]) -> tuple[int, ...]:
    return sizes if ops.last_loops is None else tuple(sizes[r] for r in ops.last_loops)


def transform_problems(config: CompilationConfig, bounds: list[int], parallel: list[bool]) -> list[str]:
    """Why a transform-dialect config cannot be built as asked (empty when it can). A tile
    that does not divide its loop leaves dynamic shapes, which the vectoriser skips."""
    tiles = config.tile_map
    n = len(bounds)
    distribution = tiles.get("distribution", (0,) * n)
    vector = tiles.get("vector_common_parallel", (0,) * n)
    reduction = tiles.get("vector_reduction", (0,) * n)
    errors = []
    distributed = [i for i in range(n) if distribution[i] and parallel[i]]
    if not 1 <= len(distributed) <= len(_BLOCKS):
        errors.append(f"distribution tiles {len(distributed)} parallel loops; the workgroup grid takes 1 to 3")
    for i in range(n):
        if not parallel[i] and (distribution[i] or vector[i]):
            errors.append(f"loop {i} is a reduction: its distribution and vector tiles must be 0")
        whole = distribution[i] or bounds[i]
        if parallel[i] and distribution[i] and bounds[i] % distribution[i]:
            errors.append(f"distribution tile {distribution[i]} does not divide loop {i} ({bounds[i]})")
        if parallel[i] and vector[i] and whole % vector[i]:
            errors.append(f"vector tile {vector[i]} does not divide the workgroup tile {whole} of loop {i}")
        if not parallel[i] and reduction[i] and bounds[i] % reduction[i]:
            errors.append(f"reduction step {reduction[i]} does not divide loop {i} ({bounds[i]})")
    if config.loop_peeling:
        errors.append("loop peeling is a pipeline option; the transform-dialect tier has none")
    return errors


class _Script:
    """Lines of one named sequence, with fresh SSA names."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._n = 0

    def fresh(self, stem: str) -> str:
        self._n += 1
        return f"%{stem}{self._n}"

    def add(self, line: str) -> None:
        self.lines.append(f"    {line}")

    def tile_for(self, op: str, sizes: tuple[int, ...]) -> tuple[str, list[str]]:
        loops = [self.fresh("loop") for s in sizes if s]
        if not loops:
            return op, []
        tiled = self.fresh("tiled")
        types = ", ".join([_OP] * (len(loops) + 1))
        self.add(
            f"{tiled}, {', '.join(loops)} = transform.structured.tile_using_for {op} "
            f"tile_sizes [{', '.join(map(str, sizes))}] : ({_OP}) -> ({types})"
        )
        return tiled, loops

    def fuse(self, handles: dict[int, str], order: list[int], into: str) -> str:
        for i in order:
            fused, container = self.fresh("fused"), self.fresh("container")
            self.add(
                f"{fused}, {container} = transform.structured.fuse_into_containing_op {handles[i]} into {into}"
                f" : ({_OP}, {_OP}) -> ({_OP}, {_OP})"
            )
            handles[i], into = fused, container
        return into


def render_codegen(name: str, ops: DispatchOps, config: CompilationConfig, n_loops: int) -> str:
    """The codegen sequence `@name` for one dispatch under `config`."""
    tiles = config.tile_map
    zero = (0,) * n_loops
    workgroup = _tiles_of_last(ops, tiles.get("distribution", zero))
    register = _tiles_of_last(ops, tiles.get("vector_common_parallel", zero))
    steps = tiles.get("vector_reduction", zero)
    last = ops.count - 1
    others = list(range(last - 1, -1, -1))  # fused last-produced first: each is used inside by then
    script = _Script()
    handles = {i: f"%op{i}" for i in range(ops.count)}
    script.add(f"%ops = transform.structured.match interface{{LinalgOp}} in %variant_op : ({_OP}) -> {_OP}")
    results = ", ".join(handles[i] for i in range(ops.count))
    script.add(f"{results} = transform.split_handle %ops : ({_OP}) -> ({', '.join([_OP] * ops.count)})")
    blocks = ", ".join(_BLOCKS[len(_BLOCKS) - sum(1 for t in workgroup if t) :])
    tiled, forall = script.fresh("tiled"), script.fresh("forall")
    script.add(
        f"{tiled}, {forall} = transform.structured.tile_using_forall {handles[last]} "
        f"tile_sizes [{', '.join(map(str, workgroup))}] (mapping = [{blocks}]) : ({_OP}) -> ({_OP}, {_OP})"
    )
    handles[last] = tiled
    if WORKGROUP_COUNT:
        script.add(f"{WORKGROUP_COUNT} {forall} : ({_OP}) -> ()")
    script.fuse(handles, others, forall)
    handles[last], loops = script.tile_for(handles[last], register)
    if loops and ops.last_loops is not None:
        # The root (and its init) into the consumer's register tile. A root that writes the
        # result keeps its init at workgroup level: that init is the loops' iter_arg, which
        # fuse_into_containing_op cannot take.
        script.fuse(handles, others, loops[-1])
    handles[ops.root], _ = script.tile_for(handles[ops.root], steps)
    script.lines += _LOWERING
    body = "\n".join(script.lines)
    return (
        f"  transform.named_sequence @{name}(%variant_op: {_OP} {{transform.consumed}}) {{\n{body}\n"
        "    transform.yield\n  }"
    )


# Vectorise, bufferise, map the forall onto workgroups, lower the vector ops, and mark the
# function done (no IREE pipeline runs after the script). Vectorisation is IREE's own: its
# pass decomposes a conv whose tiles leave a unit output row and filter row into 1-D convs
# (upstream's `vectorize_children_and_apply_patterns` left a 2-D conv scalar, and with
# `structured.decompose` it wrote only the first row of a register block into the result).
_LOWERING = [
    f'    %func = transform.structured.match ops{{["func.func"]}} in %variant_op : ({_OP}) -> {_OP}',
    '    %decomposed = transform.apply_registered_pass "iree-codegen-decompose-convolution-to-lower-dim-ops"'
    f" to %func : ({_OP}) -> {_OP}",
    '    %vectorised = transform.apply_registered_pass "iree-codegen-generic-vectorization"'
    f" to %decomposed : ({_OP}) -> {_OP}",
    "    transform.apply_patterns to %vectorised {",
    "      transform.apply_patterns.canonicalization",
    "      transform.apply_patterns.linalg.tiling_canonicalization",
    f"    }} : {_OP}",
    f"    transform.apply_cse to %vectorised : {_OP}",
    f"    transform.iree.eliminate_empty_tensors %variant_op : ({_OP}) -> ()",
    f"    %bufferised = transform.iree.bufferize %variant_op : ({_OP}) -> {_OP}",
    f'    %memref_func = transform.structured.match ops{{["func.func"]}} in %bufferised : ({_OP}) -> {_OP}',
    f"    transform.iree.forall_to_workgroup %memref_func : ({_OP}) -> ()",
    # Temporaries of fused tiles are allocated inside the loops; LLVM lowering wants them
    # at the function's entry.
    f"    transform.iree.hoist_static_alloc %memref_func : ({_OP}) -> ()",
    "    transform.apply_patterns to %memref_func {",
    '      transform.apply_patterns.vector.lower_contraction lowering_strategy = "outerproduct"',
    "      transform.apply_patterns.vector.lower_outerproduct",
    "      transform.apply_patterns.canonicalization",
    f"    }} : {_OP}",
    # Accumulators stay in registers across a reduction loop instead of a load and a store
    # per step (this consumes the function's handle).
    f"    %hoisted = transform.structured.hoist_redundant_vector_transfers %memref_func : ({_OP}) -> {_OP}",
    "    %done = transform.param.constant #iree_codegen.translation_info<pipeline = #iree_codegen.no_pipeline>"
    " -> !transform.any_param",
    f'    transform.annotate %hoisted "translation_info" = %done : {_OP}, !transform.any_param',
]
