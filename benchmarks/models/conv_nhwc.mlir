func.func @main(%x: tensor<2x58x58x64xf32>, %w: tensor<3x3x64x64xf32>) -> tensor<2x56x56x64xf32> {
  %zero = arith.constant 0.0 : f32
  %init = tensor.empty() : tensor<2x56x56x64xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%init : tensor<2x56x56x64xf32>) -> tensor<2x56x56x64xf32>
  %y = linalg.conv_2d_nhwc_hwcf {dilations = dense<1> : tensor<2xi64>, strides = dense<1> : tensor<2xi64>}
      ins(%x, %w : tensor<2x58x58x64xf32>, tensor<3x3x64x64xf32>) outs(%acc : tensor<2x56x56x64xf32>) -> tensor<2x56x56x64xf32>
  return %y : tensor<2x56x56x64xf32>
}
