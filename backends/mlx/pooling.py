"""MLX lowerings of pooling: windows as strided slices of the padded input, one per kernel offset.

Output sizes come from the result types; paddings, window offsets and divisors from the op
definitions' helpers (computed at lowering time, so emitted source holds them as literals).
"""
from __future__ import annotations

import math

from xcomp.backends.mlx.table import mx  # None where MLX is missing: source emission needs no MLX
import numpy as np

from xcomp.backends.mlx.table import Expr, Rule, choose, lowers, rule
from xcomp.ops.pooling import adaptive_bounds, adaptive_windows, avg_divisor, pool_offsets


def windows(x, pads, offsets, fill):
    """For each kernel offset, the strided slice of the padded input it contributes."""
    if any(lo or hi for lo, hi in pads):
        x = mx.pad(x, pads, constant_values=fill)
    return [x[sel] for sel in offsets]


def lowest(dtype):
    """The smallest value of `dtype` (-inf for floats)."""
    if mx.issubdtype(dtype, mx.floating):
        return mx.array(-math.inf, dtype)
    bits = dtype.size * 8
    return mx.array(0 if not mx.issubdtype(dtype, mx.signedinteger) else -(2 ** (bits - 1)), dtype)


def max_pool(x, pads, offsets, pooled, with_indices):
    """Scan the kernel offsets in order, keeping the first maximum (the last NaN), as torch does."""
    low = lowest(x.dtype)
    parts = windows(x, pads, offsets, low)
    if not with_indices:
        y = parts[0]
        for part in parts[1:]:
            y = mx.maximum(y, part)
        return y
    spatial = x.shape[x.ndim - pooled:]
    positions = mx.broadcast_to(mx.arange(math.prod(spatial), dtype=mx.int64).reshape(spatial), x.shape)
    y = mx.full(parts[0].shape, low, x.dtype)
    idx = mx.full(parts[0].shape, -1, mx.int64)
    for v, i in zip(parts, windows(positions, pads, offsets, -1)):
        newer = mx.logical_or(v > y, idx < 0)
        if mx.issubdtype(x.dtype, mx.floating):
            newer = mx.logical_or(newer, mx.isnan(v))
        take = mx.logical_and(i >= 0, newer)
        y, idx = mx.where(take, v, y), mx.where(take, i, idx)
    return y, idx


def avg_pool(x, pads, offsets, divisor):
    total = None
    for part in windows(x, pads, offsets, 0.0):
        total = part if total is None else total + part
    return total / mx.array(divisor).astype(x.dtype)


def _pool_params(name):
    def params(a, ins, outs):
        pads, offsets = pool_offsets(ins[0].shape, a, name, outs[0].shape)
        p = {"pads": [tuple(x) for x in pads], "offsets": [tuple(o) for o in offsets]}
        if name == "max_pool":
            p.update(pooled=len(a["kernel"]), with_indices=a["with_indices"])
        else:
            div = a["divisor_override"] or avg_divisor(ins[0].shape, a).astype(np.float32)
            p["divisor"] = div if isinstance(div, (int, float)) else \
                (div.reshape(-1)[0].item() if np.all(div == div.reshape(-1)[0]) else div.tolist())
        return p
    return params


def adaptive_pool(x, reduce, bounds):
    """Adaptive pooling: `bounds[i]` lists the (lo, hi) windows of pooled axis i (trailing axes);
    even splits become one reshape and reduction."""
    for i, windows_i in enumerate(bounds):
        axis = x.ndim - len(bounds) + i
        n, size = x.shape[axis], len(windows_i)
        if n % size == 0:
            x = reduce(x.reshape(x.shape[:axis] + (size, n // size) + x.shape[axis + 1:]), axis=axis + 1)
            continue
        index = [slice(None)] * x.ndim
        parts = []
        for lo, hi in windows_i:
            index[axis] = slice(lo, hi)
            parts.append(reduce(x[tuple(index)], axis=axis, keepdims=True))
        x = mx.concatenate(parts, axis=axis)
    return x


def adaptive_max_indexed(x, selections, positions, shape):
    """Adaptive max pooling with torch's indices: one window (`selections[j]`, its flat input
    `positions[j]`) per output position."""
    lead = x.shape[:x.ndim - (len(selections[0]) - 1)]
    values, indices = [], []
    for sel, pos in zip(selections, positions):
        flat = x[sel].reshape(lead + (-1,))
        local = mx.argmax(flat, axis=-1).astype(mx.int32)
        if mx.issubdtype(x.dtype, mx.floating):  # torch keeps the last NaN
            nan = mx.isnan(flat)
            last_nan = flat.shape[-1] - 1 - mx.argmax(nan[..., ::-1], axis=-1).astype(mx.int32)
            local = mx.where(mx.any(nan, axis=-1), last_nan, local)
        values.append(mx.take_along_axis(flat, mx.expand_dims(local, -1), axis=-1)[..., 0])
        indices.append(mx.array(pos, dtype=mx.int64)[local])
    return mx.stack(values, -1).reshape(shape), mx.stack(indices, -1).reshape(shape)


def _adaptive_params(reduce):
    def params(a, ins, outs):
        spatial = ins[0].shape[ins[0].ndim - len(a["output_size"]):]
        return {"reduce": Expr(reduce), "bounds": [adaptive_bounds(n, o) for n, o in zip(spatial, a["output_size"])]}
    return params


def _adaptive_max_params(a, ins, outs):
    windows_ = list(adaptive_windows(ins[0].shape, a["output_size"]))
    return {"selections": [sel for sel, _ in windows_], "positions": [p.tolist() for _, p in windows_],
            "shape": tuple(outs[0].shape)}


_ADAPTIVE_MAX = rule(adaptive_pool, _adaptive_params("mx.max"))
_ADAPTIVE_MAX_INDEXED = rule(adaptive_max_indexed, _adaptive_max_params)

lowers("max_pool", max_pool, _pool_params("max_pool"))
lowers("avg_pool", avg_pool, _pool_params("avg_pool"))
lowers("adaptive_avg_pool", adaptive_pool, _adaptive_params("mx.mean"))
choose("adaptive_max_pool", lambda a, ins, outs: _ADAPTIVE_MAX_INDEXED if a["with_indices"] else _ADAPTIVE_MAX,
       (_ADAPTIVE_MAX, _ADAPTIVE_MAX_INDEXED))
