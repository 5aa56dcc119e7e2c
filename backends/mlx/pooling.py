"""MLX lowerings of pooling: windows as strided slices of the padded input, one per kernel offset.

Output sizes come from the result types; paddings and divisors from the op definitions' helpers.
"""
from __future__ import annotations

import itertools

import mlx.core as mx
import numpy as np

from xcomp.backends.mlx.table import lowers
from xcomp.ops.pooling import adaptive_bounds, avg_divisor, pool_geometry


def _window_slices(x, a, name, out_shape, fill):
    """The padded input and, for each kernel offset, the strided slice it contributes."""
    k, s, p, d = pool_geometry(a, name)
    nsp = len(k)
    lead = x.ndim - nsp
    outs = out_shape[lead:]
    pads = [(0, 0)] * lead
    for i in range(nsp):
        need = (outs[i] - 1) * s[i] + d[i] * (k[i] - 1) + 1
        pads.append((p[i], max(0, need - x.shape[lead + i] - p[i])))
    if any(lo or hi for lo, hi in pads):
        x = mx.pad(x, pads, constant_values=fill)
    for offset in itertools.product(*(range(kk) for kk in k)):
        index = (slice(None),) * lead + tuple(
            slice(o * d[i], o * d[i] + (outs[i] - 1) * s[i] + 1, s[i]) for i, o in enumerate(offset))
        yield x[index]


@lowers("max_pool")
def _max_pool(args, a, out):
    x = args[0]
    fill = mx.array(-float("inf"), x.dtype) if mx.issubdtype(x.dtype, mx.floating) else _int_min(x.dtype)
    y = None
    for part in _window_slices(x, a, "max_pool", out[0].shape, fill):
        y = part if y is None else mx.maximum(y, part)
    return y


def _int_min(dtype):
    return mx.array(np.iinfo(np.dtype(str(dtype).split(".")[-1])).min, dtype)


@lowers("avg_pool")
def _avg_pool(args, a, out):
    x = args[0]
    total = None
    for part in _window_slices(x, a, "avg_pool", out[0].shape, 0.0):
        total = part if total is None else total + part
    div = a["divisor_override"] or mx.array(avg_divisor(x.shape, a).astype(np.float32)).astype(x.dtype)
    return total / div


def _adaptive(reduce):
    def run(args, a, out):
        x = args[0]
        o = a["output_size"]
        for i, size in enumerate(o):
            axis = x.ndim - len(o) + i
            n = x.shape[axis]
            if n % size == 0:
                shape = x.shape[:axis] + (size, n // size) + x.shape[axis + 1:]
                x = reduce(x.reshape(shape), axis=axis + 1)
                continue
            index = [slice(None)] * x.ndim
            parts = []
            for lo, hi in adaptive_bounds(n, size):
                index[axis] = slice(lo, hi)
                parts.append(reduce(x[tuple(index)], axis=axis, keepdims=True))
            x = mx.concatenate(parts, axis=axis)
        return x
    return run


lowers("adaptive_avg_pool")(_adaptive(mx.mean))
lowers("adaptive_max_pool")(_adaptive(mx.max))
