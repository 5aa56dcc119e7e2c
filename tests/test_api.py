"""The Python API: compile caching per signature, array kinds in and out, nested outputs, signature
constants, unknown targets, unsupported-op reports and explain()."""
from __future__ import annotations

import inspect

import numpy as np
import pytest

import xcomp
from xcomp.ir.builder import Builder
from xcomp.ir.core import Block, Func, Program
from xcomp.ir.types import DType, TensorType

from helpers import assert_close

torch = pytest.importorskip("torch")


def f_gelu_add(x, y):
    return torch.nn.functional.gelu(x) + y * 2


class Nested(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(4, 3)

    def forward(self, x):
        h = self.lin(x)
        return {"h": h, "pair": (torch.relu(h), h.sum(dim=-1)), "list": [x * 3]}


def _xy(shape=(2, 4), seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g), torch.randn(*shape, generator=g)


# -- caching ---------------------------------------------------------------------------------------
def test_compiles_once_per_signature():
    fast = xcomp.compile(f_gelu_add, target="reference")
    x, y = _xy()
    fast(x, y)
    fast(x + 1, y)
    assert len(fast.cache) == 1
    x3, y3 = _xy((3, 4))
    assert_close(fast(x3, y3), f_gelu_add(x3, y3))
    assert len(fast.cache) == 2
    fast(x.double(), y.double())
    assert len(fast.cache) == 3, "a new dtype is a new signature"
    fast(x, y)
    assert len(fast.cache) == 3
    assert fast.program().main.args[0].type == TensorType((2, 4), DType.F32)


def test_example_inputs_compile_eagerly():
    x, y = _xy()
    fast = xcomp.compile(f_gelu_add, target="reference", example_inputs=[x, y])
    assert len(fast.cache) == 1
    assert "xc.gelu" in str(fast.program())


def test_not_compiled_yet():
    with pytest.raises(xcomp.XcompError):
        xcomp.compile(f_gelu_add, target="reference").program()


# -- array kinds -----------------------------------------------------------------------------------
@pytest.mark.parametrize("target", ["reference", "mlx"])
def test_torch_in_torch_out(target):
    x, y = _xy()
    out = xcomp.compile(f_gelu_add, target=target)(x, y)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32
    assert_close(out, f_gelu_add(x, y))


@pytest.mark.parametrize("target", ["reference", "mlx"])
def test_numpy_in_numpy_out(target):
    x, y = _xy()
    out = xcomp.compile(f_gelu_add, target=target)(x.numpy(), y.numpy())
    assert isinstance(out, np.ndarray) and out.dtype == np.float32
    assert_close(out, f_gelu_add(x, y))


def _program_tanh_mul() -> Program:
    block = Block()
    a, b = block.add_arg(TensorType((3,), DType.F32)), block.add_arg(TensorType((3,), DType.F32))
    bl = Builder(block)
    bl.create("return", [bl.op("tanh", bl.op("mul", a, b))])
    return Program({"main": Func("main", block)})


@pytest.mark.parametrize("target", ["reference", "mlx"])
def test_mlx_in_mlx_out(target):
    mx = pytest.importorskip("mlx.core")
    fast = xcomp.compile(_program_tanh_mul(), target=target)
    a, b = mx.array([0.5, -1.0, 2.0]), mx.array([1.0, 3.0, -0.25])
    out = fast(a, b)
    assert isinstance(out, mx.array) and out.dtype == mx.float32
    assert_close(out, np.tanh(np.array(a) * np.array(b)))


def test_program_inputs_keep_torch_dtype():
    x = torch.arange(6, dtype=torch.int64).reshape(2, 3)
    out = xcomp.compile(lambda t: t * 2 + 1, target="reference")(x)
    assert out.dtype == torch.int64
    assert torch.equal(out, x * 2 + 1)


# -- output structure ------------------------------------------------------------------------------
@pytest.mark.parametrize("target", ["reference", "mlx"])
def test_nested_outputs_keep_their_structure(target):
    torch.manual_seed(0)
    model = Nested().eval()
    x = torch.randn(2, 4)
    out, want = xcomp.compile(model, target=target)(x), model(x)
    assert isinstance(out, dict) and sorted(out) == sorted(want)
    assert isinstance(out["pair"], tuple) and len(out["pair"]) == 2 and isinstance(out["list"], list)
    assert_close(out["h"], want["h"].detach())
    assert_close(out["pair"][0], want["pair"][0].detach())
    assert_close(out["pair"][1], want["pair"][1].detach())
    assert_close(out["list"][0], want["list"][0])


def test_single_and_tuple_outputs():
    x, y = _xy()
    single = xcomp.compile(lambda a: a + 1, target="reference")(x)
    assert isinstance(single, torch.Tensor)
    pair = xcomp.compile(lambda a, b: (a + b, a - b), target="reference")(x, y)
    assert isinstance(pair, tuple) and len(pair) == 2
    assert_close(pair[1], x - y)


# -- non-tensor arguments --------------------------------------------------------------------------
def scaled_softmax(x, dim, scale):
    return torch.softmax(x * scale, dim=dim)


def test_non_tensor_arguments_are_signature_constants():
    fast = xcomp.compile(scaled_softmax, target="reference")
    x, _ = _xy((3, 5))
    for dim, scale in [(0, 1.0), (1, 1.0), (1, 0.5), (1, 0.5)]:
        assert_close(fast(x, dim, scale), scaled_softmax(x, dim, scale))
    assert len(fast.cache) == 3
    keys = list(fast.cache)
    assert ("const", "int", "0") in keys[0] and ("const", "float", "0.5") in keys[2]


# -- errors ----------------------------------------------------------------------------------------
def test_unknown_target():
    with pytest.raises(xcomp.TargetError, match="unknown target 'tpu'.*reference"):
        xcomp.compile(f_gelu_add, target="tpu")
    with pytest.raises(xcomp.TargetError):
        xcomp.optimize(_program_tanh_mul(), target="nope")


def uses_unsupported(x):
    a = torch.special.zeta(x, x)                      # line A
    b = torch.special.bessel_j0(x)                    # line B
    c = torch.special.zeta(a + b, x)                  # line C
    return torch.special.airy_ai(c) + torch.special.bessel_j0(b)  # line D


def _line_of(marker: str) -> int:
    lines, start = inspect.getsourcelines(uses_unsupported)
    return start + next(i for i, l in enumerate(lines) if marker in l)


def test_unsupported_ops_are_listed_at_once_with_source_lines():
    x = torch.rand(4) + 1.5
    with pytest.raises(xcomp.UnsupportedOpError) as info:
        xcomp.compile(uses_unsupported, target="reference")(x)
    err = info.value
    names = {o.name for o in err.ops}
    assert {"aten.special_zeta.default", "aten.special_bessel_j0.default",
            "aten.special_airy_ai.default"} <= names
    locations = {(o.name, o.location) for o in err.ops}
    here = __file__
    for name, marker in [("aten.special_zeta.default", "line A"), ("aten.special_bessel_j0.default", "line B"),
                         ("aten.special_zeta.default", "line C"), ("aten.special_airy_ai.default", "line D"),
                         ("aten.special_bessel_j0.default", "line D")]:
        assert (name, f"{here}:{_line_of(marker)}") in locations, (name, marker, locations)
    msg = str(err)
    assert msg.startswith("3 unsupported op(s)")
    assert f"test_api.py:{_line_of('line C')}" in msg


def test_unsupported_op_error_from_a_module():
    class M(torch.nn.Module):
        def forward(self, x):
            return torch.special.zeta(x, x) * 2
    with pytest.raises(xcomp.UnsupportedOpError) as info:
        xcomp.capture(M(), [torch.rand(3) + 1.5])
    assert [o.name for o in info.value.ops] == ["aten.special_zeta.default"]
    assert info.value.ops[0].location.startswith(__file__ + ":")


# -- explain ---------------------------------------------------------------------------------------
def test_explain():
    fast = xcomp.compile(Nested().eval(), target="reference")
    fast(torch.randn(2, 4))
    report = fast.explain()
    assert isinstance(report, xcomp.ExplainReport)
    text = str(report)
    assert text.startswith("captured with torch.export")
    assert "target 'reference'" in text
    assert "op histogram:" in text and "xc.matmul" in text
    from xcomp.backends import TARGETS
    per_target = {l.split()[0]: l for l in text.splitlines() if l.startswith("  ") and l.split()}
    assert set(TARGETS) <= set(per_target), "explain() reports on every target"
    assert "covers every op" in per_target["mlx"]
    assert "1 signature(s) cached" in text
    assert report.target == "reference" and report.source == "torch.export"
    assert report.ops_before == fast.program(optimized=False).op_count()
    assert report.ops_after == fast.program().op_count()
    assert report.histogram.get("xc.matmul", 0) >= 1 and report.fallbacks == [] and report.guards == []
    assert [r.name for r in report.passes] == report.pipeline
    assert all(r.seconds >= 0 for r in report.passes)
    assert set(report.other_targets) == set(TARGETS) - {"reference"}
    assert report.other_targets["mlx"].fallbacks == []


def test_check_compares_with_the_reference():
    x, y = _xy()
    fast = xcomp.compile(f_gelu_add, target="mlx", check=True)
    assert_close(fast(x, y), f_gelu_add(x, y))
    assert fast._current().checked
