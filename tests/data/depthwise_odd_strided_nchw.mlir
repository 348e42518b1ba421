// An NCHW depthwise conv with an odd channel count (7), stride 2 and dilation 2, after a 1x1
// conv: the depthwise-channels-last script must not depend on any of them.
func.func @main(%x: tensor<1x5x13x13xf32>, %w1: tensor<7x5x1x1xf32>) -> tensor<1x7x6x6xf32> {
  %zero = arith.constant 0.0 : f32
  %wd = arith.constant dense<0.3> : tensor<7x3x3xf32>
  %i1 = tensor.empty() : tensor<1x7x13x13xf32>
  %a1 = linalg.fill ins(%zero : f32) outs(%i1 : tensor<1x7x13x13xf32>) -> tensor<1x7x13x13xf32>
  %e = linalg.conv_2d_nchw_fchw {dilations = dense<1> : tensor<2xi64>, strides = dense<1> : tensor<2xi64>} ins(%x, %w1 : tensor<1x5x13x13xf32>, tensor<7x5x1x1xf32>) outs(%a1 : tensor<1x7x13x13xf32>) -> tensor<1x7x13x13xf32>
  %p = tensor.pad %e low[0, 0, 1, 1] high[0, 0, 1, 1] {
  ^bb0(%a: index, %b: index, %cc: index, %dd: index):
    tensor.yield %zero : f32
  } : tensor<1x7x13x13xf32> to tensor<1x7x15x15xf32>
  %i2 = tensor.empty() : tensor<1x7x6x6xf32>
  %a2 = linalg.fill ins(%zero : f32) outs(%i2 : tensor<1x7x6x6xf32>) -> tensor<1x7x6x6xf32>
  %y = linalg.depthwise_conv_2d_nchw_chw {dilations = dense<2> : tensor<2xi64>, strides = dense<2> : tensor<2xi64>} ins(%p, %wd : tensor<1x7x15x15xf32>, tensor<7x3x3xf32>) outs(%a2 : tensor<1x7x6x6xf32>) -> tensor<1x7x6x6xf32>
  return %y : tensor<1x7x6x6xf32>
}
