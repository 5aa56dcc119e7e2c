module {
  func.func @main(%arg0: tensor<4x16xf32>, %arg1: tensor<4x16xf32>, %arg2: tensor<16xf32>, %arg3: tensor<16xf32>) -> (tensor<4x16xf32>) {
    %0 = "xc.add"(%arg0, %arg1) : (tensor<4x16xf32>, tensor<4x16xf32>) -> tensor<4x16xf32>
    %1 = "xc.layer_norm"(%0, %arg2, %arg3) {normalized_ndim = 1} : (tensor<4x16xf32>, tensor<16xf32>, tensor<16xf32>) -> tensor<4x16xf32>
    func.return %1 : tensor<4x16xf32>
  }
}
