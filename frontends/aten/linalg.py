"""aten matrix products and convolutions -> xc.matmul / xc.conv.

Operands take the node's result dtype. `addmm`-style ops are `beta * self + alpha * product`
(with `self` ignored when beta is 0, as torch does); `linear` is `matmul(x, w, transpose_b=True)`
plus bias. Every convolution entry point (`convolution`, `_convolution`, `conv1d/2d/3d` incl. the
string-padding overloads, `conv_transpose1d/2d/3d`) builds one `xc.conv` with per-dim attributes.
"""
from __future__ import annotations

import torch

from xcomp.frontends.aten import aten


@aten("aten.mm.default", "aten.bmm.default", "aten.matmul.default", "aten.dot.default", "aten.mv.default",
      "aten.vdot.default")
def matmul(cx, a, b):
    """torch.matmul in the node's dtype (also mm, bmm, mv, dot)."""
    dt = cx.out_dtype
    return cx.op("matmul", cx.tensor(a, dt), cx.tensor(b, dt))


def scaled_sum(cx, product, self, beta=1, alpha=1):
    """beta * self + alpha * product, dropping `self` when beta == 0."""
    dt = cx.out_dtype
    if alpha != 1:
        product = cx.op("mul", product, cx.const(alpha, dt))
    if beta == 0:
        return product
    self = cx.tensor(self, dt)
    if beta != 1:
        self = cx.op("mul", self, cx.const(beta, dt))
    return cx.op("add", self, product)


@aten("aten.addmm.default", "aten.baddbmm.default", "aten.addmv.default")
def addmm(cx, self, a, b, *, beta=1, alpha=1):
    return scaled_sum(cx, matmul(cx, a, b), self, beta, alpha)


@aten("aten.addbmm.default")
def addbmm(cx, self, a, b, *, beta=1, alpha=1):
    """beta * self + alpha * sum_b(a[b] @ b[b])."""
    return scaled_sum(cx, cx.op("sum", matmul(cx, a, b), axes=(0,)), self, beta, alpha)


@aten("aten.linear.default")
def linear(cx, x, w, bias=None):
    dt = cx.out_dtype
    y = cx.op("matmul", cx.tensor(x, dt), cx.tensor(w, dt), transpose_b=True)
    return y if bias is None else cx.op("add", y, cx.tensor(bias, dt))


def per_dim(v, n: int) -> tuple[int, ...]:
    """A torch int-or-list conv/pool argument as n ints."""
    v = (v,) if isinstance(v, int) else tuple(int(e) for e in v)
    return v * n if len(v) == 1 else v


def conv(cx, x, w, bias=None, stride=1, padding=0, dilation=1, transposed=False, output_padding=0, groups=1):
    """One `xc.conv` for every aten convolution entry point."""
    dt = cx.out_dtype
    nsp = w.type.rank - 2
    dilation = per_dim(dilation, nsp)
    if isinstance(padding, str):
        padding = _string_padding(padding, w.type.shape[2:], dilation)
    operands = [cx.tensor(x, dt), cx.tensor(w, dt)] + ([cx.tensor(bias, dt)] if bias is not None else [])
    return cx.op("conv", *operands, stride=per_dim(stride, nsp), padding=per_dim(padding, nsp),
                 dilation=dilation, groups=int(groups), transposed=bool(transposed),
                 output_padding=per_dim(output_padding, nsp))


def _string_padding(mode: str, kernel, dilation) -> tuple[int, ...]:
    """'valid' is no padding; 'same' pads d*(k-1) per dim, the odd element at the end (as torch)."""
    if mode == "valid":
        return (0,) * len(kernel)
    if mode != "same":
        raise NotImplementedError(f"conv padding '{mode}'")
    total = [d * (k - 1) for k, d in zip(kernel, dilation)]
    lo = tuple(t // 2 for t in total)
    hi = tuple(t - t // 2 for t in total)
    return lo if lo == hi else lo + hi


@aten("aten.convolution.default")
def convolution(cx, x, w, bias, stride, padding, dilation, transposed, output_padding, groups):
    return conv(cx, x, w, bias, stride, padding, dilation, transposed, output_padding, groups)


@aten("aten._convolution.default", "aten._convolution.deprecated")
def _convolution(cx, x, w, bias, stride, padding, dilation, transposed, output_padding, groups, *flags):
    return conv(cx, x, w, bias, stride, padding, dilation, transposed, output_padding, groups)


def _conv_nd(cx, x, w, bias=None, stride=1, padding=0, dilation=1, groups=1):
    return conv(cx, x, w, bias, stride, padding, dilation, False, 0, groups)


def _conv_transpose_nd(cx, x, w, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    return conv(cx, x, w, bias, stride, padding, dilation, True, output_padding, groups)


for _n in (1, 2, 3):
    aten(f"aten.conv{_n}d.default", f"aten.conv{_n}d.padding")(_conv_nd)
    aten(*(f"aten.conv_transpose{_n}d.{ov}" for ov in ("default", "input")
           if ov in getattr(torch.ops.aten, f"conv_transpose{_n}d").overloads()))(_conv_transpose_nd)
