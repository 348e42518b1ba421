"""2-D convolutions: dense (conv2d), depthwise and pooling, read by linalg's convolution inference."""

from __future__ import annotations

from typing import ClassVar

from iree.compiler import ir
from iree.compiler.dialects import linalg

from ..spec import MAX_NATIVE_VECTORS, TRANSFORM_DIALECT
from ._base import Loop, OpFamily, Recognised, is_mul_add, maps_without_loop, operands_matcher, recognised_by_groups

# Matcher result order of `transform.iree.match.convolution`.
_GROUPS = ("n", "oh_ow", "oc", "kh_kw", "ic", "c")
_NAMES = {"oh_ow": ("oh", "ow"), "kh_kw": ("kh", "kw")}


def _convolution_groups(op: ir.Operation) -> dict[str, list[int]] | None:
    if len(list(op.operands)) < 3 or not linalg.isa_convolution_op(op) or not is_mul_add(op):
        return None
    dims = linalg.infer_convolution_dimensions(op)
    return {
        "n": list(dims.batch),
        "oh_ow": list(dims.output_image),
        "oc": list(dims.output_channel),
        "kh_kw": list(dims.filter_loop),
        "ic": list(dims.input_channel),
        "c": list(dims.depth),
        "_strides": list(dims.strides),
        "_dilations": list(dims.dilations),
    }


def _recognise(op, maps, bounds, groups) -> Recognised:
    batch = groups["n"]
    unit_batch = {}
    if len(batch) == 1 and bounds[batch[0]] == 1 and op.name == "linalg.generic":
        # How the spec stage sees a batch-1 conv (see OpMatcher.unit_batch_loop).
        unit_batch = {"unit_batch_loop": batch[0], "batchless_maps": maps_without_loop(maps, batch[0])}
    return recognised_by_groups(
        op,
        maps,
        bounds,
        "convolution",
        {k: groups[k] for k in _GROUPS},
        _NAMES,
        strides=tuple(groups["_strides"]),
        dilations=tuple(groups["_dilations"]),
        **unit_batch,
    )


def _unit_batch(loops: tuple[Loop, ...], op_name: str) -> bool:
    """The op has batch 1, or its unit batch loop is already folded away, and IREE rebuilt it
    after the spec stage. A *named* batch-1 op in a configured dispatch was not rebuilt
    (InsertBatchDimForBatchlessConvPass rebuilds generics only): it came through with its
    batch loop, as builds with `NAMED_BATCH1_FLAG` keep it, and a spec reaches it."""
    return op_name == "linalg.generic" and [loop.bound for loop in loops if loop.role == "n"] in ([], [1])


class _ConvolutionFamily(OpFamily):
    reduction_roles: ClassVar[frozenset[str]] = frozenset({"kh", "kw", "ic"})

    def check_config(self, config, loops, vector_limit, native_vector_bytes=32):
        """Every vector tile divides its workgroup tile: IREE's conv pipeline does not peel, and
        the remainder runs unvectorised (on a 7x7x512 conv, vector ow 2 of a 7-wide workgroup
        tile ran 20x slower than IREE's default, Zen 4)."""
        vector = config.tile_map.get("vector_common_parallel")
        if not vector or config.pipeline == TRANSFORM_DIALECT:
            return []
        distribution = config.tile_map.get("distribution", (0,) * len(loops))
        return [
            f"vector tile {v} does not divide the workgroup tile {d or loop.bound} of loop {loop.role}"
            for loop, d, v in zip(loops, distribution, vector)
            if loop.parallel and v and (d or loop.bound) % v
        ]

    def known_issue(self, loops: tuple[Loop, ...], op_name: str = "linalg.generic") -> str | None:
        # IREE applies the spec's config to the batch-less op, then
        # InsertBatchDimForBatchlessConvPass rebuilds the op and drops it (IREE 3.13;
        # tests/test_evaluation.py fails the day IREE fixes it). Knowing it up front lets a
        # flag set that turns these convs into matmuls (im2col) be preferred for tuning.
        if _unit_batch(loops, op_name):
            return "batch-1 conv: IREE drops a spec's config on it (InsertBatchDimForBatchlessConvPass)"
        return None


