// Pads every 2-D convolution's input channels (input and filter, with zeros: the result is
// unchanged) to a multiple of {{multiple}}: an RGB stem's 3 channels become a vector-friendly
// count, and channels-last's tiling-factor can then block them.
module attributes {transform.with_named_sequence} {
  transform.named_sequence @__transform_main(%root: !transform.any_op {transform.readonly}) {
    // NCHW (PyTorch's layout): loops (n, f, oh, ow, c, kh, kw).
    %nchw = transform.structured.match ops{["linalg.conv_2d_nchw_fchw"]} in %root : (!transform.any_op) -> !transform.any_op
    transform.foreach %nchw : !transform.any_op {
    ^bb0(%conv: !transform.any_op):
      %padded, %pad, %copy = transform.structured.pad %conv pad_to_multiple_of [{{multiple}}] <{
        padding_values = [0.0 : f32, 0.0 : f32, 0.0 : f32], padding_dimensions = [4], copy_back_op = "none"}>
        : (!transform.any_op) -> (!transform.any_op, !transform.any_op, !transform.any_op)
    }
    // NHWC: loops (n, oh, ow, f, kh, kw, c).
    %nhwc = transform.structured.match ops{["linalg.conv_2d_nhwc_hwcf"]} in %root : (!transform.any_op) -> !transform.any_op
    transform.foreach %nhwc : !transform.any_op {
    ^bb0(%conv: !transform.any_op):
      %padded, %pad, %copy = transform.structured.pad %conv pad_to_multiple_of [{{multiple}}] <{
        padding_values = [0.0 : f32, 0.0 : f32, 0.0 : f32], padding_dimensions = [6], copy_back_op = "none"}>
        : (!transform.any_op) -> (!transform.any_op, !transform.any_op, !transform.any_op)
    }
    transform.yield
  }
}
