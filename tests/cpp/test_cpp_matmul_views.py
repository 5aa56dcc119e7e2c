"""The cpp target's matmuls read strided views in place (backends/cpp/views.py): attention's heads
sliced, reshaped and transposed out of the packed projection feed the GEMMs as leading dimensions,
transpose flags and per-batch offsets, the merged heads are written straight into the transpose's
layout, and a scalar scale on the product becomes the GEMM's alpha. Numerics against eager."""
from __future__ import annotations

import math
import re

import pytest
import torch

import xcomp
from cpp_source import needs_cpp, run_body as _body
from helpers import assert_close

pytestmark = needs_cpp


def _check(fn, inputs):
    with torch.no_grad():
        want = fn(*inputs)
        got = xcomp.compile(fn, target="cpp")(*inputs)
    for g, w in zip(got, want) if isinstance(want, tuple) else [(got, want)]:
        assert_close(g, w, scale=4)


def _heads(b, t, c, h, causal):
    torch.manual_seed(0)
    w = torch.randn(c, 3 * c) / math.sqrt(c)

    def fn(x):
        q, k, v = (x @ w).split(c, dim=-1)
        q, k, v = (z.view(b, t, h, c // h).transpose(1, 2) for z in (q, k, v))
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(c // h))
        if causal:
            att = att.masked_fill(~torch.tril(torch.ones(t, t, dtype=torch.bool)), float("-inf"))
        return (torch.softmax(att, dim=-1) @ v).transpose(1, 2).reshape(b, t, c)
    return fn, [torch.randn(b, t, c)]


@pytest.mark.parametrize("causal", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_attention_heads_read_and_written_in_place(causal):
    fn, inputs = _heads(2, 24, 32, 4, causal)
    body = _body(fn, inputs)
    assert "xc_remap" not in body          # no copy of q, k, v or of the merged heads
    assert len(re.findall(r"xc_matmul_view_f32\(", body)) == 2
    if not causal:                         # the scale is the scores GEMM's alpha
        assert re.search(r"xc_matmul_view_f32\([^;]*, 0\.35355", body)
    _check(fn, inputs)


def test_multihead_attention_module():
    torch.manual_seed(0)
    mha = torch.nn.MultiheadAttention(32, 4, batch_first=True).eval()

    def fn(x):
        return mha(x, x, x, need_weights=False)[0]
    inputs = [torch.randn(3, 16, 32)]
    assert "xc_matmul_view_f32" in _body(fn, inputs)
    _check(fn, inputs)


@pytest.mark.slow
def test_transposed_and_sliced_operands():
    torch.manual_seed(0)
    w = torch.randn(16, 24)

    def fn(x, y):
        a = x.transpose(-2, -1) @ y               # A stored transposed: its flag flips
        s = x[:, 4:70, :] @ w                     # rows not one run: one GEMM per batch, B shared
        return a, s
    inputs = [torch.randn(2, 80, 16), torch.randn(2, 80, 8)]
    body = _body(fn, inputs)
    assert "xc_remap" not in body
    _check(fn, inputs)


@pytest.mark.slow
def test_encoder_layer_views_run_clean_under_asan_ubsan(tmp_path):
    """nn.TransformerEncoderLayer at batch 2, 72 positions (the seq-first transpose read as GEMMs
    along the positions, heads read in place and written merged, the scale as alpha), sanitized."""
    from test_cpp_sanitizers import sanitized_run
    from xcomp.backends.cpp.emit import emit_program as emit
    from xcomp.zoo import encoder_layer
    model, (x,) = encoder_layer(batch=2, seq=72, dim=32, heads=2)
    program, _ = xcomp.optimize(xcomp.capture(model, (x,)), target="cpp")
    unit = emit(program)
    assert unit.source.count("xc_matmul_view_f32(b") == 3 and unit.source.count("xc_remap<float>(b") == 1
    (y,) = sanitized_run(unit, program.weights, [x.numpy()], tmp_path)
    with torch.no_grad():
        expected = model(x).numpy()
    assert_close(y, expected)
