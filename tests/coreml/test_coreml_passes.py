"""coreml_lift_reshapes: a structural property (fewer reshapes, none left around the linears) and
unchanged results (reference interpreter before and after)."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import xcomp  # noqa: E402
from xcomp.backends.coreml import passes  # noqa: E402,F401  (registers the pass)
from xcomp.backends.coreml.target import CoreMLTarget  # noqa: E402

from helpers import assert_close  # noqa: E402


def _reshapes(program) -> int:
    return sum(op.name == "xc.reshape" for op in program.walk())


def _decomposed(model, inputs):
    """The program of torch.export's core-ATen decomposition (linears flattened to 2-d matmuls),
    which a capture takes when a graph holds ops outside `AS_EXPORTED`."""
    from xcomp.frontends.torch_export import from_exported
    ep = torch.export.export(model, tuple(inputs), strict=False).run_decompositions()
    return from_exported(ep, decompose=False).program


@pytest.mark.parametrize("name", ["mlp", "gpt_block", "encoder_layer"])
def test_lift_reshapes_cancels_flatten_pairs_and_keeps_results(name):
    from xcomp.zoo import MODELS
    model, inputs = MODELS[name]()
    program = _decomposed(model, inputs)
    without = [p for p in CoreMLTarget.pipeline if p != "coreml_lift_reshapes"]
    before, _ = xcomp.optimize(program, "coreml", passes=without)
    after, report = xcomp.optimize(program, "coreml")
    assert report.records[-1].name == "coreml_lift_reshapes"
    assert _reshapes(after) < _reshapes(before) or _reshapes(before) == 0
    for op in after.walk():      # no linear (2-d weight) is fed by a flatten that keeps the last dim
        src = op.operands[0].op if op.name == "xc.matmul" and op.operands[1].type.rank == 2 else None
        if src is not None and src.name == "xc.reshape":
            assert src.operands[0].type.shape[-1] != op.operands[0].type.shape[-1]
    xs = [x.numpy() for x in inputs]
    for a, b in zip(xcomp.interpret(after, xs), xcomp.interpret(before, xs)):
        assert_close(a, b)


def test_lift_reshapes_refuses_a_reshape_that_moves_the_last_dim():
    text = """
module {
  func.func @main(%x: tensor<2x3x4xf32>, %c: tensor<6xf32>) -> (tensor<4x6xf32>) {
    %0 = "xc.reshape"(%x) {shape = [4, 6]} : (tensor<2x3x4xf32>) -> tensor<4x6xf32>
    %1 = "xc.add"(%0, %c) : (tensor<4x6xf32>, tensor<6xf32>) -> tensor<4x6xf32>
    func.return %1 : tensor<4x6xf32>
  }
}
"""
    program = xcomp.parse(text)
    out, _ = xcomp.optimize(program, "coreml", passes=["coreml_lift_reshapes"])
    assert [op.name for op in out.main.body.ops][:2] == ["xc.reshape", "xc.add"]
    x, c = np.arange(24, dtype=np.float32).reshape(2, 3, 4), np.arange(6, dtype=np.float32)
    assert_close(xcomp.interpret(out, [x, c])[0], x.reshape(4, 6) + c)


def test_masked_softmax_guard_becomes_a_max_and_keeps_fully_masked_rows(tmp_path):
    """torch's guard (a fully masked attention row gives 0, not NaN) survives as amax(s) == -inf."""
    from xcomp.backends.coreml.evaluate import evaluate_package
    torch.manual_seed(0)
    mha = torch.nn.MultiheadAttention(8, 2, batch_first=True).eval()
    with torch.no_grad():
        mha.out_proj.bias.fill_(0.5)
    mask = torch.zeros(3, 3, dtype=torch.bool)
    mask[1] = True                       # row 1 sees nothing

    class Attend(torch.nn.Module):
        def forward(self, q):
            return mha(q, q, q, attn_mask=mask, need_weights=False)[0]
    q = torch.randn(2, 3, 8)
    program = xcomp.capture(Attend(), (q,))
    optimized, _ = xcomp.optimize(program, "coreml")
    names = [op.name for op in optimized.walk()]
    assert "xc.any" not in names and "xc.amax" in names
    path = xcomp.export(program, (q,), target="coreml", path=str(tmp_path / "a.mlpackage"),
                        compute_precision="float32")
    outs, _ = evaluate_package(path, [q.numpy()])
    want = Attend()(q).detach().numpy()      # with grad on: torch's composite path, the guarded one
    assert_close(outs[0], want)
    assert_close(outs[0], xcomp.interpret(program, [q.numpy()])[0])
    assert np.allclose(outs[0][:, 1], 0.5, atol=1e-6)   # the masked row: softmax guarded to 0, plus bias
