"""Batch-1 convolutions in the form a tuning spec reaches: named ops with their unit batch.

IREE's GlobalOpt generalises every convolution and folds a unit batch loop away; on llvm-cpu,
InsertBatchDimForBatchlessConvPass puts the loop back *after* the tuning spec is applied and
rebuilds the op without its `lowering_config` (IREE 3.13), so no spec config reaches a batch-1
conv. That pass only rebuilds `linalg.generic` ops, and dispatch creation does not fold the
unit dims of named convolution ops. So between the two phases (`--compile-to=
global-optimization`, then `--compile-from=global-optimization`) each batchless NHWC conv,
depthwise conv and pool becomes its named op again, batch 1, between an `expand_shape` of its
operands and a `collapse_shape` of its result: dispatch creation fuses it with its neighbours as
before, its dispatch holds the named op, and a spec's config on it survives to codegen.

Only forms that are exactly a named op are rewritten (maps, strides, dilations, a plain
multiply-add, max or add body on one element type); anything else is left as IREE built it.
"""

from __future__ import annotations

import dataclasses
import pathlib
import sys

from iree.compiler import ir
from iree.compiler.dialects import linalg, tensor

# Loop roles of each rewritten form, in the named op's loop order without its batch loop, and
# each operand's indexing by role ("oh+kh" is the strided, dilated image access).
_DENSE = ("oh+kh", "ow+kw", "ic"), ("kh", "kw", "ic", "oc"), ("oh", "ow", "oc")
_DEPTHWISE = ("oh+kh", "ow+kw", "c"), ("kh", "kw", "c"), ("oh", "ow", "c")
_POOL = ("oh+kh", "ow+kw", "c"), ("kh", "kw"), ("oh", "ow", "c")


@dataclasses.dataclass(frozen=True)
class _Form:
    name: str
    layouts: tuple[tuple[str, ...], ...]
    body: frozenset[str]  # arith ops of the body besides the yield
    build: object


_FORMS = (
    _Form("linalg.conv_2d_nhwc_hwcf", _DENSE, frozenset({"arith.mulf", "arith.addf"}), linalg.conv_2d_nhwc_hwcf),
    _Form(
        "linalg.depthwise_conv_2d_nhwc_hwc",
        _DEPTHWISE,
        frozenset({"arith.mulf", "arith.addf"}),
        linalg.depthwise_conv_2d_nhwc_hwc,
    ),
    _Form("linalg.pooling_nhwc_max", _POOL, frozenset({"arith.maximumf"}), linalg.pooling_nhwc_max),
    _Form("linalg.pooling_nhwc_sum", _POOL, frozenset({"arith.addf"}), linalg.pooling_nhwc_sum),
)


def _body(op: ir.Operation) -> list[ir.Operation]:
    return [o for o in op.regions[0].blocks[0].operations if o.name != "linalg.yield"]


def _roles(op: ir.Operation) -> dict[int, str] | None:
    """Loop position -> role of a batchless conv or pool, or None when it is not one."""
    if not linalg.isa_convolution_op(op):
        return None
    dims = linalg.infer_convolution_dimensions(op)
    image, window = list(dims.output_image), list(dims.filter_loop)
    if len(image) != 2 or len(window) != 2:
        return None
    batch, depth = list(dims.batch), list(dims.depth)
    ic, oc = list(dims.input_channel), list(dims.output_channel)
    roles = dict(zip(image, ("oh", "ow"))) | dict(zip(window, ("kh", "kw")))
    if not batch and len(ic) == 1 and len(oc) == 1 and not depth:
        roles |= {ic[0]: "ic", oc[0]: "oc"}
    elif not batch and len(depth) == 1 and not ic and not oc:
        roles |= {depth[0]: "c"}
    elif len(batch) == 1 and not depth and not ic and not oc:  # a pool: linalg reads its channels as batch
        roles |= {batch[0]: "c"}
    else:
        return None
    return roles


