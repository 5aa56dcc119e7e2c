"""Core ML packages of programs with symbolic sizes: one package for every batch and sequence length.

The flexibility is read back from the saved spec (`shapeRange` / `enumeratedShapes`), and the same
package is run by the package evaluator at several sizes (specialized as Core ML does at a
prediction) against torch eager. Small dims keep the default tier fast.
"""
from __future__ import annotations

import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ct = pytest.importorskip("coremltools")
os.environ.setdefault("TQDM_DISABLE", "1")

import xcomp  # noqa: E402
from xcomp import GuardError, zoo  # noqa: E402
from xcomp.api import optimize  # noqa: E402
from xcomp.backends.coreml.evaluate import PackageCheckError, evaluate_package, flexible_shapes  # noqa: E402
from xcomp.backends.coreml.target import CoreMLTarget  # noqa: E402
from xcomp.errors import TargetError  # noqa: E402

from helpers import assert_close  # noqa: E402

GPT_DIMS = {"x": {0: "B", 1: "S"}}


@pytest.fixture(scope="module")
def gpt():
    """The zoo GPT block (small dims) captured with a symbolic batch and sequence, coreml-optimized."""
    model, inputs = zoo.gpt_block(batch=2, seq=8, dim=32, heads=2)
    program, _ = optimize(xcomp.capture(model, inputs, dynamic=GPT_DIMS), "coreml")
    return model, program


def _eager(model, x):
    with torch.no_grad():
        return model(x).numpy()


def _export(program, path, **options):
    return CoreMLTarget(**options).export(program, str(path))


def _mil_ops(path):
    from xcomp.backends.coreml.evaluate import load_package
    program, _ = load_package(path)
    return [op.op_type for op in program.functions["main"].operations]


def test_gpt_block_package_has_a_flexible_sequence_and_runs_at_several_lengths(gpt, tmp_path):
    model, program = gpt
    path = _export(program, tmp_path / "gpt", compute_precision="float32", shape_bounds={"S": (1, 64)})
    kind, ranges = flexible_shapes(ct.utils.load_spec(path))["x"]
    assert kind == "range" and ranges == [(1, 4096), (1, 64), (32, 32)], ranges
    ops = _mil_ops(path)
    assert "range_1d" in ops and "shape" in ops      # the causal mask built at run time from the length
    for batch, seq in ((2, 8), (1, 3), (3, 17), (2, 64)):
        x = torch.randn(batch, seq, 32)
        outs, ev = evaluate_package(path, [x.numpy()])
        assert_close(outs[0], _eager(model, x), msg=f"B={batch} S={seq}")
    assert ev.oracles["xcomp"] == {"shape": 1}    # every other op through coremltools' value_inference
    with pytest.raises(PackageCheckError, match="outside the package's shapes"):
        evaluate_package(path, [np.zeros((2, 65, 32), np.float32)])


def test_gpt_block_package_in_float16(gpt, tmp_path):
    model, program = gpt
    path = _export(program, tmp_path / "gpt16", compute_precision="float16")
    for seq in (5, 12):
        x = torch.randn(2, seq, 32)
        outs, _ = evaluate_package(path, [x.numpy()])
        assert_close(outs[0], _eager(model, x), dtype="float16", msg=f"S={seq}")


def test_enumerated_shapes(gpt, tmp_path):
    model, program = gpt
    path = _export(program, tmp_path / "gpt_enum", compute_precision="float32",
                   enumerated={"B": [1, 2], "S": [4, 16]})
    kind, shapes = flexible_shapes(ct.utils.load_spec(path))["x"]
    assert kind == "enumerated" and sorted(shapes) == [(1, 4, 32), (1, 16, 32), (2, 4, 32), (2, 16, 32)]
    for batch, seq in ((1, 4), (2, 16)):
        x = torch.randn(batch, seq, 32)
        assert_close(evaluate_package(path, [x.numpy()])[0][0], _eager(model, x))
    with pytest.raises(PackageCheckError, match="enumerated"):
        evaluate_package(path, [np.zeros((2, 8, 32), np.float32)])


def test_bad_flexibility_options(gpt, tmp_path):
    _, program = gpt
    with pytest.raises(TargetError, match="not sizes"):
        _export(program, tmp_path / "a", shape_bounds={"T": (1, 8)})
    with pytest.raises(TargetError, match="lowest"):
        _export(program, tmp_path / "b", shape_bounds={"S": (0, 8)})
    with pytest.raises(TargetError, match="every symbolic dim"):
        _export(program, tmp_path / "c", enumerated={"S": [4, 8]})
    with pytest.raises(TargetError, match="without symbolic sizes"):
        static, _ = optimize(xcomp.capture(*zoo.gpt_block(batch=1, seq=4, dim=32, heads=2)), "coreml")
        _export(static, tmp_path / "d", shape_bounds={"S": (1, 8)})


class Pairs(torch.nn.Module):
    """Joins neighbouring tokens: the reshape needs an even length (a guard no RangeDim expresses)."""

    def forward(self, x):
        b, s, d = x.shape
        return (x.reshape(b, -1, 2 * d) * 2).sum(-1)


def test_guards_a_range_cannot_express_are_checked_before_running(tmp_path):
    m = Pairs()
    captured = xcomp.capture(m, [torch.randn(2, 8, 4)], dynamic=True)
    batch, seq, width = captured.main.args[0].type.shape   # names torch.export chose (all symbolic)
    assert any("%2" in str(g) for g in captured.guards), captured.guards
    program, _ = optimize(captured, "coreml")
    path = _export(program, tmp_path / "pairs", compute_precision="float32", shape_bounds={seq: (2, 64)})
    kind, ranges = flexible_shapes(ct.utils.load_spec(path))["x"]
    assert kind == "range" and ranges[:2] == [(1, 4096), (2, 64)], ranges
    for s in (2, 10, 64):
        x = torch.randn(2, s, 4)
        assert_close(evaluate_package(path, [x.numpy()])[0][0], m(x))
    with pytest.raises(GuardError, match="%2"):
        evaluate_package(path, [np.zeros((2, 7, 4), np.float32)])
    with pytest.raises(TargetError, match="guard"):
        _export(program, tmp_path / "odd", enumerated={batch: [2], seq: [4, 5], width: [4]})


