// Rewrites every NCHW pooling op (max, sum: PyTorch's max_pool2d and avg_pool2d) to NHWC, with
// transposes around it. IREE's convert-conv-to-channels-last leaves pooling in NCHW: between
// channels-last convs, the conv before it writes NCHW through a transpose, and the pool reads
// NCHW and writes NHWC for the conv after it, as a generic IREE tiles on its generic path.
// In NHWC, with its loops in the named NHWC op's order, it is IREE's pooling pipeline
// (ConvTileAndDecomposeExpert) and the transposes cancel against channels-last's.
//
// How, for any channel count, window, stride, dilation or padding: pack the channel loop with
// an inner tile of 1 and move the outer channel dimension last (outer_perm), as in
// depthwise_channels_last.mlir; then interchange the loops from (n, c, oh, ow, kh, kw) to
// (n, oh, ow, c, kh, kw), the NHWC op's order, which IREE's pooling config needs.
// Loops of the generalised op: (n, c, oh, ow, kh, kw); input NCHW, window KHxKW, output NCHW.
module attributes {transform.with_named_sequence} {
  transform.named_sequence @__transform_main(%root: !transform.any_op {transform.readonly}) {
    %pools = transform.structured.match ops{["linalg.pooling_nchw_max", "linalg.pooling_nchw_sum"]} in %root : (!transform.any_op) -> !transform.any_op
    transform.foreach %pools : !transform.any_op {
    ^bb0(%pool: !transform.any_op):
      %generic = transform.structured.generalize %pool : (!transform.any_op) -> !transform.any_op
      %packed = transform.structured.pack %generic packed_sizes = [0, 1, 0, 0, 0, 0] : (!transform.any_op) -> (!transform.any_op)
      // Input N x C x H x W x 1 -> N x H x W x C x 1. The window has no channel dimension.
      %input_pack = transform.get_producer_of_operand %packed[0] : (!transform.any_op) -> (!transform.any_op)
      %op1, %p1, %u1 = transform.structured.pack_transpose %input_pack with_compute_op(%packed) outer_perm = [0, 2, 3, 1]
        : (!transform.any_op, !transform.any_op) -> (!transform.any_op, !transform.any_op, !transform.any_op)
      // Output N x C x OH x OW x 1 -> N x OH x OW x C x 1 (the unpack after it follows).
      %output_unpack = transform.get_consumers_of_result %op1[0] : (!transform.any_op) -> (!transform.any_op)
      %op2, %p2, %u2 = transform.structured.pack_transpose %output_unpack with_compute_op(%op1) outer_perm = [0, 2, 3, 1]
        : (!transform.any_op, !transform.any_op) -> (!transform.any_op, !transform.any_op, !transform.any_op)
      %in = transform.get_producer_of_operand %op2[0] : (!transform.any_op) -> (!transform.any_op)
      %out = transform.get_producer_of_operand %op2[2] : (!transform.any_op) -> (!transform.any_op)
      %packs = transform.merge_handles %in, %out : !transform.any_op
      transform.foreach %packs : !transform.any_op {
      ^bb1(%pack: !transform.any_op):
        %typed = transform.cast %pack : !transform.any_op to !transform.op<"linalg.pack">
        %pad, %expand, %transpose = transform.structured.lower_pack %typed
          : (!transform.op<"linalg.pack">) -> (!transform.op<"tensor.pad">, !transform.op<"tensor.expand_shape">, !transform.op<"linalg.transpose">)
      }
      // Loops (n, c, oh, ow, kh, kw, 1) -> (n, oh, ow, c, kh, kw, 1).
      %nhwc = transform.structured.interchange %op2 iterator_interchange = [0, 2, 3, 1, 4, 5, 6] : (!transform.any_op) -> !transform.any_op
      %unpack = transform.get_consumers_of_result %nhwc[0] : (!transform.any_op) -> (!transform.any_op)
      %typed_unpack = transform.cast %unpack : !transform.any_op to !transform.op<"linalg.unpack">
      %empty, %transpose, %collapse, %slice, %copy = transform.structured.lower_unpack %typed_unpack
        : (!transform.op<"linalg.unpack">) -> (!transform.op<"tensor.empty">, !transform.op<"linalg.transpose">, !transform.op<"tensor.collapse_shape">, !transform.op<"tensor.extract_slice">, !transform.op<"linalg.copy">)
    }
    transform.yield
  }
}