def _expected_maps(roles: dict[int, str], layouts, strides, dilations) -> list[str]:
    by_role = {role: ir.AffineDimExpr.get(i) for i, role in roles.items()}
    n = len(roles)
    maps = []
    for layout in layouts:
        results = []
        for entry in layout:
            if "+" in entry:
                image, window = entry.split("+")
                axis = 0 if image == "oh" else 1
                results.append(by_role[image] * strides[axis] + by_role[window] * dilations[axis])
            else:
                results.append(by_role[entry])
        maps.append(str(ir.AffineMapAttr.get(ir.AffineMap.get(n, 0, results))))
    return maps


def _named_form(op: ir.Operation) -> tuple[_Form, list[int], list[int]] | None:
    """The named op a batchless generic is, with its strides and dilations, or None."""
    if op.name != "linalg.generic" or len(op.operands) != 3 or len(op.results) != 1:
        return None
    roles = _roles(op)
    if roles is None:
        return None
    types = {str(v.type.element_type) for v in op.operands}
    if len(types) != 1 or not next(iter(types)).startswith(("f", "bf")):
        return None
    dims = linalg.infer_convolution_dimensions(op)
    strides, dilations = list(dims.strides), list(dims.dilations)
    maps = [str(m) for m in op.attributes["indexing_maps"]]
    body = _body(op)
    for form in _FORMS:
        if {o.name for o in body} != form.body or len(body) != len(form.body):
            continue
        if len(form.layouts[1]) == 2 and len(op.operands[1].type.shape) != 2:
            continue
        named_roles = {part for layout in form.layouts for entry in layout for part in entry.split("+")}
        if named_roles != set(roles.values()):
            continue
        if maps == _expected_maps(roles, form.layouts, strides, dilations):
            return form, strides, dilations
    return None


def _with_unit_batch(value: ir.Value) -> ir.Value:
    shaped = value.type
    rank = len(shaped.shape)
    expanded = ir.RankedTensorType.get([1, *shaped.shape], shaped.element_type)
    groups = [[0, 1], *[[i + 1] for i in range(1, rank)]]
    return tensor.ExpandShapeOp(expanded, value, groups, [], [1, *shaped.shape]).result


def _rewrite(op: ir.Operation, form: _Form, strides: list[int], dilations: list[int]) -> None:
    with ir.InsertionPoint(op), op.location:
        image, window, init = op.operands
        result_type = op.results[0].type
        named = form.build(
            _with_unit_batch(image), window, outs=[_with_unit_batch(init)], strides=strides, dilations=dilations
        )
        groups = [[0, 1], *[[i + 1] for i in range(1, len(result_type.shape))]]
        collapsed = tensor.CollapseShapeOp(result_type, named, groups).result
    op.results[0].replace_all_uses_with(collapsed)
    op.erase()


def _generics(root: ir.Operation) -> list[ir.Operation]:
    found, stack = [], [root]
    while stack:
        op = stack.pop()
        if op.name == "linalg.generic":
            found.append(op)
            continue
        for region in op.regions:
            for block in region.blocks:
                stack.extend(o.operation for o in block.operations)
    return found


def name_batch1_convs(source: pathlib.Path, output: pathlib.Path) -> dict[str, int]:
    """Rewrites the batchless convs and pools of a module after IREE's global optimisation
    (`source`, text or bytecode) into named batch-1 ops; writes bytecode to `output` and returns
    how many ops of each named kind it rewrote."""
    counts: dict[str, int] = {}
    with ir.Context() as context:
        context.allow_unregistered_dialects = True
        module = ir.Module.parse(source.read_bytes())
        for op in _generics(module.operation):
            found = _named_form(op)
            if found is None:
                continue
            form, strides, dilations = found
            _rewrite(op, form, strides, dilations)
            counts[form.name] = counts.get(form.name, 0) + 1
        module.operation.verify()
        with output.open("wb") as f:
            module.operation.write_bytecode(f)
    return counts


def main(argv: list[str]) -> int:
    """`python -m schedtune.iree._batch1 IN OUT`: a child process of the build, so that a crash in
    the MLIR bindings ends one build, not the job."""
    source, output = (pathlib.Path(a) for a in argv)
    try:
        counts = name_batch1_convs(source, output)
    except Exception as exc:  # one line for the build's error, whatever the bindings raised
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(", ".join(f"{n} {name}" for name, n in sorted(counts.items())) or "nothing to rewrite")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
