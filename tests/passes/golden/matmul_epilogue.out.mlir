module {
  func.func @main(%arg0: tensor<4x8xf32>, %arg1: tensor<8x16xf32>, %arg2: tensor<16xf32>) -> (tensor<4x16xf32>) {
    %0 = "xc.fused"(%arg0, %arg1, %arg2) ({
    ^bb0(%arg3: tensor<4x8xf32>, %arg4: tensor<8x16xf32>, %arg5: tensor<16xf32>):
      %1 = "xc.matmul"(%arg3, %arg4) : (tensor<4x8xf32>, tensor<8x16xf32>) -> tensor<4x16xf32>
      %2 = "xc.add"(%1, %arg5) : (tensor<4x16xf32>, tensor<16xf32>) -> tensor<4x16xf32>
      %3 = "xc.gelu"(%2) : (tensor<4x16xf32>) -> tensor<4x16xf32>
      "xc.yield"(%3) : (tensor<4x16xf32>) -> ()
    }) {kind = "matmul_epilogue"} : (tensor<4x8xf32>, tensor<8x16xf32>, tensor<16xf32>) -> tensor<4x16xf32>
    func.return %0 : tensor<4x16xf32>
  }
}
