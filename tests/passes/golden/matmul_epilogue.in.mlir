module {
  func.func @main(%arg0: tensor<4x8xf32>, %arg1: tensor<8x16xf32>, %arg2: tensor<16xf32>) -> (tensor<4x16xf32>) {
    %0 = "xc.matmul"(%arg0, %arg1) : (tensor<4x8xf32>, tensor<8x16xf32>) -> tensor<4x16xf32>
    %1 = "xc.add"(%0, %arg2) : (tensor<4x16xf32>, tensor<16xf32>) -> tensor<4x16xf32>
    %2 = "xc.gelu"(%1) : (tensor<4x16xf32>) -> tensor<4x16xf32>
    func.return %2 : tensor<4x16xf32>
  }
}
