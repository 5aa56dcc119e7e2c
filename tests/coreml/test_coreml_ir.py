"""Core ML packages from IR text: control flow (xc.if -> cond, xc.loop -> while_loop, host
scalars as 0-d tensors) and symbolic dims (a flexible input in the saved spec), checked with the
package evaluator against the reference interpreter."""
from __future__ import annotations

import os

import numpy as np
import pytest

pytest.importorskip("coremltools")
os.environ.setdefault("TQDM_DISABLE", "1")

import xcomp  # noqa: E402
from xcomp.backends.coreml.evaluate import evaluate_package, load_package  # noqa: E402

from helpers import assert_close  # noqa: E402

CONTROL = """
module {
  func.func @main(%flag: tensor<i1>, %n: tensor<i64>, %x: tensor<2x3xf32>) -> (tensor<2x3xf32>, tensor<2x3xf32>) {
    %0 = "xc.if"(%flag) ({
      %1 = "xc.exp"(%x) : (tensor<2x3xf32>) -> tensor<2x3xf32>
      "xc.yield"(%1) : (tensor<2x3xf32>) -> ()
    }, {
      %2 = "xc.neg"(%x) : (tensor<2x3xf32>) -> tensor<2x3xf32>
      "xc.yield"(%2) : (tensor<2x3xf32>) -> ()
    }) : (tensor<i1>) -> tensor<2x3xf32>
    %3 = "xc.constant"() {dtype = i1, value = true} : () -> tensor<i1>
    %4 = "xc.constant"() {dtype = f32, value = 40.0} : () -> tensor<f32>
    %5 = "xc.loop"(%n, %3, %x) ({
    ^bb0(%i: tensor<i64>, %v: tensor<2x3xf32>):
      %6 = "xc.cast"(%i) {dtype = f32} : (tensor<i64>) -> tensor<f32>
      %7 = "xc.add"(%v, %v) : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
      %8 = "xc.add"(%7, %6) : (tensor<2x3xf32>, tensor<f32>) -> tensor<2x3xf32>
      %9 = "xc.sum"(%8) : (tensor<2x3xf32>) -> tensor<f32>
      %10 = "xc.lt"(%9, %4) : (tensor<f32>, tensor<f32>) -> tensor<i1>
      "xc.yield"(%10, %8) : (tensor<i1>, tensor<2x3xf32>) -> ()
    }) : (tensor<i64>, tensor<i1>, tensor<2x3xf32>) -> tensor<2x3xf32>
    func.return %0, %5 : tensor<2x3xf32>, tensor<2x3xf32>
  }
}
"""

SYMBOLIC = """
module {
  func.func @main(%x: tensor<?x8xf32, ["B"]>, %b: tensor<8xf32>) -> (tensor<?x8xf32, ["B"]>, tensor<?x8xi1, ["B"]>) {
    %0 = "xc.exp"(%x) : (tensor<?x8xf32, ["B"]>) -> tensor<?x8xf32, ["B"]>
    %1 = "xc.sub"(%0, %b) : (tensor<?x8xf32, ["B"]>, tensor<8xf32>) -> tensor<?x8xf32, ["B"]>
    %2 = "xc.isnan"(%0) : (tensor<?x8xf32, ["B"]>) -> tensor<?x8xi1, ["B"]>
    func.return %1, %2 : tensor<?x8xf32, ["B"]>, tensor<?x8xi1, ["B"]>
  }
}
"""


def _export(text, tmp_path, **options):
    program = xcomp.parse(text)
    return program, xcomp.export(program, [], target="coreml", path=str(tmp_path / "m.mlpackage"),
                                 compute_precision="float32", **options)


def _mil_ops(path) -> set[str]:
    program, _ = load_package(path)
    return {op.op_type for op in program.functions["main"].operations}


@pytest.mark.parametrize("flag,n", [(True, 0), (False, 2), (True, 9)])
def test_if_and_loop_become_cond_and_while_loop(flag, n, tmp_path):
    program, path = _export(CONTROL, tmp_path)
    assert {"cond", "while_loop"} <= _mil_ops(path)
    x = np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3)
    inputs = [np.array(flag), np.array(n, np.int64), x]
    outs, ev = evaluate_package(path, inputs)
    want = xcomp.interpret(program, inputs)
    for o, w in zip(outs, want):
        assert_close(o, w)
    assert ev.oracles["xcomp"]["while_loop"] == 1 and ev.oracles["xcomp"]["cond"] == 1


