module {
  func.func @main(%arg0: tensor<4xf32>) -> (tensor<4xf32>) {
    %0 = "xc.constant"() {dtype = f32, value = 1.0} : () -> tensor<f32>
    %1 = "xc.add"(%arg0, %0) : (tensor<4xf32>, tensor<f32>) -> tensor<4xf32>
    %2 = "xc.mul"(%1, %1) : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
    func.return %2 : tensor<4xf32>
  }
}
