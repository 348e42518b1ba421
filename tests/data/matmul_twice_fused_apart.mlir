// One matmul shape in two dispatches fused differently (a ReLU after one of them): one
// tuning target, but no single transform script can rebuild both dispatches.
func.func @main(%a: tensor<64x128xf32>, %b: tensor<128x96xf32>, %c: tensor<64x128xf32>) -> (tensor<64x96xf32>, tensor<64x96xf32>) {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<64x96xf32>
  %f = linalg.fill ins(%zero : f32) outs(%e : tensor<64x96xf32>) -> tensor<64x96xf32>
  %r = linalg.matmul ins(%a, %b : tensor<64x128xf32>, tensor<128x96xf32>) outs(%f : tensor<64x96xf32>) -> tensor<64x96xf32>
  %relu = linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (i, j)>],
                          iterator_types = ["parallel", "parallel"]}
      ins(%r : tensor<64x96xf32>) outs(%e : tensor<64x96xf32>) {
  ^bb0(%v: f32, %o: f32):
    %m = arith.maximumf %v, %zero : f32
    linalg.yield %m : f32
  } -> tensor<64x96xf32>
  %r2 = linalg.matmul ins(%c, %b : tensor<64x128xf32>, tensor<128x96xf32>) outs(%f : tensor<64x96xf32>) -> tensor<64x96xf32>
  return %relu, %r2 : tensor<64x96xf32>, tensor<64x96xf32>
}
