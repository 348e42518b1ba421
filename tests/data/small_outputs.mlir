// A matmul whose outputs are about 1e-4: a fixed absolute tolerance cannot check it.
func.func @main(%a: tensor<64x128xf32>, %b: tensor<128x96xf32>) -> tensor<64x96xf32> {
  %zero = arith.constant 0.0 : f32
  %tiny = arith.constant 1.0e-5 : f32
  %init = tensor.empty() : tensor<64x96xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%init : tensor<64x96xf32>) -> tensor<64x96xf32>
  %mm = linalg.matmul ins(%a, %b : tensor<64x128xf32>, tensor<128x96xf32>) outs(%acc : tensor<64x96xf32>) -> tensor<64x96xf32>
  %small = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, d1)>],
                           iterator_types = ["parallel", "parallel"]}
      ins(%mm : tensor<64x96xf32>) outs(%init : tensor<64x96xf32>) {
  ^bb0(%x: f32, %o: f32):
    %s = arith.mulf %x, %tiny : f32
    linalg.yield %s : f32
  } -> tensor<64x96xf32>
  return %small : tensor<64x96xf32>
}
