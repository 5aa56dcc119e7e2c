"""MLX lowerings of pooling: windows as strided slices of the padded input, one per kernel offset.

Output sizes come from the result types; paddings, window offsets and divisors from the op
definitions' helpers, so the geometry is computed in one place.
"""
from __future__ import annotations

import mlx.core as mx
import numpy as np

from xcomp.backends.mlx.table import lowers
from xcomp.ops.pooling import adaptive_bounds, adaptive_windows, avg_divisor, flat_positions, pool_offsets


def _window_slices(x, a, name, out_shape, fill):
    """For each kernel offset, the strided slice of the padded input it contributes."""
    pads, offsets = pool_offsets(x.shape, a, name, out_shape)
    if any(lo or hi for lo, hi in pads):
        x = mx.pad(x, pads, constant_values=fill)
    return [x[sel] for sel in offsets]


@lowers("max_pool")
def _max_pool(args, a, out):
    """Scan the kernel offsets in order, keeping the first maximum (the last NaN), as torch does."""
    x = args[0]
    is_float = mx.issubdtype(x.dtype, mx.floating)
    low = mx.array(-float("inf"), x.dtype) if is_float else _int_min(x.dtype)
    parts = _window_slices(x, a, "max_pool", out[0].shape, low)
    if not a["with_indices"]:
        y = parts[0]
        for part in parts[1:]:
            y = mx.maximum(y, part)
        return y
    positions = mx.broadcast_to(mx.array(flat_positions(x.shape, len(a["kernel"]))), x.shape)
    index_parts = _window_slices(positions, a, "max_pool", out[0].shape, -1)
    y, idx = mx.full(out[0].shape, low, x.dtype), mx.full(out[0].shape, -1, mx.int64)
    for v, i in zip(parts, index_parts):
        newer = mx.logical_or(v > y, idx < 0)
        if is_float:
            newer = mx.logical_or(newer, mx.isnan(v))
        take = mx.logical_and(i >= 0, newer)
        y, idx = mx.where(take, v, y), mx.where(take, i, idx)
    return [y, idx]


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


@lowers("adaptive_max_pool")
def _adaptive_max(args, a, out):
    if not a["with_indices"]:
        return _adaptive(mx.max)(args, a, out)
    x = args[0]
    lead = x.shape[:x.ndim - len(a["output_size"])]
    values, indices = [], []
    for sel, positions in adaptive_windows(x.shape, a["output_size"]):
        flat = x[sel].reshape(lead + (-1,))
        local = mx.argmax(flat, axis=-1)
        if mx.issubdtype(x.dtype, mx.floating):  # torch keeps the last NaN
            nan = mx.isnan(flat)
            last_nan = flat.shape[-1] - 1 - mx.argmax(nan[..., ::-1], axis=-1).astype(mx.int32)
            local = mx.where(mx.any(nan, axis=-1), last_nan, local.astype(mx.int32))
        values.append(mx.take_along_axis(flat, mx.expand_dims(local, -1), axis=-1)[..., 0])
        indices.append(mx.array(positions)[local])
    shape = tuple(out[0].shape)
    return [mx.stack(values, -1).reshape(shape), mx.stack(indices, -1).reshape(shape)]
