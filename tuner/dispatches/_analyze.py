"""Read the dispatches of a compiled model: root op, its loops, IREE's default config.

Input is the folder written by `--iree-hal-dump-executable-configurations-to` together with
`--iree-codegen-add-tuner-attributes`, parsed with IREE's Python bindings: the root op is the
one IREE marks, loop roles come from linalg's own contraction/convolution inference.
"""
from __future__ import annotations

import dataclasses
import hashlib
import pathlib

from iree.compiler import ir
from iree.compiler.dialects import iree_codegen, linalg

from ..spec import CompilationConfig, OpMatcher, parse_lowering_config, parse_translation_info


@dataclasses.dataclass(frozen=True)
class Loop:
    """One loop of a root op: its role (m, n, k, oc, oh, ...), trip count and iterator kind."""

    role: str
    bound: int
    parallel: bool


@dataclasses.dataclass(frozen=True)
class RootOp:
    """The op a tuning config is attached to, as data (no MLIR objects escape this module)."""

    op_name: str
    family: str  # matmul | conv2d | depthwise | other
    loops: tuple[Loop, ...]
    element_types: tuple[str, str, str]
    matcher: OpMatcher | None
    default_config: CompilationConfig | None
    text: str  # the op as printed (generic form), without its config: what the cache hashes
    operand_types: tuple[str, ...] = ()

    @property
    def signature(self) -> str:
        """Identity of the op for matching and caching: two dispatches with equal signatures get one config."""
        return hashlib.sha256(self.text.encode()).hexdigest()[:16]

    @property
    def shape_label(self) -> str:
        return "x".join(str(l.bound) for l in self.loops)

    @property
    def known_issue(self) -> str | None:
        """Why a spec cannot take effect on this op with this IREE, if it is a known bug.

        Batch-1 convs (depthwise too): IREE applies the spec's config to the batch-less op,
        then InsertBatchDimForBatchlessConvPass rebuilds the op and drops it (IREE 3.13; see
        tests/test_evaluation.py, which fails the day IREE fixes it). The search would learn
        this only after a few `not_applied` trials; knowing it up front also lets a flag set
        that turns these convs into matmuls (im2col) be preferred for tuning.
        """
        batch = [l.bound for l in self.loops if l.role == "n"]
        if self.family in ("conv2d", "depthwise") and batch in ([], [1]):
            return "batch-1 conv: IREE drops a spec's config on it (InsertBatchDimForBatchlessConvPass)"
        return None


@dataclasses.dataclass(frozen=True)
class Dispatch:
    name: str
    root: RootOp | None
    dispatch_text: str


def _dim_position(expr: ir.AffineExpr) -> int | None:
    return expr.position if isinstance(expr, ir.AffineDimExpr) else None


def _loop_bounds(op: ir.Operation, maps: list[ir.AffineMap]) -> list[int]:
    n_loops = maps[0].n_dims
    bounds = [0] * n_loops
    for operand, amap in zip(op.operands, maps):
        shape = operand.type.shape if isinstance(operand.type, ir.ShapedType) else []
        for size, expr in zip(shape, amap.results):
            pos = _dim_position(expr)
            if pos is not None and size > 0:
                bounds[pos] = size
    return bounds


def _body_ops(op: ir.Operation) -> set[str]:
    names = set()
    for region in op.regions:
        for block in region.blocks:
            names.update(o.name for o in block.operations)
    return names


def _element_type(value: ir.Value) -> str:
    t = value.type
    return str(t.element_type) if isinstance(t, ir.ShapedType) else str(t)


def _is_mul_add(op: ir.Operation) -> bool:
    body = _body_ops(op)
    if not body:  # named ops (linalg.matmul, linalg.conv_*) carry no visible body
        return True
    return bool(body & {"arith.mulf", "arith.muli"}) and bool(body & {"arith.addf", "arith.addi"})


def _classify(op: ir.Operation, maps: list[ir.AffineMap], bounds: list[int]):
    """(family, roles per loop, matcher) for a root op; family 'other' when it is not tunable."""
    n = len(bounds)
    roles = [""] * n
    types = tuple(_element_type(v) for v in list(op.operands)[:3])
    lhs, rhs, out = (types + ("", "", ""))[:3]
    map_texts = tuple(str(ir.AffineMapAttr.get(m)) for m in maps)
    if len(list(op.operands)) >= 3 and linalg.isa_convolution_op(op) and _is_mul_add(op):
        dims = linalg.infer_convolution_dimensions(op)
        groups = {
            "n": list(dims.batch),
            "oh_ow": list(dims.output_image),
            "oc": list(dims.output_channel),
            "kh_kw": list(dims.filter_loop),
            "ic": list(dims.input_channel),
            "c": list(dims.depth),
        }
        if groups["c"] and not groups["ic"]:
            family = "depthwise"
        elif groups["oc"] and groups["ic"] and len(groups["oh_ow"]) == 2:
            family = "conv2d"
        else:
            return "other", ["d"] * n, None
        image_names = ["oh", "ow"]
        filter_names = ["kh", "kw"]
        for key, positions in groups.items():
            for i, pos in enumerate(positions):
                if key == "oh_ow":
                    roles[pos] = image_names[i]
                elif key == "kh_kw":
                    roles[pos] = filter_names[i]
                else:
                    roles[pos] = key
        matcher = OpMatcher(
            op_name=op.name,
            kind="convolution",
            lhs_type=lhs,
            rhs_type=rhs,
            output_type=out,
            dims=tuple(
                tuple(bounds[p] for p in groups[k]) for k in ("n", "oh_ow", "oc", "kh_kw", "ic", "c")
            ),
            strides=tuple(dims.strides),
            dilations=tuple(dims.dilations),
            indexing_maps=map_texts,
        )
        return family, roles, matcher
    if len(list(op.operands)) >= 3 and _is_mul_add(op):
        dims = linalg.infer_contraction_dimensions(op)
        if dims is not None and list(dims.k) and (list(dims.m) or list(dims.n)):
            groups = {"b": list(dims.batch), "m": list(dims.m), "n": list(dims.n), "k": list(dims.k)}
            if sum(len(v) for v in groups.values()) != n:
                return "other", ["d"] * n, None
            for key, positions in groups.items():
                for pos in positions:
                    roles[pos] = key
            matcher = OpMatcher(
                op_name=op.name,
                kind="contraction",
                lhs_type=lhs,
                rhs_type=rhs,
                output_type=out,
                dims=tuple(tuple(bounds[p] for p in groups[k]) for k in ("b", "m", "n", "k")),
                indexing_maps=map_texts,
            )
            return "matmul", roles, matcher
    return "other", ["d"] * n, None


