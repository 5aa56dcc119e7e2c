"""MLX lowerings of indexing ops: take, gather, scatter, index, index_put, sort, topk.

MLX indexes with int32; index tensors are cast, negative indices wrapped where MLX would not.
"""
from __future__ import annotations

import mlx.core as mx
import numpy as np

from xcomp.backends.mlx.table import lowers
from xcomp.ops.indexing import ScatterReduce, identity, index_tuple


def _i32(i):
    return i.astype(mx.int32) if i.dtype != mx.int32 else i


def _wrap(i, n: int):
    i = _i32(i)
    return mx.where(i < 0, i + n, i)


def _corner(x, shape, skip: int):
    return x[tuple(slice(None) if d == skip else slice(0, n) for d, n in enumerate(shape))]


@lowers("take")
def _take(args, a, out):
    x, i = args
    return mx.take(x, _wrap(i, x.shape[a["axis"]]), axis=a["axis"])


@lowers("gather")
def _gather(args, a, out):
    x, i = args
    ax = a["axis"]
    if i.size == 0:
        return mx.zeros(out[0].shape, x.dtype)
    return mx.take_along_axis(_corner(x, i.shape, ax), _wrap(i, x.shape[ax]), axis=ax)


def _coords(index, axis: int) -> tuple:
    """Target coordinates of every index entry (its position, with `axis` replaced by its value)."""
    coords = []
    for d, n in enumerate(index.shape):
        shape = [1] * index.ndim
        shape[d] = n
        c = index if d == axis else mx.arange(n, dtype=mx.int32).reshape(shape)
        coords.append(mx.broadcast_to(c, index.shape))
    return tuple(coords)


_AT = {ScatterReduce.ADD: "add", ScatterReduce.MEAN: "add", ScatterReduce.MULTIPLY: "multiply",
       ScatterReduce.AMAX: "maximum", ScatterReduce.AMIN: "minimum"}


@lowers("scatter")
def _scatter(args, a, out):
    x, i, src = args
    ax, reduce = a["axis"], a["reduce"]
    if i.size == 0:
        return x
    coords = _coords(_wrap(i, x.shape[ax]), ax)
    vals = _corner(src, i.shape, -1)
    y = mx.array(x)
    if reduce is ScatterReduce.NONE:
        y[coords] = vals
        return y
    if not a["include_self"]:
        y[coords] = mx.array(identity(reduce, np.dtype(out[0].dtype.np))).astype(x.dtype)
    y = getattr(y.at[coords], _AT[reduce])(vals)
    if reduce is ScatterReduce.MEAN:
        start = mx.full(x.shape, 1 if a["include_self"] else 0, dtype=mx.int32)
        count = mx.maximum(start.at[coords].add(mx.ones(i.shape, mx.int32)), 1)
        if mx.issubdtype(x.dtype, mx.floating):
            y = (y / count.astype(x.dtype)).astype(x.dtype)
        else:
            y = mx.floor_divide(y, count.astype(x.dtype))
    return y


def _index_tuple(x, axes, idx):
    return index_tuple(x.ndim, axes, [_wrap(i, x.shape[ax]) for ax, i in zip(axes, idx)])


@lowers("index")
def _index(args, a, out):
    x = args[0]
    return x[_index_tuple(x, a["axes"], args[1:])]


@lowers("index_put")
def _index_put(args, a, out):
    x, v = args[0], args[1]
    if x.size == 0 or any(i.size == 0 for i in args[2:]):
        return x     # nothing is written (MLX rejects empty updates)
    tup = _index_tuple(x, a["axes"], args[2:])
    if a["accumulate"]:
        return x.at[tup].add(v)
    y = mx.array(x)
    y[tup] = v
    return y


def _argsort(x, axis: int, descending: bool):
    if not descending:
        return mx.argsort(x, axis=axis)
    n = x.shape[axis]
    flip = tuple(slice(None, None, -1) if d == axis else slice(None) for d in range(x.ndim))
    return (n - 1 - mx.argsort(x[flip], axis=axis).astype(mx.int32))[flip]


@lowers("sort")
def _sort(args, a, out):
    x = args[0]
    if x.ndim == 0:
        return [x, mx.zeros((), mx.int64)]
    i = _argsort(x, a["axis"], a["descending"])
    return [mx.take_along_axis(x, i, axis=a["axis"]), i.astype(mx.int64)]


@lowers("topk")
def _topk(args, a, out):
    x = args[0]
    if x.ndim == 0:
        return [x, mx.zeros((), mx.int64)]
    ax = a["axis"]
    i = _argsort(x, ax, a["largest"])
    i = i[tuple(slice(0, a["k"]) if d == ax else slice(None) for d in range(x.ndim))]
    return [mx.take_along_axis(x, i, axis=ax), i.astype(mx.int64)]
