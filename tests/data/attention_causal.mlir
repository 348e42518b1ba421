// Causal SDPA (is_causal = true: IREE adds the mask as an operand), q = k = 2x4x32x16, v 2x4x32x8.
module @module {
  func.func @main(%q: !torch.vtensor<[2,4,32,16],f32>, %k: !torch.vtensor<[2,4,32,16],f32>, %v: !torch.vtensor<[2,4,32,8],f32>) -> !torch.vtensor<[2,4,32,8],f32> {
    %none = torch.constant.none
    %zero = torch.constant.float 0.000000e+00
    %false = torch.constant.bool false
    %true = torch.constant.bool true
    %0 = torch.aten.scaled_dot_product_attention %q, %k, %v, %none, %zero, %true, %none, %false : !torch.vtensor<[2,4,32,16],f32>, !torch.vtensor<[2,4,32,16],f32>, !torch.vtensor<[2,4,32,8],f32>, !torch.none, !torch.float, !torch.bool, !torch.none, !torch.bool -> !torch.vtensor<[2,4,32,8],f32>
    return %0 : !torch.vtensor<[2,4,32,8],f32>
  }
}
