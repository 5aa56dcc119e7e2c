module {
  func.func @main(%arg0: tensor<2x3x8xf32>) -> (tensor<2x3x8xf32>) {
    %0 = "xc.constant"() {dtype = f32, value = 0.125} : () -> tensor<f32>
    %1 = "xc.mul"(%arg0, %0) : (tensor<2x3x8xf32>, tensor<f32>) -> tensor<2x3x8xf32>
    %2 = "xc.softmax"(%1) {axis = -1} : (tensor<2x3x8xf32>) -> tensor<2x3x8xf32>
    func.return %2 : tensor<2x3x8xf32>
  }
}
