// SDPA (q, k, v 2x4x32x16) followed by a projection matmul of its output (as 256x16) with w
// (16x24): under data tiling the matmul becomes an mmt4d, the attention stays as it was.
module @module {
  func.func @main(%q: !torch.vtensor<[2,4,32,16],f32>, %k: !torch.vtensor<[2,4,32,16],f32>, %v: !torch.vtensor<[2,4,32,16],f32>, %w: !torch.vtensor<[16,24],f32>) -> !torch.vtensor<[256,24],f32> {
    %none = torch.constant.none
    %zero = torch.constant.float 0.000000e+00
    %false = torch.constant.bool false
    %0 = torch.aten.scaled_dot_product_attention %q, %k, %v, %none, %zero, %false, %none, %false : !torch.vtensor<[2,4,32,16],f32>, !torch.vtensor<[2,4,32,16],f32>, !torch.vtensor<[2,4,32,16],f32>, !torch.none, !torch.float, !torch.bool, !torch.none, !torch.bool -> !torch.vtensor<[2,4,32,16],f32>
    %int256 = torch.constant.int 256
    %int16 = torch.constant.int 16
    %shape = torch.prim.ListConstruct %int256, %int16 : (!torch.int, !torch.int) -> !torch.list<int>
    %1 = torch.aten.view %0, %shape : !torch.vtensor<[2,4,32,16],f32>, !torch.list<int> -> !torch.vtensor<[256,16],f32>
    %2 = torch.aten.mm %1, %w : !torch.vtensor<[256,16],f32>, !torch.vtensor<[16,24],f32> -> !torch.vtensor<[256,24],f32>
    return %2 : !torch.vtensor<[256,24],f32>
  }
}
