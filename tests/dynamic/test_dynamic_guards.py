"""A program whose guards fail raises `xcomp.GuardError` (sizes asked for) or recompiles for the
call's shapes (automatic mode); never a wrong answer."""
import pytest
import torch

import xcomp
from xcomp import GuardError, XcompError

from helpers import assert_close


class Pairs(torch.nn.Module):
    """Joins neighbouring tokens: needs an even sequence length."""

    def forward(self, x):
        b, s, d = x.shape
        return (x.reshape(b, -1, 2 * d) * 2).sum(-1)


class Add(torch.nn.Module):
    def forward(self, x, y):
        return x + y


def test_odd_length_breaks_the_reshape_guard():
    m = Pairs()
    compiled = xcomp.compile(m, target="reference", dynamic=True)
    for s in (8, 2, 30):
        x = torch.randn(2, s, 4)
        assert_close(compiled(x), m(x))
    program = compiled.program()
    assert any("%2" in str(g) and g.op == "==" for g in program.guards), program.guards
    assert "%2" in str(compiled.explain())
    with pytest.raises(GuardError, match="%2"):
        compiled(torch.randn(2, 7, 4))
    assert compiled.stats.guard_failures == 1 and compiled.stats.captures == 1
    x = torch.randn(3, 12, 4)                      # still usable after the failure
    assert_close(compiled(x), m(x))


def test_automatic_mode_never_returns_a_wrong_answer_on_a_failed_guard():
    m = Pairs()
    compiled = xcomp.compile(m, target="reference")
    for s in (8, 6, 10):
        x = torch.randn(2, s, 4)
        assert_close(compiled(x), m(x))
    assert compiled.stats.captures == 2
    with pytest.raises(XcompError):                # recompiling for 7 fails as eager torch does
        compiled(torch.randn(2, 7, 4))
    assert compiled.stats.guard_failures == 1


def test_dims_torch_unified_must_stay_equal():
    compiled = xcomp.compile(Add(), target="reference", dynamic=True)
    x, y = torch.randn(3, 4), torch.randn(3, 4)
    assert_close(compiled(x, y), x + y)
    x, y = torch.randn(5, 4), torch.randn(5, 4)
    assert_close(compiled(x, y), x + y)
    with pytest.raises(GuardError, match="equal"):
        compiled(torch.randn(5, 4), torch.randn(6, 4))


def test_bad_dynamic_specs_are_xcomp_errors():
    with pytest.raises(XcompError, match="not a parameter"):
        xcomp.compile(Add(), target="reference", dynamic={"z": {0: "n"}})(torch.randn(2), torch.randn(2))
    with pytest.raises(XcompError, match="identifier"):
        xcomp.compile(Add(), target="reference", dynamic={"x": {0: "n-1"}})(torch.randn(2), torch.randn(2))
    with pytest.raises(XcompError, match="out of range"):
        xcomp.compile(Add(), target="reference", dynamic={"x": {3: "n"}})(torch.randn(2), torch.randn(2))