def vector_registers(vector_limit: int, native_vector_bytes: int) -> tuple[int, int]:
    """(lanes of the op's element type, vector registers) of the target: IREE's vector limit
    is MAX_NATIVE_VECTORS native vectors; x86 has 32 vector registers with AVX-512, else 16."""
    return max(vector_limit // MAX_NATIVE_VECTORS, 1), 32 if native_vector_bytes >= 64 else 16


class Conv2dFamily(_ConvolutionFamily):
    name = "conv2d"
    expected_gain = 2.0
    prompt_notes = (
        "ConvTileAndDecomposeExpert decomposes the conv into 1-D convs after tiling: vector tiles of oh, kh "
        "and kw must be 1. Register blocking comes from the vector tiles on oc and ow."
    )

    def check_config(self, config, loops, vector_limit, native_vector_bytes=32):
        """The register block's accumulators (the vector tile over the output, in vectors along
        the contiguous loop: oc in NHWC, ow in NCHW) must fit the target's vector registers;
        past that LLVM spills them at every reduction step. The loops do not say the layout,
        so a block is rejected only when it overflows read either way."""
        vector = config.tile_map.get("vector_common_parallel")
        if not vector or config.pipeline == TRANSFORM_DIALECT:
            return []
        lanes, registers = vector_registers(vector_limit, native_vector_bytes)
        tiles = {l.role: max(v, 1) for l, v in zip(loops, vector)}
        rows = tiles.get("oh", 1) * tiles.get("n", 1)
        ow, oc = tiles.get("ow", 1), tiles.get("oc", 1)
        accumulators = rows * min(ow * -(-oc // lanes), oc * -(-ow // lanes))
        errors = []
        if accumulators > registers:
            errors.append(f"register block of {accumulators} vector accumulators; the target has {registers} registers")
        return errors + super().check_config(config, loops, vector_limit, native_vector_bytes)

    def recognise(self, op, maps, bounds):
        groups = _convolution_groups(op)
        if groups is None or not (groups["oc"] and groups["ic"] and len(groups["oh_ow"]) == 2):
            return None
        return _recognise(op, maps, bounds, groups)


class DepthwiseFamily(_ConvolutionFamily):
    name = "depthwise"
    expected_gain = 1.1
    prompt_notes = (
        "Depthwise conv: one channel loop c shared by input, filter and output. Vectorise along the loop "
        "contiguous in the output (c in NHWC, ow in NCHW) with a few of the other beside it as a register block. "
        "ConvTileAndDecomposeExpert needs vector tiles of 1 on oh and kh; NCHW takes DoubleTilingExpert."
    )

    def recognise(self, op, maps, bounds):
        groups = _convolution_groups(op)
        if groups is None or not groups["c"] or groups["ic"] or len(groups["oh_ow"]) != 2:
            return None
        return _recognise(op, maps, bounds, groups)


class PoolingFamily(OpFamily):
    """Max, sum and average pooling: a sliding window with no filter operand (a window shape
    only) and an add or max body. Linalg reads its channels as a second batch loop; here the
    first batch loop is `n`, the other `c`. IREE gives it ConvTileAndDecomposeExpert, like
    depthwise convs, and the space is theirs in kind: a register block along the contiguous
    loop. There is no convolution matcher for a window without a filter: the spec matches the
    op by name and exact operand types."""

    name = "pooling"
    expected_gain = 1.1
    flops_per_point = None  # memory-bound: its speed is bytes, not flops
    reduction_roles: ClassVar[frozenset[str]] = frozenset({"kh", "kw"})
    prompt_notes = (
        "Pooling (max/sum over a kh x kw window per channel): vectorise along the loop contiguous in the "
        "output (c in NHWC, ow in NCHW) with a few of the other beside it; memory-bound."
    )

    def known_issue(self, loops: tuple[Loop, ...], op_name: str = "linalg.generic") -> str | None:
        # Like a batch-1 conv's (IREE 3.13; tests/test_evaluation.py fails the day IREE fixes
        # it): the dispatch folds the unit batch loop and the op IREE configures has lost the
        # spec's config, whichever layout and pipeline.
        if _unit_batch(loops, op_name):
            return "batch-1 pool: IREE drops a spec's config on it (its unit batch loop is folded)"
        return None

    def recognise(self, op, maps, bounds):
        if len(list(op.operands)) < 3 or not linalg.isa_convolution_op(op) or is_mul_add(op):
            return None
        dims = linalg.infer_convolution_dimensions(op)
        batch, image, window = list(dims.batch), list(dims.output_image), list(dims.filter_loop)
        if len(image) != 2 or len(window) != 2 or len(batch) not in (1, 2) or list(dims.output_channel):
            return None
        roles = ["d"] * len(bounds)
        for position, role in zip([*batch, *image, *window], ["n", "c"][: len(batch)] + ["oh", "ow", "kh", "kw"]):
            roles[position] = role
        if "d" in roles:
            return None
        outputs = len(op.results)
        return Recognised(tuple(roles), operands_matcher(op, maps, len(list(op.operands)) - outputs))
