// One row times a matrix (a batch-1 classifier head): m = 1, an odd n.
func.func @main(%a: tensor<1x128xf32>, %b: tensor<128x10xf32>) -> tensor<1x10xf32> {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<1x10xf32>
  %f = linalg.fill ins(%zero : f32) outs(%e : tensor<1x10xf32>) -> tensor<1x10xf32>
  %r = linalg.matmul ins(%a, %b : tensor<1x128xf32>, tensor<128x10xf32>) outs(%f : tensor<1x10xf32>) -> tensor<1x10xf32>
  return %r : tensor<1x10xf32>
}