def _root_from_op(op: ir.Operation) -> RootOp:
    maps = [ir.AffineMapAttr(a).value for a in ir.ArrayAttr(op.attributes["indexing_maps"])] if "indexing_maps" in op.attributes else []
    bounds = _loop_bounds(op, maps) if maps else []
    iterators = []
    if "iterator_types" in op.attributes:
        iterators = [str(a) for a in ir.ArrayAttr(op.attributes["iterator_types"])]
    if maps and bounds and all(b > 0 for b in bounds):
        family, roles, matcher = _classify(op, maps, bounds)
    else:
        family, roles, matcher = "other", ["d"] * len(bounds), None
    if not iterators:
        reduction_roles = {"k", "kh", "kw", "ic"}
        iterators = ["reduction" if r in reduction_roles else "parallel" for r in roles]
    loops = tuple(Loop(role, bound, "parallel" in it) for role, bound, it in zip(roles, bounds, iterators))
    default = None
    if "lowering_config" in op.attributes:
        try:
            tiles = parse_lowering_config(str(op.attributes["lowering_config"]))
        except ValueError:
            tiles = {}
        func = op.parent
        while func is not None and func.name != "func.func":
            func = func.parent
        pipeline, peeling = ("", False)
        if func is not None and "translation_info" in func.attributes:
            pipeline, peeling = parse_translation_info(str(func.attributes["translation_info"]))
        if tiles and pipeline:
            try:
                default = CompilationConfig.make(pipeline, {k: list(v) for k, v in tiles.items()}, peeling)
            except ValueError:
                default = None
    clone = op.clone()
    for attr in ("lowering_config", "root_op", "compilation_info", "linalg.memoized_indexing_maps"):
        if attr in clone.attributes:
            del clone.attributes[attr]
    text = clone.get_asm(print_generic_op_form=True, large_elements_limit=16)
    clone.erase()
    types = tuple(_element_type(v) for v in list(op.operands)[:3])
    return RootOp(
        op_name=op.name,
        family=family,
        loops=loops,
        element_types=(types + ("", "", ""))[:3],
        matcher=matcher,
        default_config=default,
        text=text,
        operand_types=tuple(str(v.type) for v in op.operands),
    )


def _functions(module: ir.Module):
    stack = [module.operation]
    while stack:
        op = stack.pop()
        if op.name == "func.func":
            yield op
            continue
        for region in op.regions:
            for block in region.blocks:
                stack.extend(o.operation for o in block.operations)


def _distributed_op(func: ir.Operation) -> ir.Operation | None:
    stack = [func]
    while stack:
        op = stack.pop()
        for region in op.regions:
            for block in region.blocks:
                for inner in block.operations:
                    inner = inner.operation
                    if "lowering_config" in inner.attributes and "distribution" in str(inner.attributes["lowering_config"]):
                        return inner
                    stack.append(inner)
    return None


def read_configured_executables(folder: pathlib.Path) -> dict[str, Dispatch]:
    """Map dispatch function name -> Dispatch for every configured executable in `folder`."""
    result: dict[str, Dispatch] = {}
    context = ir.Context()
    for path in sorted(folder.glob("*.mlir")):
        module = ir.Module.parse(path.read_text(), context)
        with context, ir.Location.unknown():
            roots = {}
            for op in iree_codegen.get_tuner_root_ops(module):
                func = op.parent
                while func is not None and func.name != "func.func":
                    func = func.parent
                if func is not None:
                    roots.setdefault(ir.StringAttr(func.attributes["sym_name"]).value, op)
            for func in _functions(module):
                name = ir.StringAttr(func.attributes["sym_name"]).value
                # A config set by a tuning spec comes without IREE's root_op mark: then the
                # root is the op that carries distribution tiles.
                op = roots.get(name) or _distributed_op(func)
                root = _root_from_op(op) if op is not None else None
                result[name] = Dispatch(name=name, root=root, dispatch_text=path.name)
    return result
