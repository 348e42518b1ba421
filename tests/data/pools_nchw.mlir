// NCHW pooling between NCHW convs, as PyTorch exports it: a 3x3 stride-2 max pool padded with
// -inf (ResNet's stem pool), then a 2x2 stride-2 average pool (sum, then divide), over an odd
// channel count (7): the pooling-channels-last script must not depend on any of them.
func.func @main(%x: tensor<2x5x17x17xf32>, %w1: tensor<7x5x1x1xf32>, %w2: tensor<3x7x1x1xf32>) -> tensor<2x3x4x4xf32> {
  %zero = arith.constant 0.0 : f32
  %ninf = arith.constant 0xFF800000 : f32
  %four = arith.constant 4.0 : f32
  %i1 = tensor.empty() : tensor<2x7x17x17xf32>
  %a1 = linalg.fill ins(%zero : f32) outs(%i1 : tensor<2x7x17x17xf32>) -> tensor<2x7x17x17xf32>
  %c1 = linalg.conv_2d_nchw_fchw {dilations = dense<1> : tensor<2xi64>, strides = dense<1> : tensor<2xi64>} ins(%x, %w1 : tensor<2x5x17x17xf32>, tensor<7x5x1x1xf32>) outs(%a1 : tensor<2x7x17x17xf32>) -> tensor<2x7x17x17xf32>
  %p = tensor.pad %c1 low[0, 0, 1, 1] high[0, 0, 1, 1] {
  ^bb0(%a: index, %b: index, %cc: index, %dd: index):
    tensor.yield %ninf : f32
  } : tensor<2x7x17x17xf32> to tensor<2x7x19x19xf32>
  %mw = tensor.empty() : tensor<3x3xf32>
  %i2 = tensor.empty() : tensor<2x7x9x9xf32>
  %a2 = linalg.fill ins(%ninf : f32) outs(%i2 : tensor<2x7x9x9xf32>) -> tensor<2x7x9x9xf32>
  %mp = linalg.pooling_nchw_max {dilations = dense<1> : tensor<2xi64>, strides = dense<2> : tensor<2xi64>} ins(%p, %mw : tensor<2x7x19x19xf32>, tensor<3x3xf32>) outs(%a2 : tensor<2x7x9x9xf32>) -> tensor<2x7x9x9xf32>
  %aw = tensor.empty() : tensor<2x2xf32>
  %i3 = tensor.empty() : tensor<2x7x4x4xf32>
  %a3 = linalg.fill ins(%zero : f32) outs(%i3 : tensor<2x7x4x4xf32>) -> tensor<2x7x4x4xf32>
  %sp = linalg.pooling_nchw_sum {dilations = dense<1> : tensor<2xi64>, strides = dense<2> : tensor<2xi64>} ins(%mp, %aw : tensor<2x7x9x9xf32>, tensor<2x2xf32>) outs(%a3 : tensor<2x7x4x4xf32>) -> tensor<2x7x4x4xf32>
  %avg = linalg.generic {indexing_maps = [affine_map<(n, c, h, w) -> (n, c, h, w)>, affine_map<(n, c, h, w) -> (n, c, h, w)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%sp : tensor<2x7x4x4xf32>) outs(%i3 : tensor<2x7x4x4xf32>) {
  ^bb0(%s: f32, %o: f32):
    %d = arith.divf %s, %four : f32
    linalg.yield %d : f32
  } -> tensor<2x7x4x4xf32>
  %i4 = tensor.empty() : tensor<2x3x4x4xf32>
  %a4 = linalg.fill ins(%zero : f32) outs(%i4 : tensor<2x3x4x4xf32>) -> tensor<2x3x4x4xf32>
  %c2 = linalg.conv_2d_nchw_fchw {dilations = dense<1> : tensor<2xi64>, strides = dense<1> : tensor<2xi64>} ins(%avg, %w2 : tensor<2x7x4x4xf32>, tensor<3x7x1x1xf32>) outs(%a4 : tensor<2x3x4x4xf32>) -> tensor<2x3x4x4xf32>
  return %c2 : tensor<2x3x4x4xf32>
}
