"""Render one IREE tuning spec: a matcher per tuned root op, all sharing `@apply_op_config`.

The output is what stock `iree-compile --iree-codegen-tuning-spec-path=` accepts
(`transform.with_named_sequence`, `iree_codegen.tuning_spec_with_default_entrypoint`, one
`@__kernel_config` entry point with one `transform.foreach_match`).
"""

from __future__ import annotations

import dataclasses

from ._config import TRANSFORM_DIALECT, CompilationConfig
from ._transform import DispatchOps, render_codegen


@dataclasses.dataclass(frozen=True)
class OpMatcher:
    """How a root op is recognised: op name, kind, element types, and exact dimensions.

    `kind` is "contraction", "convolution" or "operands". For the first two, `dims` holds the
    sizes of IREE's matcher's results in order (contraction: batch, m, n, k; convolution:
    batch, output_image, output_channel, filter, input_channel, depth), `strides`/`dilations`
    for convolutions. "operands" is for ops IREE has no shape matcher for on CPU (online
    attention: `transform.iree.match.attention` does not match it in IREE 3.13): the op name
    and the exact type of every shaped operand, `operand_types` as (position, type) pairs,
    and the number of operands (`operand_count`): without it an elementwise consumer whose
    first operands have the same types as a reduction's would match the reduction's config.
    """

    op_name: str
    kind: str
    lhs_type: str
    rhs_type: str
    output_type: str
    dims: tuple[tuple[int, ...], ...]
    strides: tuple[int, ...] = ()
    dilations: tuple[int, ...] = ()
    indexing_maps: tuple[str, ...] = ()
    operand_types: tuple[tuple[int, str], ...] = ()
    operand_count: int = 0
    # The dispatch around the op, for the transform-dialect tier (None where it cannot be rebuilt).
    dispatch_ops: DispatchOps | None = None
    # A batch-1 convolution reaches the spec stage without its batch loop (GlobalOpt folds the
    # unit dim; InsertBatchDimForBatchlessConvPass puts it back after the spec, dropping the
    # op's lowering_config but keeping the function's translation_info). `unit_batch_loop` is
    # that loop, `batchless_maps` the op's indexing maps without it: the form a spec can match.
    unit_batch_loop: int | None = None
    batchless_maps: tuple[str, ...] = ()

    _RESULTS = {
        "contraction": ("batch", "m", "n", "k"),
        "convolution": ("batch", "out_img", "out_ch", "filter", "in_ch", "depth"),
        "operands": (),
    }

    def __post_init__(self) -> None:
        if self.kind not in self._RESULTS:
            raise ValueError(f"no matcher for op kind {self.kind!r}")
        if len(self.dims) != len(self._RESULTS[self.kind]):
            raise ValueError(f"{self.kind} matcher needs {len(self._RESULTS[self.kind])} dim lists")
        if self.kind == "operands" and not (self.operand_types and self.operand_count):
            raise ValueError("an operands matcher needs the operand types and count")

    def batchless(self) -> OpMatcher:
        """The matcher of this op as the spec stage sees it, without its unit batch loop."""
        assert self.unit_batch_loop is not None and self.kind == "convolution"
        return dataclasses.replace(
            self, dims=((), *self.dims[1:]), indexing_maps=self.batchless_maps, unit_batch_loop=None, batchless_maps=()
        )

    def render(self, name: str, config: CompilationConfig, codegen: str = "") -> str:
        results = self._RESULTS[self.kind]
        types = f"lhs_type = {self.lhs_type}, rhs_type = {self.rhs_type}, output_type = {self.output_type}"
        maps = f", indexing_maps = [{', '.join(self.indexing_maps)}]" if self.indexing_maps else ""
        lines = [
            f"  transform.named_sequence @{name}(%op: !transform.any_op {{transform.readonly}})"
            " -> (!transform.any_op, !transform.any_param) {",
            f'    transform.match.operation_name %op ["{self.op_name}"] : !transform.any_op',
        ]
        if self.kind == "operands":
            lines += [
                "    %all = transform.get_operand %op[all] : (!transform.any_op) -> !transform.any_value",
                "    %count = transform.num_associations %all : (!transform.any_value) -> !transform.param<i64>",
                f"    %operands = transform.param.constant {self.operand_count} : i64 -> !transform.param<i64>",
                "    transform.match.param.cmpi eq %count, %operands : !transform.param<i64>",
            ]
            for position, type_text in self.operand_types:
                lines += [
                    f"    %operand{position} = transform.get_operand %op[{position}]"
                    " : (!transform.any_op) -> !transform.any_value",
                    f"    transform.iree.match.cast_compatible_type %operand{position} = {type_text}"
                    " : !transform.any_value",
                ]
        elif self.kind == "contraction":
            outs = ", ".join(f"%{r}" for r in results)
            lines.append(
                f"    {outs} = transform.iree.match.contraction %op, {types}{maps}"
                " : !transform.any_op -> !transform.param<i64>"
            )
        else:
            outs = ", ".join(f"%{r}" for r in results) + ", %strides, %dilations"
            lines.append(
                f"    {outs} = transform.iree.match.convolution %op, {types}{maps}"
                " : !transform.any_op -> !transform.param<i64>"
            )
        named = list(zip(results, self.dims))
        if self.kind == "convolution":
            named += [("strides", self.strides), ("dilations", self.dilations)]
        for result, sizes in named:
            lines.append(
                f"    transform.iree.match.dims_equal %{result}, [{', '.join(map(str, sizes))}] : !transform.param<i64>"
            )
        lines += [
            f"    %config = transform.param.constant {config.compilation_info_attr(codegen)} -> !transform.any_param",
            "    transform.yield %op, %config : !transform.any_op, !transform.any_param",
            "  }",
        ]
        return "\n".join(lines)


