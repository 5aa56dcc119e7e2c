module {
  func.func @f(%arg0: tensor<4xf32>) -> (tensor<4xf32>) {
    %0 = "xc.exp"(%arg0) : (tensor<4xf32>) -> tensor<4xf32>
    func.return %0 : tensor<4xf32>
  }
  func.func @main(%arg0: tensor<4xf32>) -> (tensor<4xf32>) {
    %0 = "xc.call"(%arg0) {callee = @f} : (tensor<4xf32>) -> tensor<4xf32>
    %1 = "xc.call"(%arg0) {callee = @f} : (tensor<4xf32>) -> tensor<4xf32>
    %2 = "xc.add"(%0, %1) : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
    func.return %2 : tensor<4xf32>
  }
}
