module {
  func.func @main(%arg0: tensor<2x3x8xf32>) -> (tensor<2x3x8xf32>) {
    %0 = "xc.fused"(%arg0) ({
    ^bb0(%arg1: tensor<2x3x8xf32>):
      %1 = "xc.constant"() {dtype = f32, value = 0.125} : () -> tensor<f32>
      %2 = "xc.mul"(%arg1, %1) : (tensor<2x3x8xf32>, tensor<f32>) -> tensor<2x3x8xf32>
      %3 = "xc.amax"(%2) {axes = [-1], keepdim = true} : (tensor<2x3x8xf32>) -> tensor<2x3x1xf32>
      %4 = "xc.sub"(%2, %3) : (tensor<2x3x8xf32>, tensor<2x3x1xf32>) -> tensor<2x3x8xf32>
      %5 = "xc.exp"(%4) : (tensor<2x3x8xf32>) -> tensor<2x3x8xf32>
      %6 = "xc.sum"(%5) {axes = [-1], keepdim = true} : (tensor<2x3x8xf32>) -> tensor<2x3x1xf32>
      %7 = "xc.div"(%5, %6) : (tensor<2x3x8xf32>, tensor<2x3x1xf32>) -> tensor<2x3x8xf32>
      "xc.yield"(%7) : (tensor<2x3x8xf32>) -> ()
    }) {kind = "reduction"} : (tensor<2x3x8xf32>) -> tensor<2x3x8xf32>
    func.return %0 : tensor<2x3x8xf32>
  }
}
