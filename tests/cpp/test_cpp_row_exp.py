"""The exp of softmax-shaped row groups on cpp: `exp(x - max(x))` (softmax, log_softmax, the same
written out) is spelled with the runtime's exp for non-positive arguments (graph.mark_nonpositive);
other exps keep the full-range one. Checked on the source and against torch eager, with the edge
values a row can hold (-inf masks, a NaN, a row of -inf, +inf, huge values, exps below the normal
range, which the nonpositive exp flushes to 0)."""
from __future__ import annotations

import pytest
import torch

from cpp_source import needs_cpp
import xcomp
from helpers import assert_close
from xcomp.backends.cpp.emit import emit_program

pytestmark = needs_cpp


def _source(fn, inputs) -> str:
    p = xcomp.optimize(xcomp.capture(fn, inputs), "cpp")
    return emit_program(p[0] if isinstance(p, tuple) else p).source


def _edge_rows() -> torch.Tensor:
    torch.manual_seed(3)
    x = torch.randn(8, 67) * 30
    x[1, ::3] = -torch.inf          # a causal-style mask
    x[2, 5] = torch.nan
    x[3] = -torch.inf               # every entry masked: NaN, as torch
    x[4, 7] = torch.inf
    x[5] = torch.linspace(-200, 0, 67)   # exps that underflow to denormals and zero
    x[6] = 1e30
    x[7, :10] = -1e30
    return x


def _written_softmax(x):
    e = torch.exp(x - x.amax(-1, keepdim=True))
    return e / e.sum(-1, keepdim=True)


def _check_nonpositive(fn):
    x = _edge_rows()
    assert "xc_vexp_nonpos(" in _source(fn, [x])
    got, want = xcomp.compile(fn, target="cpp")(x), fn(x)
    for g, w in zip(got, want) if isinstance(want, tuple) else [(got, want)]:
        assert torch.equal(torch.isnan(g), torch.isnan(w))
        ok = ~torch.isnan(w)
        assert_close(g[ok], w[ok])


def test_softmax_uses_the_nonpositive_exp_and_takes_the_next_rows_max_in_its_exp_pass():
    """Also fused._ahead: row r's exp pass takes the max of row r + 1 (rows of NaN, -inf, +inf next
    to ordinary ones; tasks of several rows), and that max does not track NaN (a NaN in the row
    reaches every output through the sum: graph.mark_nan_reaching_outputs)."""
    fn = lambda x: torch.softmax(x * 0.5, -1)  # noqa: E731
    src = _source(fn, [_edge_rows()])
    assert "const int64_t nrow = row + 1 < r1 ? row + 1 : row;" in src and "_ahead = " in src
    assert "_nan |=" not in src
    _check_nonpositive(fn)


@pytest.mark.slow
def test_log_softmax_and_written_out_softmax_use_the_nonpositive_exp():
    _check_nonpositive(lambda x: (torch.log_softmax(x, -1), _written_softmax(x)))


def test_other_exps_keep_the_full_range_exp():
    def fn(x):
        return torch.logsumexp(x, -1) + torch.exp(x).sum(-1)   # logsumexp may see exp(+inf)
    x = torch.randn(4, 33) * 4
    src = _source(fn, [x])
    assert "xc_vexp(" in src and "xc_vexp_nonpos(" not in src
    assert_close(xcomp.compile(fn, target="cpp")(x), fn(x))
