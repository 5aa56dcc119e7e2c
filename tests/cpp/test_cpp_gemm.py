"""The cpp target's matmul lowering and the runtime's packed GEMM: batches that share B run as one
GEMM, many small products one per pool chunk; numerics against eager at the shapes the kernel
splits differently (row tiles, column panels, K blocks, A read in place or packed)."""
from __future__ import annotations

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
    assert_close(got, want, scale=4)


def _matmuls(src: str) -> list[tuple[int, int, int, int]]:
    """(batches, M, N, K) of each xc_matmul_f32(C, A, B, nb, offa, offb, M, N, K, ta, tb) call and
    each xc_matmul_view_f32(C, A, B, nb, offa, offb, offc, M, N, K, ...) call."""
    calls = [(c.split(", "), 6) for c in re.findall(r"xc_matmul_f32\((.*?)\);", src)]
    calls += [(c.split(", "), 7) for c in re.findall(r"xc_matmul_view_f32\((.*?)\);", src)]
    return [(int(c[3]), int(c[i]), int(c[i + 1]), int(c[i + 2])) for c, i in calls]


def test_batches_sharing_b_are_one_gemm():
    torch.manual_seed(0)
    w = torch.randn(48, 40) / 8

    def fn(x):
        return x @ w
    inputs = [torch.randn(3, 7, 48)]
    assert _matmuls(_body(fn, inputs)) == [(1, 21, 40, 48)]
    _check(fn, inputs)


def test_batched_products_each_their_own():
    torch.manual_seed(0)

    def fn(q, k):
        return q @ k.transpose(-2, -1)
    inputs = [torch.randn(2, 4, 33, 16), torch.randn(2, 4, 33, 16)]
    (nb, M, N, K), = _matmuls(_body(fn, inputs))
    assert (nb, M, N, K) == (8, 33, 33, 16)
    _check(fn, inputs)


@pytest.mark.parametrize("m,k,n", [(4, 3, 5), (13, 300, 70), (130, 64, 100), (50, 1024, 200), (400, 96, 33)])
def test_linear_shapes_match_eager(m, k, n):
    torch.manual_seed(0)
    lin = torch.nn.Linear(k, n).eval()
    _check(lin, [torch.randn(m, k)])