def test_symbolic_dim_gives_a_flexible_input(tmp_path):
    import coremltools as ct
    program, path = _export(SYMBOLIC, tmp_path)
    spec = ct.utils.load_spec(path)
    x = spec.description.input[0].type.multiArrayType
    assert x.WhichOneof("ShapeFlexibility") == "shapeRange"
    ranges = [(r.lowerBound, r.upperBound) for r in x.shapeRange.sizeRanges]
    assert ranges[0][0] == 1 and ranges[0][1] != 1 and ranges[1] == (8, 8)
    b = np.linspace(0, 1, 8, dtype=np.float32)
    for batch in (1, 5):
        xs = np.linspace(-2, 2, batch * 8, dtype=np.float32).reshape(batch, 8)
        outs, _ = evaluate_package(path, [xs, b])
        want = xcomp.interpret(program, [xs, b])
        assert outs[0].shape == (batch, 8) and outs[1].dtype == np.bool_
        assert_close(outs[0], want[0])
        np.testing.assert_array_equal(outs[1], want[1])


def test_evaluator_rejects_a_wrong_declared_shape(tmp_path):
    """The evaluator checks results against declared types (value_inference alone does not)."""
    from xcomp.backends.coreml.evaluate import PackageCheckError, PackageEvaluator
    program, path = _export(SYMBOLIC, tmp_path)
    mil, signature = load_package(path)
    x, b = (s["name"] for s in signature["inputs"])
    ev = PackageEvaluator(mil)
    with pytest.raises(PackageCheckError, match="shape"):
        ev.run({x: np.zeros((2, 9), np.float32), b: np.zeros(8, np.float32)})


def test_package_names_shapes_and_dtypes_come_from_the_program(tmp_path):
    import coremltools as ct
    torch = pytest.importorskip("torch")

    class Net(torch.nn.Module):
        def forward(self, tokens, scale):
            return (tokens.float() * scale).sum(-1), tokens > 2
    inputs = (torch.arange(6).reshape(2, 3), torch.randn(2, 3))
    path = xcomp.export(Net(), inputs, target="coreml", path=str(tmp_path / "n.mlpackage"))
    spec = ct.models.MLModel(path, skip_model_load=True).get_spec()
    assert spec.WhichOneof("Type") == "mlProgram"
    assert [i.name for i in spec.description.input] == ["tokens", "scale"]
    assert [o.name for o in spec.description.output] == ["output_0", "output_1"]
    assert [list(i.type.multiArrayType.shape) for i in spec.description.input] == [[2, 3], [2, 3]]
    arrays = ct.proto.FeatureTypes_pb2.ArrayFeatureType
    assert [i.type.multiArrayType.dataType for i in spec.description.input] == [arrays.INT32, arrays.FLOAT32]
    outs, _ = evaluate_package(path, [x.numpy() for x in inputs])   # i64 and bool results come back as such
    want = Net()(*inputs)
    assert outs[1].dtype == np.bool_ and outs[0].dtype == np.float32
    np.testing.assert_array_equal(outs[1], want[1].numpy())
    assert_close(outs[0], want[0].numpy(), dtype="float16")



def _tensor(shape) -> str:
    return f"tensor<{''.join(f'{d}x' for d in shape)}f32>"


@pytest.mark.parametrize("a, b", [((3,), (3,)), ((3,), (3, 5)), ((2, 4, 3), (3,)), ((3,), (2, 3, 5)), ((4, 3), (3,))])
def test_matmul_with_a_vector_operand(tmp_path, a, b):
    """torch's 1-d matmul operands (addmv, mv, dot): made 2-d for MIL's matmul and squeezed back."""
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal(a).astype(np.float32), rng.standard_normal(b).astype(np.float32)
    ta, tb, to = _tensor(a), _tensor(b), _tensor(np.matmul(x, y).shape)
    text = f"""
module {{
  func.func @main(%a: {ta}, %b: {tb}) -> ({to}) {{
    %0 = "xc.matmul"(%a, %b) : ({ta}, {tb}) -> {to}
    func.return %0 : {to}
  }}
}}
"""
    path = xcomp.export(xcomp.parse(text), [x, y], target="coreml", path=str(tmp_path / "m.mlpackage"),
                        compute_precision="float32")
    outs, _ = evaluate_package(path, [x, y])
    assert outs[0].shape == np.matmul(x, y).shape
    assert_close(outs[0], np.matmul(x, y))


def test_softmax_of_a_scalar_is_one(tmp_path):
    """softmax over a 0-d value: 1 (NaN for inf), as torch gives (masked.softmax's 0-d sample)."""
    text = """
module {
  func.func @main(%x: tensor<f32>) -> (tensor<f32>) {
    %0 = "xc.softmax"(%x) {axis = 0} : (tensor<f32>) -> tensor<f32>
    func.return %0 : tensor<f32>
  }
}
"""
    path = xcomp.export(xcomp.parse(text), [np.float32(3)], target="coreml", path=str(tmp_path / "s.mlpackage"),
                        compute_precision="float32")
    for x, want in ((np.array(-9.5, np.float32), 1.0), (np.array(np.inf, np.float32), np.nan)):
        outs, _ = evaluate_package(path, [x])
        assert outs[0].shape == () and np.array_equal(outs[0], np.float32(want), equal_nan=True)
