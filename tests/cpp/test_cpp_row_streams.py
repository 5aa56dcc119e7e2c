"""Cheap row reductions on cpp (a norm's sums, softmax's max) run as several accumulators over as
many parts of the row (fused.ROW_STREAMS), with a tail for lengths they do not divide; reductions of
transcendental values keep one. Checked on the source and against torch eager."""
from __future__ import annotations

import torch

from cpp_source import needs_cpp
import xcomp
from helpers import assert_close
from xcomp.backends.cpp.emit import emit_program
from xcomp.backends.cpp.fused import ROW_STREAMS

pytestmark = needs_cpp


def test_norm_and_max_reductions_run_as_streams_with_a_tail():
    torch.manual_seed(5)
    ln = torch.nn.LayerNorm(67)

    def fn(x):
        return ln(x), torch.softmax(x, -1), x.amax(-1), x.amin(-1)
    x = torch.randn(5, 67) * 3 + 1       # 67 = 4 * 16 + 3: every stream plus a tail of 3
    x[1, 66] = 50.0                       # the extremes sit in the tail and in the last stream
    x[2, 40] = -50.0
    x[3, 9] = torch.nan                   # a NaN in one stream reaches the max and min
    p = xcomp.optimize(xcomp.capture(fn, [x]), "cpp")
    src = emit_program(p[0] if isinstance(p, tuple) else p).source
    assert f"_q = (67) / {ROW_STREAMS};" in src and f"for (int64_t col = {ROW_STREAMS} * acc" in src
    with torch.no_grad():
        want = fn(x)
    got = xcomp.compile(fn, target="cpp")(x)
    for g, w in zip(got, want):
        assert torch.equal(torch.isnan(g), torch.isnan(w))
        ok = ~torch.isnan(w)
        assert_close(g[ok], w[ok])
