// A MobileNet-style block in NCHW, as PyTorch exports it: 1x1 conv, a padded 3x3 depthwise
// conv, 1x1 conv. IREE's channels-last pass rewrites the dense convs only. The depthwise filter is a
// constant, as a model's weights are: its layout change is folded at compile time.
func.func @main(%x: tensor<1x8x16x16xf32>, %w1: tensor<16x8x1x1xf32>, %w2: tensor<8x16x1x1xf32>) -> tensor<1x8x16x16xf32> {
  %zero = arith.constant 0.0 : f32
  %wd = arith.constant dense<0.25> : tensor<16x3x3xf32>
  %init16 = tensor.empty() : tensor<1x16x16x16xf32>
  %acc16 = linalg.fill ins(%zero : f32) outs(%init16 : tensor<1x16x16x16xf32>) -> tensor<1x16x16x16xf32>
  %expand = linalg.conv_2d_nchw_fchw {dilations = dense<1> : tensor<2xi64>, strides = dense<1> : tensor<2xi64>}
      ins(%x, %w1 : tensor<1x8x16x16xf32>, tensor<16x8x1x1xf32>) outs(%acc16 : tensor<1x16x16x16xf32>) -> tensor<1x16x16x16xf32>
  %padded = tensor.pad %expand low[0, 0, 1, 1] high[0, 0, 1, 1] {
  ^bb0(%a: index, %b: index, %c: index, %d: index):
    tensor.yield %zero : f32
  } : tensor<1x16x16x16xf32> to tensor<1x16x18x18xf32>
  %dw = linalg.depthwise_conv_2d_nchw_chw {dilations = dense<1> : tensor<2xi64>, strides = dense<1> : tensor<2xi64>}
      ins(%padded, %wd : tensor<1x16x18x18xf32>, tensor<16x3x3xf32>) outs(%acc16 : tensor<1x16x16x16xf32>) -> tensor<1x16x16x16xf32>
  %init8 = tensor.empty() : tensor<1x8x16x16xf32>
  %acc8 = linalg.fill ins(%zero : f32) outs(%init8 : tensor<1x8x16x16xf32>) -> tensor<1x8x16x16xf32>
  %project = linalg.conv_2d_nchw_fchw {dilations = dense<1> : tensor<2xi64>, strides = dense<1> : tensor<2xi64>}
      ins(%dw, %w2 : tensor<1x16x16x16xf32>, tensor<8x16x1x1xf32>) outs(%acc8 : tensor<1x8x16x16xf32>) -> tensor<1x8x16x16xf32>
  return %project : tensor<1x8x16x16xf32>
}
