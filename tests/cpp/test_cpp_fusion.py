"""How the cpp target emits fused groups: matmul epilogues applied per GEMM row block when the
output is bigger than the cache block, row groups as one loop nest per row, elementwise groups with
broadcast operands; checked on the source and against torch eager."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import xcomp
from cpp_source import needs_cpp, run_body as _body
from helpers import assert_close

pytestmark = needs_cpp


def _check(fn, inputs):
    with torch.no_grad():
        want = fn(*inputs)
    got = xcomp.compile(fn, target="cpp")(*inputs)
    assert_close(got, want, scale=4)


def test_big_matmul_epilogue_runs_per_row_block():
    torch.manual_seed(0)
    w, bias = torch.randn(384, 256) / 16, torch.randn(384)

    def fn(x, r):
        return F.gelu(F.linear(x, w, bias)) + r
    inputs = [torch.randn(700, 256), torch.randn(700, 384)]
    src = _body(fn, inputs)
    assert "rows [rb, rb + rn)" in src and src.count("xc_sgemm(") == 1
    _check(fn, inputs)


def test_small_matmul_epilogue_is_one_gemm_then_one_loop():
    w = torch.randn(32, 16)

    def fn(x):
        return torch.relu(x @ w.t()) * 2
    inputs = [torch.randn(8, 16)]
    src = _body(fn, inputs)
    assert "epilogue of xc.matmul" in src and "rows [rb" not in src
    _check(fn, inputs)


def test_softmax_is_one_row_loop_nest():
    def fn(x):
        return torch.softmax(x * 0.5, -1)
    inputs = [torch.randn(6, 50)]
    src = _body(fn, inputs)
    assert src.count("xc_parallel_for(") == 1 and "6 rows of 50" in src
    _check(fn, inputs)


def test_broadcast_operands_read_per_row_and_column():
    def fn(x, col, row):
        return torch.tanh(x + col) * row
    inputs = [torch.randn(4, 5, 40), torch.randn(5, 1), torch.randn(40)]
    _check(fn, inputs)


def test_reduction_over_leading_axes_and_nonlast_softmax():
    def fn(x):
        return torch.softmax(x, 0) + x.var(0, keepdim=True) + torch.logsumexp(x, (0, 2), keepdim=True)
    _check(fn, [torch.randn(3, 4, 5)])


@pytest.mark.parametrize("cin,groups,kernel,expect", [
    (272, 1, 3, "xc_conv_f32("),         # 2448 taps: im2col + GEMM
    (24, 1, 3, "xc_conv2d_direct_f32<"), # 216 taps: register-blocked direct
    (24, 2, 3, "xc_conv2d_direct_f32<"), # 108 taps per group: direct
    (8, 8, 3, "xc_conv2d_direct_f32<"),  # depthwise
    (24, 1, 1, "xc_conv_f32("),          # 1x1: GEMM on the input as it is
])
def test_convolution_kernel_choice(cin, groups, kernel, expect):
    torch.manual_seed(1)
    w, b = torch.randn(16, cin // groups, kernel, kernel) / 8, torch.randn(16)

    def fn(x):
        return F.conv2d(x, w, b, stride=(2, 1) if kernel > 1 else 1, padding=kernel // 2,
                        dilation=(1, 2) if kernel > 1 else 1, groups=groups)
    inputs = [torch.randn(2, cin, 9, 10)]
    assert expect in _body(fn, inputs)
    _check(fn, inputs)


def test_empty_tensors():
    def fn(x, y):
        return torch.tanh(x) + y, torch.softmax(x, -1), x.sum(-1), x.sum(0), x.mean(0)
    inputs = [torch.randn(0, 5), torch.randn(1, 5)]
    with torch.no_grad():
        want = fn(*inputs)
    got = xcomp.compile(fn, target="cpp")(*inputs)
    for g, w in zip(got, want):
        assert g.shape == w.shape
        assert_close(g, w)