class SymbolicSizes(torch.nn.Module):
    """Sizes used as values, symbolic slice ends and arange bounds: `xc.size`, slices, `range_1d`."""

    def forward(self, x):
        b, s, d = x.shape
        half = x[:, : s // 2 + 1]
        pos = torch.arange(1, s // 2 + 2).reshape(1, -1, 1)     # int64: a float arange over a SymInt fails in the frontend
        return half * s + pos


def test_sizes_used_as_values_slices_and_arange(tmp_path):
    m = SymbolicSizes()
    path = xcomp.export(m, [torch.randn(2, 8, 3)], target="coreml", path=str(tmp_path / "sizes"),
                        dynamic=True, compute_precision="float32")
    kind, ranges = flexible_shapes(ct.utils.load_spec(path))["x"]
    assert kind == "range" and ranges[1] == (2, 4096), ranges      # torch's guard `>= 2` is the lower bound
    for b, s in ((2, 8), (1, 5), (3, 2), (2, 30)):
        x = torch.randn(b, s, 3)
        assert_close(evaluate_package(path, [x.numpy()])[0][0], m(x), msg=f"B={b} S={s}")


BANDS = """
module {
  func.func @main(%x: tensor<?x?xf32, ["S", "T"]>) -> (tensor<?x?xf32, ["S", "T"]>, tensor<?x?xf32, ["S", "T"]>, tensor<?x?xf32, ["S", "T"]>, tensor<?x?xf32, ["S", "T"]>) {
    %0 = "xc.tril"(%x) {diagonal = 0} : (tensor<?x?xf32, ["S", "T"]>) -> tensor<?x?xf32, ["S", "T"]>
    %1 = "xc.triu"(%x) {diagonal = 1} : (tensor<?x?xf32, ["S", "T"]>) -> tensor<?x?xf32, ["S", "T"]>
    %2 = "xc.tril"(%x) {diagonal = -1} : (tensor<?x?xf32, ["S", "T"]>) -> tensor<?x?xf32, ["S", "T"]>
    %3 = "xc.triu"(%x) {diagonal = -2} : (tensor<?x?xf32, ["S", "T"]>) -> tensor<?x?xf32, ["S", "T"]>
    func.return %0, %1, %2, %3 : tensor<?x?xf32, ["S", "T"]>, tensor<?x?xf32, ["S", "T"]>, tensor<?x?xf32, ["S", "T"]>, tensor<?x?xf32, ["S", "T"]>
  }
}
"""


def test_tril_triu_over_symbolic_sizes(tmp_path):
    """IR tril/triu (torch.export decomposes them into arange masks) over symbolic sizes: band_part."""
    path = xcomp.export(xcomp.parse(BANDS), [], target="coreml", path=str(tmp_path / "bands"),
                        compute_precision="float32")
    assert "band_part" in _mil_ops(path)
    for s, t in ((4, 4), (3, 7), (6, 2)):
        x = np.random.default_rng(s).standard_normal((s, t)).astype(np.float32)
        outs, _ = evaluate_package(path, [x])
        for got, want in zip(outs, (np.tril(x), np.triu(x, 1), np.tril(x, -1), np.triu(x, -2))):
            assert_close(got, want, msg=f"S={s} T={t}")


def test_encoder_layer_package_at_two_lengths(tmp_path):
    model, inputs = zoo.encoder_layer(batch=2, seq=8, dim=32, heads=2)
    program, _ = optimize(xcomp.capture(model, inputs, dynamic={"src": {0: "B", 1: "S"}}), "coreml")
    path = _export(program, tmp_path / "enc", compute_precision="float32")
    assert flexible_shapes(ct.utils.load_spec(path))["src"][0] == "range"
    assert not {"fill", "reduce_max", "select"} & set(_mil_ops(path))   # no mask: torch's guard folded
    for b, s in ((1, 3), (2, 13)):
        x = torch.randn(b, s, 32)
        assert_close(evaluate_package(path, [x.numpy()])[0][0], _eager(model, x), msg=f"B={b} S={s}")
    path16 = _export(program, tmp_path / "enc16", compute_precision="float16")
    x = torch.randn(2, 5, 32)
    assert_close(evaluate_package(path16, [x.numpy()])[0][0], _eager(model, x), dtype="float16")


@pytest.mark.slow
def test_full_size_gpt_block_package_at_eight_lengths_up_to_512(tmp_path):
    """The zoo's GPT block at its own dims (batch 2, dim 128, 4 heads): one package, 8 lengths 1..512
    (the default tier runs the same model at small dims)."""
    model, inputs = zoo.gpt_block()
    path = xcomp.export(model, inputs, target="coreml", path=str(tmp_path / "gpt_full"), dynamic=GPT_DIMS,
                        compute_precision="float32", shape_bounds={"S": (1, 512)})
    assert flexible_shapes(ct.utils.load_spec(path))["x"] == ("range", [(1, 4096), (1, 512), (128, 128)])
    for seq in (1, 2, 7, 32, 100, 128, 300, 512):
        x = torch.randn(2, seq, 128)
        assert_close(evaluate_package(path, [x.numpy()])[0][0], _eager(model, x), msg=f"S={seq}")
