"""MLX lowerings of matmul and convolution.

MLX convolutions are channels-last with weights (C_out, *kernel, C_in/groups); the IR is torch's
(N, C, *spatial), so the lowering moves the channel axis on the way in and out. A transposed conv
is a stride-1 correlation of the stride-dilated input (`input_dilation`) with the flipped kernel.
"""
from __future__ import annotations

import mlx.core as mx

from xcomp.backends.mlx.table import lowers
from xcomp.ops.linalg import conv_geometry


@lowers("matmul")
def _matmul(args, a, out):
    x, y = args
    if a["transpose_a"] and x.ndim >= 2:
        x = mx.swapaxes(x, -1, -2)
    if a["transpose_b"] and y.ndim >= 2:
        y = mx.swapaxes(y, -1, -2)
    if mx.issubdtype(x.dtype, mx.floating):
        return mx.matmul(x, y)
    # MLX multiplies floats only: exact integer products by broadcasting and summing
    if x.dtype == mx.bool_:
        return _matmul([x.astype(mx.int32), y.astype(mx.int32)], {"transpose_a": False, "transpose_b": False},
                       out) != 0
    xs = x.reshape(1, -1) if x.ndim == 1 else x
    ys = y.reshape(-1, 1) if y.ndim == 1 else y
    prod = mx.sum(mx.expand_dims(xs, -1) * mx.expand_dims(ys, -3), axis=-2)
    return prod.reshape(out[0].shape)


def _crop(x, lo, hi, first: int):
    """Drop `lo[i]`/`hi[i]` elements at the ends of axis first+i (negative padding)."""
    index = [slice(None)] * x.ndim
    for i, (l, h) in enumerate(zip(lo, hi)):
        index[first + i] = slice(l, x.shape[first + i] - h)
    return x[tuple(index)]


def _conv_general(x, w, groups: int, **kw):
    """mx.conv_general, with groups of a 3-d conv (which MLX does not group) run one by one."""
    if groups == 1 or x.ndim - 2 < 3:
        return mx.conv_general(x, w, groups=groups, **kw)
    cin, cout = x.shape[-1] // groups, w.shape[0] // groups
    return mx.concatenate([mx.conv_general(x[..., i * cin:(i + 1) * cin], w[i * cout:(i + 1) * cout], **kw)
                           for i in range(groups)], axis=-1)


@lowers("conv")
def _conv(args, a, out):
    x, w = args[0], args[1]
    nsp = w.ndim - 2
    batched = x.ndim == nsp + 2
    if not batched:
        x = x[None]
    stride, lo, hi, dil, outpad = conv_geometry(a, nsp)
    g = a["groups"]
    x = mx.moveaxis(x, 1, -1)
    if a["transposed"]:
        cin, cog = w.shape[:2]
        ks = tuple(w.shape[2:])
        w = mx.swapaxes(w.reshape((g, cin // g, cog) + ks), 1, 2).reshape((g * cog, cin // g) + ks)
        plo = [d * (k - 1) - p for d, k, p in zip(dil, ks, lo)]
        phi = [d * (k - 1) - p + op for d, k, p, op in zip(dil, ks, hi, outpad)]
        y = _conv_general(x, mx.moveaxis(w, 1, -1), g, stride=1,
                          padding=([max(p, 0) for p in plo], [max(p, 0) for p in phi]),
                          kernel_dilation=list(dil), input_dilation=list(stride), flip=True)
        y = _crop(y, [max(-p, 0) for p in plo], [max(-p, 0) for p in phi], 1)
    else:
        x = _crop(x, [max(-p, 0) for p in lo], [max(-p, 0) for p in hi], 1)
        y = _conv_general(x, mx.moveaxis(w, 1, -1), g, stride=list(stride),
                          padding=([max(p, 0) for p in lo], [max(p, 0) for p in hi]), kernel_dilation=list(dil))
    y = mx.moveaxis(y, -1, 1)
    if len(args) == 3:
        y = y + args[2].reshape((1, -1) + (1,) * nsp)
    return y if batched else y[0]
