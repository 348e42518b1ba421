// A 3x3 depthwise conv in NHWC: IREE's ConvTileAndDecomposeExpert.
func.func @main(%x: tensor<2x18x18x16xf32>, %w: tensor<3x3x16xf32>) -> tensor<2x16x16x16xf32> {
  %zero = arith.constant 0.0 : f32
  %init = tensor.empty() : tensor<2x16x16x16xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%init : tensor<2x16x16x16xf32>) -> tensor<2x16x16x16xf32>
  %y = linalg.depthwise_conv_2d_nhwc_hwc {dilations = dense<1> : tensor<2xi64>, strides = dense<1> : tensor<2xi64>}
      ins(%x, %w : tensor<2x18x18x16xf32>, tensor<3x3x16xf32>) outs(%acc : tensor<2x16x16x16xf32>) -> tensor<2x16x16x16xf32>
  return %y : tensor<2x16x16x16xf32>
}
