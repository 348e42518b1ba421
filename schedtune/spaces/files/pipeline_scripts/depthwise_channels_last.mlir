// Rewrites every NCHW depthwise conv (PyTorch's layout) to NHWC, with transposes around it.
// IREE's convert-conv-to-channels-last leaves depthwise convs in NCHW: next to channels-last
// dense convs, the depthwise op then reads NHWC, writes NCHW and gathers its filter across
// channels, on IREE's generic path (DoubleTilingExpert). In NHWC it is IREE's depthwise
// pipeline (ConvTileAndDecomposeExpert), and the transposes cancel against channels-last's.
//
// How, for any channel count: pack the channel loop with an inner tile of 1 and move the
// outer channel dimension last (outer_perm), which is a transpose plus a unit dimension; then
// lower the packs to pad (empty) + expand_shape + linalg.transpose, which the transpose
// propagation of global optimisation folds and cancels like any other transpose.
// Loops of the generalised op: (n, oh, ow, c, kh, kw); input NCHW, filter CHW, output NCHW.
module attributes {transform.with_named_sequence} {
  transform.named_sequence @__transform_main(%root: !transform.any_op {transform.readonly}) {
    %convs = transform.structured.match ops{["linalg.depthwise_conv_2d_nchw_chw"]} in %root : (!transform.any_op) -> !transform.any_op
    transform.foreach %convs : !transform.any_op {
    ^bb0(%conv: !transform.any_op):
      %generic = transform.structured.generalize %conv : (!transform.any_op) -> !transform.any_op
      %packed = transform.structured.pack %generic packed_sizes = [0, 0, 0, 1, 0, 0] : (!transform.any_op) -> (!transform.any_op)
      // Input N x C x H x W x 1 -> N x H x W x C x 1.
      %input_pack = transform.get_producer_of_operand %packed[0] : (!transform.any_op) -> (!transform.any_op)
      %op1, %p1, %u1 = transform.structured.pack_transpose %input_pack with_compute_op(%packed) outer_perm = [0, 2, 3, 1]
        : (!transform.any_op, !transform.any_op) -> (!transform.any_op, !transform.any_op, !transform.any_op)
      // Filter C x KH x KW x 1 -> KH x KW x C x 1.
      %filter_pack = transform.get_producer_of_operand %op1[1] : (!transform.any_op) -> (!transform.any_op)
      %op2, %p2, %u2 = transform.structured.pack_transpose %filter_pack with_compute_op(%op1) outer_perm = [1, 2, 0]
        : (!transform.any_op, !transform.any_op) -> (!transform.any_op, !transform.any_op, !transform.any_op)
      // Output N x C x OH x OW x 1 -> N x OH x OW x C x 1 (the unpack after it follows).
      %output_unpack = transform.get_consumers_of_result %op2[0] : (!transform.any_op) -> (!transform.any_op)
      %op3, %p3, %u3 = transform.structured.pack_transpose %output_unpack with_compute_op(%op2) outer_perm = [0, 2, 3, 1]
        : (!transform.any_op, !transform.any_op) -> (!transform.any_op, !transform.any_op, !transform.any_op)
      %in = transform.get_producer_of_operand %op3[0] : (!transform.any_op) -> (!transform.any_op)
      %filter = transform.get_producer_of_operand %op3[1] : (!transform.any_op) -> (!transform.any_op)
      %out = transform.get_producer_of_operand %op3[2] : (!transform.any_op) -> (!transform.any_op)
      %packs = transform.merge_handles %in, %filter, %out : !transform.any_op
      transform.foreach %packs : !transform.any_op {
      ^bb1(%pack: !transform.any_op):
        %typed = transform.cast %pack : !transform.any_op to !transform.op<"linalg.pack">
        %pad, %expand, %transpose = transform.structured.lower_pack %typed
          : (!transform.op<"linalg.pack">) -> (!transform.op<"tensor.pad">, !transform.op<"tensor.expand_shape">, !transform.op<"linalg.transpose">)
      }
      %unpack = transform.get_consumers_of_result %op3[0] : (!transform.any_op) -> (!transform.any_op)
      %typed_unpack = transform.cast %unpack : !transform.any_op to !transform.op<"linalg.unpack">
      %empty, %transpose, %collapse, %slice, %copy = transform.structured.lower_unpack %typed_unpack
        : (!transform.op<"linalg.unpack">) -> (!transform.op<"tensor.empty">, !transform.op<"linalg.transpose">, !transform.op<"tensor.collapse_shape">, !transform.op<"tensor.extract_slice">, !transform.op<"linalg.copy">)
    }
    transform.yield
  }
}
