// A batch-1 NHWC block as channels-last leaves a CNN: a padded 3x3 conv with bias and ReLU,
// a strided 3x3 depthwise conv, a strided 3x3 max pool. IREE folds each op's unit batch
// before the spec stage (tests/test_batch1.py).
func.func @main(%x: tensor<1x16x16x8xf32>, %w: tensor<3x3x8x16xf32>, %b: tensor<16xf32>, %dw: tensor<3x3x16xf32>) -> tensor<1x3x3x16xf32> {
  %zero = arith.constant 0.0 : f32
  %ninf = arith.constant 0xFF800000 : f32
  %padded = tensor.pad %x low[0, 1, 1, 0] high[0, 1, 1, 0] {
  ^bb0(%i: index, %j: index, %k: index, %l: index):
    tensor.yield %zero : f32
  } : tensor<1x16x16x8xf32> to tensor<1x18x18x8xf32>
  %e0 = tensor.empty() : tensor<1x16x16x16xf32>
  %f0 = linalg.fill ins(%zero : f32) outs(%e0 : tensor<1x16x16x16xf32>) -> tensor<1x16x16x16xf32>
  %conv = linalg.conv_2d_nhwc_hwcf {dilations = dense<1> : tensor<2xi64>, strides = dense<1> : tensor<2xi64>}
    ins(%padded, %w : tensor<1x18x18x8xf32>, tensor<3x3x8x16xf32>) outs(%f0 : tensor<1x16x16x16xf32>) -> tensor<1x16x16x16xf32>
  %act = linalg.generic {indexing_maps = [affine_map<(n, h, w, c) -> (n, h, w, c)>, affine_map<(n, h, w, c) -> (c)>, affine_map<(n, h, w, c) -> (n, h, w, c)>],
                         iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
    ins(%conv, %b : tensor<1x16x16x16xf32>, tensor<16xf32>) outs(%e0 : tensor<1x16x16x16xf32>) {
  ^bb0(%v: f32, %bias: f32, %o: f32):
    %s = arith.addf %v, %bias : f32
    %r = arith.maximumf %s, %zero : f32
    linalg.yield %r : f32
  } -> tensor<1x16x16x16xf32>
  %e1 = tensor.empty() : tensor<1x7x7x16xf32>
  %f1 = linalg.fill ins(%zero : f32) outs(%e1 : tensor<1x7x7x16xf32>) -> tensor<1x7x7x16xf32>
  %dwc = linalg.depthwise_conv_2d_nhwc_hwc {dilations = dense<1> : tensor<2xi64>, strides = dense<2> : tensor<2xi64>}
    ins(%act, %dw : tensor<1x16x16x16xf32>, tensor<3x3x16xf32>) outs(%f1 : tensor<1x7x7x16xf32>) -> tensor<1x7x7x16xf32>
  %window = tensor.empty() : tensor<3x3xf32>
  %e2 = tensor.empty() : tensor<1x3x3x16xf32>
  %f2 = linalg.fill ins(%ninf : f32) outs(%e2 : tensor<1x3x3x16xf32>) -> tensor<1x3x3x16xf32>
  %pool = linalg.pooling_nhwc_max {dilations = dense<1> : tensor<2xi64>, strides = dense<2> : tensor<2xi64>}
    ins(%dwc, %window : tensor<1x7x7x16xf32>, tensor<3x3xf32>) outs(%f2 : tensor<1x3x3x16xf32>) -> tensor<1x3x3x16xf32>
  return %pool : tensor<1x3x3x16xf32>
}
