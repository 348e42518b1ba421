// A 3x3 depthwise conv in NCHW with bias and ReLU6 fused after it, as MobileNet has them: a
// dispatch of fill, depthwise and one elementwise consumer.
func.func @main(%x: tensor<2x16x18x18xf32>, %w: tensor<16x3x3xf32>, %b: tensor<16xf32>) -> tensor<2x16x16x16xf32> {
  %zero = arith.constant 0.0 : f32
  %six = arith.constant 6.0 : f32
  %init = tensor.empty() : tensor<2x16x16x16xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%init : tensor<2x16x16x16xf32>) -> tensor<2x16x16x16xf32>
  %y = linalg.depthwise_conv_2d_nchw_chw {dilations = dense<1> : tensor<2xi64>, strides = dense<1> : tensor<2xi64>}
      ins(%x, %w : tensor<2x16x18x18xf32>, tensor<16x3x3xf32>) outs(%acc : tensor<2x16x16x16xf32>) -> tensor<2x16x16x16xf32>
  %r = linalg.generic {indexing_maps = [affine_map<(n, c, h, w) -> (n, c, h, w)>, affine_map<(n, c, h, w) -> (c)>, affine_map<(n, c, h, w) -> (n, c, h, w)>],
                       iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%y, %b : tensor<2x16x16x16xf32>, tensor<16xf32>) outs(%init : tensor<2x16x16x16xf32>) {
  ^bb0(%v: f32, %bias: f32, %o: f32):
    %s = arith.addf %v, %bias : f32
    %m = arith.maximumf %s, %zero : f32
    %c = arith.minimumf %m, %six : f32
    linalg.yield %c : f32
  } -> tensor<2x16x16x16xf32>
  return %r : tensor<2x16x16x16xf32>
}
