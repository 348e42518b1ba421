// One batch-1 conv shape in two dispatches, a ReLU fused after one of them: only a script
// reaches a batch-1 conv, and no one script rebuilds both dispatches.
func.func @main(%x: tensor<1x18x18x16xf32>, %w: tensor<3x3x16x32xf32>, %x2: tensor<1x18x18x16xf32>) -> (tensor<1x16x16x32xf32>, tensor<1x16x16x32xf32>) {
  %zero = arith.constant 0.0 : f32
  %init = tensor.empty() : tensor<1x16x16x32xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%init : tensor<1x16x16x32xf32>) -> tensor<1x16x16x32xf32>
  %y = linalg.conv_2d_nhwc_hwcf {dilations = dense<1> : tensor<2xi64>, strides = dense<1> : tensor<2xi64>}
      ins(%x, %w : tensor<1x18x18x16xf32>, tensor<3x3x16x32xf32>) outs(%acc : tensor<1x16x16x32xf32>) -> tensor<1x16x16x32xf32>
  %relu = linalg.generic {indexing_maps = [affine_map<(n, h, w, c) -> (n, h, w, c)>, affine_map<(n, h, w, c) -> (n, h, w, c)>],
                          iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%y : tensor<1x16x16x32xf32>) outs(%init : tensor<1x16x16x32xf32>) {
  ^bb0(%v: f32, %o: f32):
    %m = arith.maximumf %v, %zero : f32
    linalg.yield %m : f32
  } -> tensor<1x16x16x32xf32>
  %y2 = linalg.conv_2d_nhwc_hwcf {dilations = dense<1> : tensor<2xi64>, strides = dense<1> : tensor<2xi64>}
      ins(%x2, %w : tensor<1x18x18x16xf32>, tensor<3x3x16x32xf32>) outs(%acc : tensor<1x16x16x32xf32>) -> tensor<1x16x16x32xf32>
  return %relu, %y2 : tensor<1x16x16x32xf32>, tensor<1x16x16x32xf32>
}
