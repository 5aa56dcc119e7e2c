"""Decompositions over symbolic sizes: the count a variance divides by is a run-time size."""
import numpy as np
import pytest
import torch

import xcomp
from xcomp.interpreter import interpret

VAR = '''module {
  func.func @main(%arg0: tensor<?x8xf32, ["S"]>) -> (tensor<8xf32>) {
    %0 = "xc.var"(%arg0) {axes = [0], correction = 1} : (tensor<?x8xf32, ["S"]>) -> tensor<8xf32>
    func.return %0 : tensor<8xf32>
  }
}
'''


@pytest.mark.parametrize("n", [1, 2, 5, 9])
def test_var_over_a_symbolic_axis_decomposes_with_a_runtime_count(n):
    program, _ = xcomp.optimize(xcomp.parse(VAR, {}), "mlx", passes=["decompose"])  # mlx has no var
    assert not any(op.name == "xc.var" for op in program.walk())
    x = np.random.default_rng(n).standard_normal((n, 8)).astype(np.float32)
    want = torch.var(torch.from_numpy(x), dim=0, correction=1).numpy()   # nan for one element, as torch
    np.testing.assert_allclose(interpret(program, [x])[0], want, rtol=1e-5, atol=1e-6, equal_nan=True)
