// A 3x3 depthwise conv in NCHW, as PyTorch exports it (groups = channels): IREE does not
// recognise it as depthwise and gives it DoubleTilingExpert.
func.func @main(%x: tensor<2x16x18x18xf32>, %w: tensor<16x3x3xf32>) -> tensor<2x16x16x16xf32> {
  %zero = arith.constant 0.0 : f32
  %init = tensor.empty() : tensor<2x16x16x16xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%init : tensor<2x16x16x16xf32>) -> tensor<2x16x16x16xf32>
  %y = linalg.depthwise_conv_2d_nchw_chw {dilations = dense<1> : tensor<2xi64>, strides = dense<1> : tensor<2xi64>}
      ins(%x, %w : tensor<2x16x18x18xf32>, tensor<16x3x3xf32>) outs(%acc : tensor<2x16x16x16xf32>) -> tensor<2x16x16x16xf32>
  return %y : tensor<2x16x16x16xf32>
}
