"""MLX lowerings of indexing ops: take, gather, scatter, index, index_put, sort, topk.

MLX indexes with int32; index tensors are cast, negative indices wrapped where MLX would not.
"""
from __future__ import annotations

from xcomp.backends.mlx.table import mx  # None where MLX is missing: source emission needs no MLX
import numpy as np

from xcomp.backends.mlx.table import lowers
from xcomp.ops.indexing import ScatterReduce, identity


def wrap_index(i, n):
    """Indices as int32, negative ones counted from the end of an axis of length n."""
    i = i.astype(mx.int32) if i.dtype != mx.int32 else i
    return mx.where(i < 0, i + n, i)


def corner(x, shape, skip):
    """The leading `shape` block of x (all of axis `skip`)."""
    return x[tuple(slice(None) if d == skip else slice(0, n) for d, n in enumerate(shape))]


def take(x, i, axis):
    return mx.take(x, wrap_index(i, x.shape[axis]), axis=axis)


def gather(x, i, axis):
    if i.size == 0:
        return mx.zeros(i.shape, x.dtype)
    return mx.take_along_axis(corner(x, i.shape, axis), wrap_index(i, x.shape[axis]), axis=axis)


def scatter_coords(index, axis):
    """Target coordinates of every index entry (its position, with `axis` replaced by its value)."""
    coords = []
    for d, n in enumerate(index.shape):
        shape = [1] * index.ndim
        shape[d] = n
        c = index if d == axis else mx.arange(n, dtype=mx.int32).reshape(shape)
        coords.append(mx.broadcast_to(c, index.shape))
    return tuple(coords)


def scatter(x, i, src, axis, reduce, include_self, start):
    """torch's scatter/scatter_reduce along `axis`: `reduce` is None (assign), "add", "mean",
    "multiply", "maximum" or "minimum"; without include_self, targets start from `start`."""
    if i.size == 0:
        return x
    coords = scatter_coords(wrap_index(i, x.shape[axis]), axis)
    vals = corner(src, i.shape, -1)
    y = mx.array(x)
    if reduce is None:
        y[coords] = vals
        return y
    if not include_self:
        y[coords] = mx.array(start).astype(x.dtype)
    y = getattr(y.at[coords], "add" if reduce == "mean" else reduce)(vals)
    if reduce == "mean":
        first = mx.full(x.shape, 1 if include_self else 0, dtype=mx.int32)
        count = mx.maximum(first.at[coords].add(mx.ones(i.shape, mx.int32)), 1)
        if mx.issubdtype(x.dtype, mx.floating):
            return (y / count.astype(x.dtype)).astype(x.dtype)
        return mx.floor_divide(y, count.astype(x.dtype))
    return y


_AT = {ScatterReduce.NONE: None, ScatterReduce.ADD: "add", ScatterReduce.MEAN: "mean",
       ScatterReduce.MULTIPLY: "multiply", ScatterReduce.AMAX: "maximum", ScatterReduce.AMIN: "minimum"}


def _scatter_params(a, ins, outs):
    start = identity(a["reduce"], np.dtype(outs[0].dtype.np)).item() if a["reduce"] is not ScatterReduce.NONE else 0
    return {"axis": a["axis"], "reduce": _AT[a["reduce"]], "include_self": a["include_self"], "start": start}


def index_tuple(x, axes, indices):
    """The indexing tuple: wrapped index arrays at `axes`, full slices elsewhere."""
    full = [slice(None)] * x.ndim
    for ax, i in zip(axes, indices):
        full[ax] = wrap_index(i, x.shape[ax])
    return tuple(full)


def index(x, *indices, axes):
    return x[index_tuple(x, axes, indices)]


def index_put(x, v, *indices, axes, accumulate):
    if x.size == 0 or any(i.size == 0 for i in indices):
        return x     # nothing is written (MLX rejects empty updates)
    where = index_tuple(x, axes, indices)
    if accumulate:
        return x.at[where].add(v)
    y = mx.array(x)
    y[where] = v
    return y


def argsort(x, axis, descending):
    if not descending:
        return mx.argsort(x, axis=axis)
    n = x.shape[axis]
    flip = tuple(slice(None, None, -1) if d == axis else slice(None) for d in range(x.ndim))
    return (n - 1 - mx.argsort(x[flip], axis=axis).astype(mx.int32))[flip]


def sort(x, axis, descending):
    """(values, int64 indices), stable, as torch.sort."""
    if x.ndim == 0:
        return x, mx.zeros((), mx.int64)
    i = argsort(x, axis, descending)
    return mx.take_along_axis(x, i, axis=axis), i.astype(mx.int64)


def topk(x, k, axis, largest):
    """(values, int64 indices) of the k largest (or smallest) along `axis`, as torch.topk."""
    if x.ndim == 0:
        return x, mx.zeros((), mx.int64)
    i = argsort(x, axis, largest)
    i = i[tuple(slice(0, k) if d == axis else slice(None) for d in range(x.ndim))]
    return mx.take_along_axis(x, i, axis=axis), i.astype(mx.int64)


lowers("take", take, lambda a, ins, outs: {"axis": a["axis"]})
lowers("gather", gather, lambda a, ins, outs: {"axis": a["axis"]})
lowers("scatter", scatter, _scatter_params)
lowers("index", index, lambda a, ins, outs: {"axes": tuple(a["axes"])})
lowers("index_put", index_put, lambda a, ins, outs: {"axes": tuple(a["axes"]), "accumulate": a["accumulate"]})
lowers("sort", sort, lambda a, ins, outs: {"axis": a["axis"], "descending": a["descending"]})
lowers("topk", topk, lambda a, ins, outs: {"k": a["k"], "axis": a["axis"], "largest": a["largest"]})
