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

from ..families import FAMILIES, Loop, get_family
from ..families._base import element_bytes, operand_types
from ..iree import functions_in
from ..spec import (
    MAX_NATIVE_VECTORS,
    TRANSFORM_DIALECT,
    CompilationConfig,
    DispatchOps,
    OpMatcher,
    parse_lowering_config,
    parse_native_vector_bytes,
    parse_translation_info,
)


@dataclasses.dataclass(frozen=True)
class RootOp:
    """The op a tuning config is attached to, as data (no MLIR objects escape this module)."""

    op_name: str
    family: str  # a name in schedtune.families, or "other"
    loops: tuple[Loop, ...]
    element_types: tuple[str, str, str]
    matcher: OpMatcher | None
    default_config: CompilationConfig | None
    text: str  # the op as printed (generic form), without its config: what the cache hashes
    # The pipeline of its function's translation_info, also when the op lost its lowering_config
    # (a batch-1 conv under a transform script): then `default_config` is None.
    pipeline: str = ""
    operand_types: tuple[str, ...] = ()
    # The target's vector register width: IREE rejects vectors of MAX_NATIVE_VECTORS of them.
    native_vector_bytes: int = 32
    # The loop (an index into `loops`) of the output's last, contiguous dimension: where a
    # register block goes (ow in NCHW, the channels in NHWC). The loops' order alone does not
    # say it: IREE gives an NCHW depthwise conv the loops (n, oh, ow, c).
    contiguous_loop: int | None = None

    @property
    def vector_limit_bytes(self) -> int:
        return self.native_vector_bytes * MAX_NATIVE_VECTORS

    @property
    def vector_limit(self) -> int:
        """Elements (of the op's output type) at which IREE rejects a vector on this target."""
        return self.vector_limit_bytes // element_bytes(self.element_types[2])

    @property
    def signature(self) -> str:
        """Identity of the op for matching and caching: two dispatches with equal signatures get one config."""
        return hashlib.sha256(self.text.encode()).hexdigest()[:16]

    @property
    def shape_label(self) -> str:
        return "x".join(str(l.bound) for l in self.loops)

    @property
    def known_issue(self) -> str | None:
        """Why a spec cannot take effect on this op with this IREE, if it is a known bug."""
        family = get_family(self.family)
        return family.known_issue(self.loops, self.op_name) if family else None

    @property
    def script_only(self) -> bool:
        """IREE drops a spec's pipeline config on this op (`known_issue`) but keeps a
        transform script's: a batch-1 conv whose dispatch a script can rebuild."""
        m = self.matcher
        return bool(self.known_issue) and m is not None and m.unit_batch_loop is not None and m.dispatch_ops is not None


@dataclasses.dataclass(frozen=True)
class Dispatch:
    name: str
    root: RootOp | None
    source_hash: str  # the dispatch function (root op + fused ops), names canonicalised


_CONFIG_ATTRS = ("translation_info", "lowering_config", "root_op", "compilation_info")


def _source_hash(func: ir.Operation) -> str:
    """Hash of a dispatch function's body, independent of its name.

    The name holds the dispatch's position in the model (`main$async_dispatch_3_...`), which
    shifts when the model is edited elsewhere; what it computes does not. Tuning attributes
    are left out too, so the hash is the same whichever config a build gave it.
    """
    clone = func.clone()
    clone.attributes["sym_name"] = ir.StringAttr.get("dispatch")
    stack = [clone]
    while stack:
        op = stack.pop()
        for attr in _CONFIG_ATTRS:
            if attr in op.attributes:
                del op.attributes[attr]
        for region in op.regions:
            for block in region.blocks:
                stack.extend(o.operation for o in block.operations)
    text = clone.get_asm(print_generic_op_form=True, large_elements_limit=64)
    clone.erase()
    return hashlib.sha256(text.encode()).hexdigest()[:16]


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


def _classify(op: ir.Operation, maps: list[ir.AffineMap], bounds: list[int]) -> tuple[str, list[str], OpMatcher | None]:
    """(family, roles per loop, matcher) for a root op; family 'other' when no family owns it."""
    for family in FAMILIES:
        recognised = family.recognise(op, maps, bounds)
        if recognised is not None:
            return family.name, list(recognised.roles), recognised.matcher
    return "other", ["d"] * len(bounds), None


def _indexing_maps(op: ir.Operation) -> list[ir.AffineMap]:
    """The op's indexing maps: its attribute, or what a named linalg op (mmt4d) implies."""
    if "indexing_maps" in op.attributes:
        return [ir.AffineMapAttr(a).value for a in ir.ArrayAttr(op.attributes["indexing_maps"])]
    try:
        maps = linalg.get_indexing_maps(op)
    except (TypeError, ValueError, RuntimeError):
        return []
    return [ir.AffineMapAttr(a).value for a in maps] if maps else []


# What writes a dispatch's result when configs are dumped (and in older IREE builds).
_STORES = ("iree_codegen.store_to_buffer", "iree_tensor_ext.dispatch.tensor.store")


