"""torch.export with symbolic sizes: SymInt nodes as size expressions, sizes used as values
(`xc.size`), names of dims, example sizes of 1, and clean errors where xcomp has no symbolic form."""
import pytest
import torch

import xcomp
from xcomp import UnsupportedOpError

from helpers import assert_close


class SizesAsValues(torch.nn.Module):
    def forward(self, x):
        return x * x.shape[1] + torch.full((x.shape[1],), x.shape[0] * 2)


@pytest.mark.parametrize("target", ["reference", "mlx", "mlx-source"])
def test_sizes_used_as_values(target):
    if target.startswith("mlx"):
        pytest.importorskip("mlx.core")
    m = SizesAsValues()
    compiled = xcomp.compile(m, target=target, dynamic=True)
    for shape in ((2, 3), (4, 5), (1, 1), (7, 2)):
        x = torch.randn(*shape)
        assert_close(compiled(x), m(x))
    assert compiled.stats.captures == 1
    text = str(compiled.program(optimized=False))
    assert '"xc.size"() {value = "x_1"}' in text and '{value = "2*x_0"}' in text
    if target == "mlx-source":  # no symbolic sizes there: one static build per size binding
        assert compiled.stats.specializations == 4


def test_named_dims_and_first_call_at_size_one():
    model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.ReLU())
    compiled = xcomp.compile(model, target="reference", dynamic={"input": {0: "rows"}})
    for n in (1, 3, 9):
        x = torch.randn(n, 8)
        with torch.no_grad():
            assert_close(compiled(x), model(x))
    assert compiled.program().main.args[0].type.shape == ("rows", 8)
    assert compiled.stats.captures == 1 and "rows >= 1" in [str(g) for g in compiled.program().guards]


def test_capture_with_dynamic_gives_a_symbolic_program():
    p = xcomp.capture(lambda x: x.sum(0), [torch.randn(3, 4)], dynamic=True)
    assert isinstance(p.main.args[0].type.shape[0], str)
    assert xcomp.parse(str(p), p.weights).guards == p.guards


def test_symbolic_floats_are_reported_as_unsupported():
    class M(torch.nn.Module):
        def forward(self, x):
            return x / (x.shape[0] * 0.5)
    with pytest.raises(UnsupportedOpError, match="symbolic float"):
        xcomp.compile(M(), target="reference", dynamic=True)(torch.randn(4, 2))


def test_mlx_functions_capture_symbolic_sizes():
    mx = pytest.importorskip("mlx.core")
    compiled = xcomp.compile(lambda x: x * 2, target="reference", dynamic=True)
    for n in (2, 3):
        assert_close(compiled(mx.array([1.0] * n)), [2.0] * n)
    assert compiled.stats.captures == 1                     # one program (tests/dynamic/test_dynamic_mlx_frontend.py)
    assert not any("captures static shapes" in n for n in compiled.explain().notes)
