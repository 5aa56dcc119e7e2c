module {
  func.func @main(%arg0: tensor<4xf32>) -> (tensor<4xf32>) {
    %0 = "xc.constant"() {dtype = f32, value = 0.0} : () -> tensor<f32>
    %1 = "xc.exp"(%0) : (tensor<f32>) -> tensor<f32>
    %2 = "xc.add"(%arg0, %1) : (tensor<4xf32>, tensor<f32>) -> tensor<4xf32>
    %3 = "xc.constant"() {dtype = f32, value = 0.0} : () -> tensor<f32>
    %4 = "xc.exp"(%3) : (tensor<f32>) -> tensor<f32>
    %5 = "xc.add"(%4, %arg0) : (tensor<f32>, tensor<4xf32>) -> tensor<4xf32>
    %6 = "xc.mul"(%2, %5) : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
    func.return %6 : tensor<4xf32>
  }
}
