"""Indexing primitives: Gather, GatherAxis, Scatter, ScatterAxis, SliceUpdate, DynamicSlice,
DynamicSliceUpdate.

MLX's Gather and Scatter index several axes at once and carry a slice per index; xcomp's `index` and
`index_put` index with full slices. The converters move the indexed axes to the front, index there,
and reshape to the event's shape; a slice that is neither one element nor the whole axis is refused.
"""
from __future__ import annotations

import numpy as np

from xcomp.frontends.mlx.table import Unsupported, primitive
from xcomp.ir.types import DType
from xcomp.ops.indexing import ScatterReduce

SCATTER_REDUCE = {2: False, 4: None}  # MLX ReduceType Max, Min, Sum, Prod, None -> accumulate? (None: assign)
SCATTER_AXIS_REDUCE = {0: ScatterReduce.ADD, 1: ScatterReduce.NONE}  # ScatterAxis: Sum, None


def _front(cx, x, axes):
    """x with the indexed `axes` first; the permutation used (None when already in place)."""
    rest = [d for d in range(x.type.rank) if d not in axes]
    perm = tuple(axes) + tuple(rest)
    if perm == tuple(range(x.type.rank)):
        return x, None
    return cx.op("transpose", x, perm=perm), perm


def _check_slices(x, axes, sizes, what):
    for d, s in enumerate(sizes):
        if d in axes and s != 1:
            raise Unsupported(f"{what} with a slice of {s} on indexed axis {d}")
        if d not in axes and s != x.type.shape[d]:
            raise Unsupported(f"{what} with a partial slice ({s} of {x.type.shape[d]}) on axis {d}")


@primitive("Gather", "transpose, index, reshape")
def gather(cx, inputs, args):
    axes, sizes = [a % inputs[0].type.rank for a in args[0]], list(args[1])
    x, idx = inputs[0], inputs[1:]
    if not axes:
        from xcomp.frontends.mlx.shape import slice_axes
        return [cx.reshape(slice_axes(cx, x, [0] * len(sizes), sizes, [1] * len(sizes)), cx.out.shape)]
    _check_slices(x, axes, sizes, "a gather")
    xt, _ = _front(cx, x, axes)
    y = cx.op("index", xt, *idx, axes=tuple(range(len(axes))))
    return [cx.reshape(y, cx.out.shape)]


@primitive("GatherAxis", "gather")
def gather_axis(cx, inputs, args):
    return [cx.op("gather", inputs[0], inputs[1], axis=args[0] % inputs[0].type.rank)]


@primitive("ScatterAxis", "scatter")
def scatter_axis(cx, inputs, args):
    x, idx, upd = inputs
    return [cx.op("scatter", x, idx, cx.cast(upd, x.type.dtype), axis=args[1] % x.type.rank,
                  reduce=SCATTER_AXIS_REDUCE[args[0]])]


@primitive("Scatter", "transpose, reshape, index_put")
def scatter(cx, inputs, args):
    kind, axes = args[0], [a % inputs[0].type.rank for a in args[1]]
    x, idx, upd = inputs[0], inputs[1:-1], inputs[-1]
    if kind not in SCATTER_REDUCE:
        raise Unsupported("a scatter with max, min or prod (index_put assigns or adds)")
    batch = upd.type.rank - x.type.rank
    _check_slices(x, axes, upd.type.shape[batch:], "a scatter")
    xt, perm = _front(cx, x, axes)
    values = cx.reshape(cx.cast(upd, x.type.dtype), upd.type.shape[:batch] + xt.type.shape[len(axes):])
    y = cx.op("index_put", xt, values, *idx, axes=tuple(range(len(axes))),
              accumulate=SCATTER_REDUCE[kind] is False)
    if perm is not None:
        y = cx.op("transpose", y, perm=tuple(int(i) for i in np.argsort(perm)))
    return [y]


@primitive("SliceUpdate", "reshape, broadcast_to, index_put")
def slice_update(cx, inputs, args):
    kind, starts, ends, strides = args
    x, upd = inputs
    if kind not in SCATTER_REDUCE:
        raise Unsupported("a slice update with max, min or prod (index_put assigns or adds)")
    shape = tuple(x.type.shape)
    where = np.arange(int(np.prod(shape, dtype=np.int64)), dtype=np.int64).reshape(shape)
    where = where[tuple(slice(s, e, st) for s, e, st in zip(starts, ends, strides))]
    values = cx.cast(upd, x.type.dtype)
    if tuple(values.type.shape) != where.shape:
        values = cx.op("broadcast_to", values, shape=where.shape)
    flat = cx.reshape(x, (int(np.prod(shape, dtype=np.int64)),))
    y = cx.op("index_put", flat, cx.reshape(values, (where.size,)), cx.array(where.reshape(-1), DType.I64),
              axes=(0,), accumulate=SCATTER_REDUCE[kind] is False)
    return [cx.reshape(y, shape)]


def _window(cx, start, i: int, size: int):
    """start[i] + arange(size): the positions of a dynamic slice along its i-th axis."""
    s = cx.cast(cx.reshape(cx.op("slice", start, axis=0, start=i, end=i + 1), ()), DType.I64)
    return cx.op("add", cx.op("arange", start=0, end=size, step=1, dtype=DType.I64), s)


@primitive("DynamicSlice", "slice, reshape, arange, add, take")
def dynamic_slice(cx, inputs, args):
    axes, sizes = args
    x, start = inputs
    for i, ax in enumerate(axes):
        ax %= x.type.rank
        x = cx.op("take", x, _window(cx, start, i, sizes[ax]), axis=ax)
    return [x]


@primitive("DynamicSliceUpdate", "slice, arange, add, reshape, transpose, index_put")
def dynamic_slice_update(cx, inputs, args):
    """x with `update` written at runtime offsets `start` along `axes` (KV caches)."""
    x, upd, start = inputs
    axes = [a % x.type.rank for a in args[0]]
    k = len(axes)
    xt, perm = _front(cx, x, axes)
    values = cx.cast(upd if perm is None else cx.op("transpose", upd, perm=perm), x.type.dtype)
    sizes = [upd.type.shape[ax] for ax in axes]
    idx = [cx.reshape(_window(cx, start, i, n), tuple(n if j == i else 1 for j in range(k)))
           for i, n in enumerate(sizes)]  # an outer product of the windows, one axis each
    y = cx.op("index_put", xt, values, *idx, axes=tuple(range(k)))
    return [y if perm is None else cx.op("transpose", y, perm=tuple(int(i) for i in np.argsort(perm)))]