def render_spec(entries: list[tuple[OpMatcher, CompilationConfig]]) -> str:
    """One spec module for all `(matcher, config)` pairs; an empty list gives a no-op spec."""
    if not entries:
        # The default-entrypoint form requires a foreach_match; a spec that tunes nothing
        # is a plain entry point that hands the variant back untouched.
        return (
            "module attributes {transform.with_named_sequence} {\n"
            "  transform.named_sequence @__kernel_config(%variant_op: !transform.any_op {transform.readonly})"
            " -> !transform.any_op attributes {iree_codegen.tuning_spec_entrypoint} {\n"
            "    transform.yield %variant_op : !transform.any_op\n"
            "  }\n"
            "}\n"
        )
    matchers: list[str] = []  # names of the match sequences, in the order foreach_match tries them
    parts = [
        "module attributes {transform.with_named_sequence, iree_codegen.tuning_spec_with_default_entrypoint} {",
        "  transform.named_sequence @apply_op_config(%op: !transform.any_op {transform.readonly},"
        " %config: !transform.any_param {transform.readonly}) {",
        '    transform.annotate %op "compilation_info" = %config : !transform.any_op, !transform.any_param',
        "    transform.yield",
        "  }",
    ]
    for i, (matcher, config) in enumerate(entries):
        name, codegen = f"match_op_{i}", ""
        if config.pipeline == TRANSFORM_DIALECT:
            if matcher.dispatch_ops is None:
                raise ValueError(f"{matcher.op_name}: its dispatch cannot be rebuilt by a transform script")
            codegen = f"codegen_{i}"
            n_loops = len(next(iter(config.tile_map.values())))
            # The script runs after the batch loop is back: its tiles are over all the loops.
            parts.append(render_codegen(codegen, matcher.dispatch_ops, config, n_loops))
            if matcher.unit_batch_loop is not None:
                # Only the translation_info survives the batch loop's return, and only a
                # script's (IREE's pipelines need the dropped lowering_config).
                batchless = config.without_loop(matcher.unit_batch_loop)
                matchers.append(f"{name}_batchless")
                parts.append(matcher.batchless().render(f"{name}_batchless", batchless, codegen))
        matchers.append(name)
        parts.append(matcher.render(name, config, codegen))
    pairs = ", ".join(f"@{n} -> @apply_op_config" for n in matchers)
    parts += [
        "  transform.named_sequence @__kernel_config(%variant_op: !transform.any_op {transform.consumed})"
        " -> !transform.any_op attributes {iree_codegen.tuning_spec_entrypoint} {",
    ]
    parts.append(
        f"    %res = transform.foreach_match in %variant_op {pairs} : (!transform.any_op) -> !transform.any_op"
    )
    parts.append("    transform.yield %res : !transform.any_op")
    parts += ["  }", "}", ""]
    return "\n".join(parts)
