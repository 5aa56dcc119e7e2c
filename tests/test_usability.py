"""Defects found by using the API as a new user would: capture errors that say why, factories with
no tensor inputs, unsupported dtypes, bilinear resizing and as_strided views."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import torch.signal.windows as windows

import xcomp

from helpers import assert_close

TARGETS = ["reference", "mlx"]


def test_torch_export_failure_is_a_capture_error_suggesting_torch_compile():
    with pytest.raises(xcomp.CaptureError) as info:
        xcomp.compile(lambda x: torch.cov(x), target="reference")(torch.randn(3, 5))
    message = str(info.value)
    assert "\n" not in message
    assert "aten.equal" in message and "depends on tensor data" in message
    assert 'torch.compile(<lambda>, backend="xcomp")' in message
    assert isinstance(info.value, xcomp.XcompError)


FACTORIES = {
    "arange": lambda: torch.arange(10),
    "linspace": lambda: torch.linspace(0, 1, 5),
    "logspace": lambda: torch.logspace(0, 2, 4),
    "ones": lambda: torch.ones(2, 3),
    "zeros": lambda: torch.zeros(3, dtype=torch.int32),
    "full": lambda: torch.full((2,), 3.5),
    "eye": lambda: torch.eye(3),
    "scalar_tensor": lambda: torch.scalar_tensor(2.0),
    "hann": lambda: windows.hann(8),
    "kaiser": lambda: windows.kaiser(5),
    "tuple": lambda: (torch.arange(3), torch.ones(2)),
}


@pytest.mark.parametrize("name,target", [(n, "reference") for n in sorted(FACTORIES)]
                         + [(n, "mlx") for n in ("arange", "hann", "tuple")])
def test_function_without_tensor_inputs_returns_torch_tensors(name, target):
    fn = FACTORIES[name]
    actual, expected = xcomp.compile(fn, target=target)(), fn()
    for a, e in zip(actual if isinstance(actual, tuple) else [actual],
                    expected if isinstance(expected, tuple) else [expected]):
        assert isinstance(a, torch.Tensor) and a.dtype == e.dtype
        assert_close(a, e)


def test_complex_input_is_an_unsupported_op_error_naming_the_input_and_line():
    def double(x):
        return x * 2  # the line the error points at
    with pytest.raises(xcomp.UnsupportedOpError) as info:
        xcomp.compile(double, target="reference")(torch.randn(3, dtype=torch.complex64))
    message = str(info.value)
    assert "dtype torch.complex64" in message and "input 'args_0'" in message
    assert f"test_usability.py:{double.__code__.co_firstlineno + 1}" in message


RESIZES = [dict(scale_factor=2), dict(size=(9, 4)), dict(scale_factor=(1.5, 0.5)), dict(scale_factor=2.3),
           dict(size=(1, 1))]


@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("resize,target", [(r, "reference") for r in RESIZES] + [(RESIZES[1], "mlx")], ids=str)
def test_bilinear_interpolate(resize, align_corners, target):
    torch.manual_seed(0)
    x = torch.randn(2, 3, 5, 7)

    def fn(x):
        return F.interpolate(x, mode="bilinear", align_corners=align_corners, **resize)
    program = xcomp.capture(fn, (x,))
    assert not any("upsample" in op.name for op in program.walk())
    assert_close(xcomp.compile(fn, target=target)(x), fn(x))


@pytest.mark.parametrize("mode,shape", [("linear", (2, 3, 6)), ("trilinear", (1, 2, 3, 4, 5))])
def test_linear_and_trilinear_interpolate(mode, shape):
    torch.manual_seed(0)
    x = torch.randn(*shape)

    def fn(x):
        return F.interpolate(x, scale_factor=2, mode=mode, align_corners=False)
    assert_close(xcomp.compile(fn, target="reference")(x), fn(x))


def test_bilinear_interpolate_half_precision_blends_in_float():
    x = torch.randn(1, 2, 4, 4, dtype=torch.float16)

    def fn(x):
        return F.interpolate(x, size=(7, 5), mode="bilinear", align_corners=False)
    actual = xcomp.compile(fn, target="reference")(x)
    assert actual.dtype == torch.float16
    assert_close(actual, fn(x))


AS_STRIDED = {  # name: (function, input shape, IR op the result must be built with)
    "same_view_of_permuted": (lambda x: (lambda y: torch.as_strided(y, y.shape, y.stride()))(x.permute(0, 3, 1, 2)),
                              (2, 4, 4, 3), "xc.transpose"),
    "regrouped_permuted": (lambda x: (lambda y: torch.as_strided(y, (3, 2, 16), (1, 48, 3)))(x.permute(0, 3, 1, 2)),
                           (2, 4, 4, 3), "xc.transpose"),
    "contiguous_reshape": (lambda x: torch.as_strided(x + 1, (6, 4), (4, 1)), (4, 6), "xc.reshape"),
    "transposed": (lambda x: torch.as_strided(x + 1, (6, 4), (1, 6)), (4, 6), "xc.transpose"),
    "strided_window": (lambda x: torch.as_strided(x + 1, (3, 3), (6, 2), 1), (4, 6), "xc.take"),
    "overlapping_unfold": (lambda x: torch.as_strided(x + 1, (4, 3), (1, 1)), (10,), "xc.take"),
}


@pytest.mark.parametrize("name,target", [(n, "reference") for n in sorted(AS_STRIDED)]
                         + [("regrouped_permuted", "mlx"), ("strided_window", "mlx")])
def test_as_strided(name, target):
    fn, shape, op = AS_STRIDED[name]
    x = torch.randn(*shape)
    program = xcomp.capture(fn, (x,))
    names = {o.name for o in program.walk()}
    assert op in names and not any("strided" in n for n in names)
    if op != "xc.take":
        assert "xc.take" not in names  # a view stays a view, no gather
    assert_close(xcomp.compile(fn, target=target)(x), fn(x))


def test_as_strided_outside_its_input_is_unsupported():
    def fn(x):
        return torch.as_strided(x[:4] + 1, (3,), (3,))  # reads element 6 of a 4-element tensor
    with pytest.raises(xcomp.UnsupportedOpError, match="outside its input"):
        xcomp.compile(fn, target="reference")(torch.randn(8))


def test_complex_intermediate_and_weight_are_reported_with_the_other_unsupported_ops():
    def fn(x):
        y = x.to(torch.complex64)  # the line of the complex value
        return torch.view_as_real(y * 2)
    with pytest.raises(xcomp.UnsupportedOpError) as info:
        xcomp.compile(fn, target="reference")(torch.randn(3))
    ops = {o.name: o for o in info.value.ops}
    assert set(ops) >= {"dtype torch.complex64", "aten.view_as_real.default"}
    assert ops["dtype torch.complex64"].location.endswith(f":{fn.__code__.co_firstlineno + 1}")

    class ComplexWeight(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.randn(3, dtype=torch.complex64))

        def forward(self, x):
            return torch.view_as_real(self.w * x)
    with pytest.raises(xcomp.UnsupportedOpError, match="weight 'w' has dtype torch.complex64"):
        xcomp.compile(ComplexWeight(), target="reference")(torch.randn(3))


@pytest.mark.parametrize("shape,resize", [((1, 2, 4, 6), dict(scale_factor=2)), ((1, 2, 5, 7), dict(size=(9, 3))),
                                          ((1, 2, 5, 7), dict(scale_factor=(1.7, 0.6))), ((2, 3, 7), dict(scale_factor=3)),
                                          ((1, 1, 3, 4, 5), dict(size=(6, 2, 11))), ((1, 2, 6, 6), dict(scale_factor=1 / 3))],
                         ids=str)
def test_nearest_interpolate(shape, resize):
    torch.manual_seed(0)
    x = torch.randn(*shape)

    def fn(x):
        return F.interpolate(x, mode="nearest", **resize)
    assert_close(xcomp.compile(fn, target="reference")(x), fn(x))


def test_nearest_interpolate_of_integers_on_mlx():
    x = torch.arange(24, dtype=torch.int32).reshape(1, 1, 4, 6)

    def fn(x):
        return F.interpolate(x.float(), scale_factor=2, mode="nearest").to(torch.int32) + x.sum()
    assert_close(xcomp.compile(fn, target="mlx")(x), fn(x))


class NHWCHead(torch.nn.Module):
    """The head of NHWC models (ConvNeXt, Swin in timm): pooling a permuted tensor, which torch.export
    turns into aten.as_strided."""

    def __init__(self):
        super().__init__()
        self.norm, self.head = torch.nn.LayerNorm(8), torch.nn.Linear(8, 4)

    def forward(self, x):
        x = self.norm(x).permute(0, 3, 1, 2)
        return self.head(F.adaptive_avg_pool2d(x, 1).flatten(1))


@pytest.mark.parametrize("target", TARGETS)
def test_pooling_a_permuted_tensor_as_timm_heads_do(target):
    torch.manual_seed(0)
    model, x = NHWCHead().eval(), torch.randn(2, 5, 5, 8)
    ep = torch.export.export(model, (x,)).run_decompositions()
    assert any("as_strided" in str(n.target) for n in ep.graph.nodes)  # the op this test is about
    assert "xc.take" not in {op.name for op in xcomp.capture(model, (x,)).walk()}  # a view, not a gather
    with torch.no_grad():
        assert_close(xcomp.compile(model, target=target)(x), model(x))
