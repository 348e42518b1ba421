"""Walking MLIR read with IREE's Python bindings."""

from __future__ import annotations

from iree.compiler import ir


def functions_in(op: ir.Operation | ir.Module):
    """Every func.func nested in `op` (dispatch functions of executables)."""
    stack = [op.operation]
    while stack:
        op = stack.pop()
        if op.name == "func.func":
            yield op
            continue
        for region in op.regions:
            for block in region.blocks:
                stack.extend(o.operation for o in block.operations)
