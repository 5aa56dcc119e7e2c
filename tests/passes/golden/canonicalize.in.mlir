module {
  func.func @main(%arg0: tensor<3x4xf32>, %arg1: tensor<4xf32>) -> (tensor<3x4xf32>) {
    %0 = "xc.constant"() {dtype = f32, value = 1.0} : () -> tensor<f32>
    %1 = "xc.neg"(%arg0) : (tensor<3x4xf32>) -> tensor<3x4xf32>
    %2 = "xc.neg"(%1) : (tensor<3x4xf32>) -> tensor<3x4xf32>
    %3 = "xc.mul"(%0, %2) : (tensor<f32>, tensor<3x4xf32>) -> tensor<3x4xf32>
    %4 = "xc.broadcast_to"(%arg1) {shape = [3, 4]} : (tensor<4xf32>) -> tensor<3x4xf32>
    %5 = "xc.transpose"(%4) {perm = [1, 0]} : (tensor<3x4xf32>) -> tensor<4x3xf32>
    %6 = "xc.transpose"(%5) {perm = [1, 0]} : (tensor<4x3xf32>) -> tensor<3x4xf32>
    %7 = "xc.add"(%3, %6) : (tensor<3x4xf32>, tensor<3x4xf32>) -> tensor<3x4xf32>
    func.return %7 : tensor<3x4xf32>
  }
}
