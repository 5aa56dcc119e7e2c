module {
  func.func @main(%arg0: tensor<4x16xf32>, %arg1: tensor<4x16xf32>, %arg2: tensor<16xf32>, %arg3: tensor<16xf32>) -> (tensor<4x16xf32>) {
    %0 = "xc.fused"(%arg0, %arg1, %arg2, %arg3) ({
    ^bb0(%arg4: tensor<4x16xf32>, %arg5: tensor<4x16xf32>, %arg6: tensor<16xf32>, %arg7: tensor<16xf32>):
      %1 = "xc.add"(%arg4, %arg5) : (tensor<4x16xf32>, tensor<4x16xf32>) -> tensor<4x16xf32>
      %2 = "xc.mean"(%1) {axes = [1], keepdim = true} : (tensor<4x16xf32>) -> tensor<4x1xf32>
      %3 = "xc.sub"(%1, %2) : (tensor<4x16xf32>, tensor<4x1xf32>) -> tensor<4x16xf32>
      %4 = "xc.mul"(%3, %3) : (tensor<4x16xf32>, tensor<4x16xf32>) -> tensor<4x16xf32>
      %5 = "xc.mean"(%4) {axes = [1], keepdim = true} : (tensor<4x16xf32>) -> tensor<4x1xf32>
      %6 = "xc.constant"() {dtype = f32, value = 1.0e-05} : () -> tensor<f32>
      %7 = "xc.add"(%5, %6) : (tensor<4x1xf32>, tensor<f32>) -> tensor<4x1xf32>
      %8 = "xc.rsqrt"(%7) : (tensor<4x1xf32>) -> tensor<4x1xf32>
      %9 = "xc.mul"(%3, %8) : (tensor<4x16xf32>, tensor<4x1xf32>) -> tensor<4x16xf32>
      %10 = "xc.mul"(%9, %arg6) : (tensor<4x16xf32>, tensor<16xf32>) -> tensor<4x16xf32>
      %11 = "xc.add"(%10, %arg7) : (tensor<4x16xf32>, tensor<16xf32>) -> tensor<4x16xf32>
      "xc.yield"(%11) : (tensor<4x16xf32>) -> ()
    }) {kind = "reduction"} : (tensor<4x16xf32>, tensor<4x16xf32>, tensor<16xf32>, tensor<16xf32>) -> tensor<4x16xf32>
    func.return %0 : tensor<4x16xf32>
  }
}
