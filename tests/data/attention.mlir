// SDPA on q 2x4x32x16, k 2x4x48x16, v 2x4x48x8 (every loop a different size), as iree-turbine imports it.
module @module {
  func.func @main(%q: !torch.vtensor<[2,4,32,16],f32>, %k: !torch.vtensor<[2,4,48,16],f32>, %v: !torch.vtensor<[2,4,48,8],f32>) -> !torch.vtensor<[2,4,32,8],f32> {
    %none = torch.constant.none
    %zero = torch.constant.float 0.000000e+00
    %false = torch.constant.bool false
    %0 = torch.aten.scaled_dot_product_attention %q, %k, %v, %none, %zero, %false, %none, %false : !torch.vtensor<[2,4,32,16],f32>, !torch.vtensor<[2,4,48,16],f32>, !torch.vtensor<[2,4,48,8],f32>, !torch.none, !torch.float, !torch.bool, !torch.none, !torch.bool -> !torch.vtensor<[2,4,32,8],f32>
    return %0 : !torch.vtensor<[2,4,32,8],f32>
  }
}
