"""MLX lowerings of matmul and convolution.

MLX convolutions are channels-last with weights (C_out, *kernel, C_in/groups); the IR is torch's
(N, C, *spatial), so the lowering moves the channel axis on the way in and out. A transposed conv
is a stride-1 correlation of the stride-dilated input (`input_dilation`) with the flipped kernel.
"""
from __future__ import annotations

from xcomp.backends.mlx.table import mx  # None where MLX is missing: source emission needs no MLX

from xcomp.backends.mlx.table import choose, lowers, rule
from xcomp.ops.linalg import conv_geometry


def matmul(x, y, transpose_a, transpose_b):
    """x @ y (either operand's last two axes swapped first); exact for integer and bool operands,
    which MLX does not multiply."""
    if transpose_a and x.ndim >= 2:
        x = mx.swapaxes(x, -1, -2)
    if transpose_b and y.ndim >= 2:
        y = mx.swapaxes(y, -1, -2)
    if mx.issubdtype(x.dtype, mx.floating):
        return mx.matmul(x, y)
    if x.dtype == mx.bool_:
        return matmul(x.astype(mx.int32), y.astype(mx.int32), False, False) != 0
    xs = x.reshape(1, -1) if x.ndim == 1 else x
    ys = y.reshape(-1, 1) if y.ndim == 1 else y
    prod = mx.sum(mx.expand_dims(xs, -1) * mx.expand_dims(ys, -3), axis=-2)
    if x.ndim == 1:
        prod = mx.squeeze(prod, -2)
    return mx.squeeze(prod, -1) if y.ndim == 1 else prod


def crop(x, lo, hi, first):
    """Drop `lo[i]`/`hi[i]` elements at the ends of axis first+i (negative padding)."""
    index = [slice(None)] * x.ndim
    for i, (a, b) in enumerate(zip(lo, hi)):
        index[first + i] = slice(a, x.shape[first + i] - b)
    return x[tuple(index)]


def conv_general(x, w, groups, **kw):
    """mx.conv_general, with groups of a 3-d conv (which MLX does not group) run one by one."""
    if groups == 1 or x.ndim - 2 < 3:
        return mx.conv_general(x, w, groups=groups, **kw)
    cin, cout = x.shape[-1] // groups, w.shape[0] // groups
    return mx.concatenate([mx.conv_general(x[..., i * cin:(i + 1) * cin], w[i * cout:(i + 1) * cout], **kw)
                           for i in range(groups)], axis=-1)


def conv(x, w, b=None, *, stride, lo, hi, dilation, output_padding, groups, transposed):
    """torch's convolution (N, C, *spatial) with per-dim stride, padding (lo, hi), dilation."""
    nsp = w.ndim - 2
    batched = x.ndim == nsp + 2
    if not batched:
        x = x[None]
    x = mx.moveaxis(x, 1, -1)
    if transposed:
        cin, cog = w.shape[:2]
        ks = tuple(w.shape[2:])
        w = mx.swapaxes(w.reshape((groups, cin // groups, cog) + ks), 1, 2).reshape((groups * cog, cin // groups) + ks)
        plo = [d * (k - 1) - p for d, k, p in zip(dilation, ks, lo)]
        phi = [d * (k - 1) - p + op for d, k, p, op in zip(dilation, ks, hi, output_padding)]
        y = conv_general(x, mx.moveaxis(w, 1, -1), groups, stride=1,
                         padding=([max(p, 0) for p in plo], [max(p, 0) for p in phi]),
                         kernel_dilation=list(dilation), input_dilation=list(stride), flip=True)
        y = crop(y, [max(-p, 0) for p in plo], [max(-p, 0) for p in phi], 1)
    else:
        x = crop(x, [max(-p, 0) for p in lo], [max(-p, 0) for p in hi], 1)
        y = conv_general(x, mx.moveaxis(w, 1, -1), groups, stride=list(stride),
                         padding=([max(p, 0) for p in lo], [max(p, 0) for p in hi]), kernel_dilation=list(dilation))
    y = mx.moveaxis(y, -1, 1)
    if b is not None:
        y = y + b.reshape((1, -1) + (1,) * nsp)
    return y if batched else y[0]


def _conv_params(a, ins, outs):
    stride, lo, hi, dil, outpad = conv_geometry(a, ins[1].ndim - 2)
    return {"stride": tuple(stride), "lo": tuple(lo), "hi": tuple(hi), "dilation": tuple(dil),
            "output_padding": tuple(outpad), "groups": a["groups"], "transposed": a["transposed"]}


_PLAIN_MATMUL = rule("matmul")
_MATMUL = rule(matmul, lambda a, ins, outs: {"transpose_a": a["transpose_a"], "transpose_b": a["transpose_b"]})
choose("matmul", lambda a, ins, outs: _PLAIN_MATMUL if ins[0].floating and not a["transpose_a"]
       and not a["transpose_b"] else _MATMUL, (_PLAIN_MATMUL, _MATMUL))
lowers("conv", conv, _conv_params)