def _dispatch_ops(func: ir.Operation, root: ir.Operation) -> DispatchOps | None:
    """The dispatch as the transform-dialect tier rebuilds it (see `DispatchOps`), or None:
    one store, written by the last linalg op, which is the root or an elementwise consumer
    whose loops map onto the root's."""
    linalg_ops, stores = [], []
    stack = [func]
    while stack:  # pre-order, in IR order: what a transform `match` returns
        op = stack.pop()
        if op.name.startswith("linalg."):
            linalg_ops.append(op)
            continue
        if op.name in _STORES:
            stores.append(op)
        children = [o.operation for r in op.regions for b in r.blocks for o in b.operations]
        stack.extend(reversed(children))
    if len(stores) != 1 or not linalg_ops or root not in linalg_ops:
        return None
    last = linalg_ops[-1]
    if stores[0].operands[0].owner != last:
        return None
    index = linalg_ops.index(root)
    if last == root:
        return DispatchOps(len(linalg_ops), index)
    iterators = (
        [str(a) for a in ir.ArrayAttr(last.attributes["iterator_types"])] if "iterator_types" in last.attributes else []
    )
    last_maps, root_maps = _indexing_maps(last), _indexing_maps(root)
    if not last_maps or not root_maps or any("parallel" not in it for it in iterators):
        return None
    outputs = [_dim_position(e) for e in last_maps[-1].results]
    root_outputs = [_dim_position(e) for e in root_maps[-1].results]
    if len(outputs) != last_maps[-1].n_dims or len(outputs) != len(root_outputs) or None in root_outputs:
        return None
    loops = tuple(root_outputs[outputs.index(j)] if j in outputs else None for j in range(len(outputs)))
    return None if None in loops else DispatchOps(len(linalg_ops), index, loops)


def _root_from_op(op: ir.Operation, native_vector_bytes: int, func: ir.Operation | None = None) -> RootOp:
    maps = _indexing_maps(op)
    bounds = _loop_bounds(op, maps) if maps else []
    iterators = []
    if "iterator_types" in op.attributes:
        iterators = [str(a) for a in ir.ArrayAttr(op.attributes["iterator_types"])]
    if maps and bounds and all(b > 0 for b in bounds):
        family, roles, matcher = _classify(op, maps, bounds)
    else:
        family, roles, matcher = "other", ["d"] * len(bounds), None
    if not iterators:
        owner = get_family(family)
        reduction_roles = owner.reduction_roles if owner else frozenset()
        iterators = ["reduction" if r in reduction_roles else "parallel" for r in roles]
    loops = tuple(Loop(role, bound, "parallel" in it) for role, bound, it in zip(roles, bounds, iterators))
    default = None
    owner = op.parent
    while owner is not None and owner.name != "func.func":
        owner = owner.parent
    pipeline, peeling = ("", False)
    if owner is not None and "translation_info" in owner.attributes:
        pipeline, peeling = parse_translation_info(str(owner.attributes["translation_info"]))
    if "lowering_config" in op.attributes:
        try:
            tiles = parse_lowering_config(str(op.attributes["lowering_config"]))
        except ValueError:
            tiles = {}
        if tiles and pipeline:
            try:
                default = CompilationConfig.make(pipeline, {k: list(v) for k, v in tiles.items()}, peeling)
            except ValueError:
                default = None
    if matcher is not None and func is not None:
        matcher = dataclasses.replace(matcher, dispatch_ops=_dispatch_ops(func, op))
    clone = op.clone()
    for attr in ("lowering_config", "root_op", "compilation_info", "linalg.memoized_indexing_maps"):
        if attr in clone.attributes:
            del clone.attributes[attr]
    text = clone.get_asm(print_generic_op_form=True, large_elements_limit=16)
    clone.erase()
    return RootOp(
        op_name=op.name,
        family=family,
        loops=loops,
        element_types=operand_types(op),
        matcher=matcher,
        default_config=default,
        pipeline=pipeline,
        text=text,
        operand_types=tuple(str(v.type) for v in op.operands),
        native_vector_bytes=native_vector_bytes,
        contiguous_loop=_dim_position(maps[-1].results[-1]) if maps and maps[-1].results else None,
    )


def _native_vector_bytes(func: ir.Operation) -> int:
    variant = func.parent
    while variant is not None and variant.name != "hal.executable.variant":
        variant = variant.parent
    if variant is None or "target" not in variant.attributes:
        return parse_native_vector_bytes("")
    return parse_native_vector_bytes(str(variant.attributes["target"]))


def _distributed_op(func: ir.Operation) -> ir.Operation | None:
    stack = [func]
    while stack:
        op = stack.pop()
        for region in op.regions:
            for block in region.blocks:
                for inner in block.operations:
                    inner = inner.operation
                    if "lowering_config" in inner.attributes and "distribution" in str(
                        inner.attributes["lowering_config"]
                    ):
                        return inner
                    stack.append(inner)
    return None


def _scripted_op(func: ir.Operation) -> ir.Operation | None:
    """Under a transform script IREE may keep no config on any op (a batch-1 conv loses its
    lowering_config when its batch loop is re-inserted): the root is the op a family owns."""
    info = func.attributes["translation_info"] if "translation_info" in func.attributes else None
    if info is None or parse_translation_info(str(info))[0] != TRANSFORM_DIALECT:
        return None
    stack = [func]
    while stack:
        op = stack.pop()
        if op.name.startswith("linalg."):
            maps = _indexing_maps(op)
            bounds = _loop_bounds(op, maps) if maps else []
            if bounds and all(b > 0 for b in bounds) and _classify(op, maps, bounds)[0] != "other":
                return op
            continue
        children = [o.operation for r in op.regions for b in r.blocks for o in b.operations]
        stack.extend(reversed(children))
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
            for func in functions_in(module):
                name = ir.StringAttr(func.attributes["sym_name"]).value
                # A config set by a tuning spec comes without IREE's root_op mark: then the
                # root is the op that carries distribution tiles.
                op = roots.get(name) or _distributed_op(func) or _scripted_op(func)
                root = _root_from_op(op, _native_vector_bytes(func), func) if op is not None else None
                result[name] = Dispatch(name=name, root=root, source_hash=_source_hash(func))
    return result
