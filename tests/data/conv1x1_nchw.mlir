// A 1x1 conv in NCHW as PyTorch exports it: IREE makes it a contraction with loops
// (n, oc, oh*ow, ic): two loops in the "m" role.
func.func @main(%x: tensor<8x64x16x16xf32>, %w: tensor<64x64x1x1xf32>) -> tensor<8x64x16x16xf32> {
  %zero = arith.constant 0.0 : f32
  %init = tensor.empty() : tensor<8x64x16x16xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%init : tensor<8x64x16x16xf32>) -> tensor<8x64x16x16xf32>
  %y = linalg.conv_2d_nchw_fchw {dilations = dense<1> : tensor<2xi64>, strides = dense<1> : tensor<2xi64>}
      ins(%x, %w : tensor<8x64x16x16xf32>, tensor<64x64x1x1xf32>) outs(%acc : tensor<8x64x16x16xf32>) -> tensor<8x64x16x16xf32>
  return %y : tensor<8x64x16x16xf32>
}
