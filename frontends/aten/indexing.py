"""aten indexing ops -> xc take, gather, scatter, index, index_put, sort, topk.

index_add/index_copy/index_fill become scatters or index_puts; masked_fill and boolean-mask
index_put become `where` (their result shapes do not depend on the data). Boolean-mask *reads*
(`x[mask]`) have data-dependent shapes and are reported unsupported.
"""
from __future__ import annotations

import numpy as np

from xcomp.frontends.aten import aten
from xcomp.frontends.aten.shape import (norm_dim, reshape, size, slice_bounds, static_int, transpose,
                                        unsqueeze)
from xcomp.ir.core import Value
from xcomp.ir.types import DType
from xcomp.ops.indexing import ScatterReduce


def scalar_rank1(cx, x: Value) -> Value:
    """0-d tensors as shape (1,), the way torch's indexing kernels treat them."""
    return reshape(cx, x, (1,)) if x.type.rank == 0 else x


@aten("aten.index_select.default")
def index_select(cx, x, dim, index):
    ax = norm_dim(dim, x.type.rank)
    if x.type.rank == 0:
        return reshape(cx, cx.op("take", scalar_rank1(cx, x), scalar_rank1(cx, index), axis=0), ())
    return cx.op("take", x, scalar_rank1(cx, index), axis=ax)


@aten("aten.embedding.default")
def embedding(cx, weight, indices, padding_idx=-1, scale_grad_by_freq=False, sparse=False):
    return cx.op("take", weight, indices, axis=0)


@aten("aten.take.default")
def take(cx, x, index):
    return cx.op("take", reshape(cx, x, (-1,)), index, axis=0)


@aten("aten.gather.default")
def gather(cx, x, dim, index, sparse_grad=False):
    ax = norm_dim(dim, x.type.rank)
    if x.type.rank == 0:
        out = cx.op("gather", scalar_rank1(cx, x), scalar_rank1(cx, index), axis=0)
        return reshape(cx, out, index.type.shape)
    return cx.op("gather", x, index, axis=ax)


# -- scatter family -----------------------------------------------------------------------------
def scatter(cx, x, dim, index, src, reduce=ScatterReduce.NONE, include_self=True) -> Value:
    dt = cx.out_dtype
    x = cx.tensor(x, dt)
    if x.type.rank == 0:
        y = scatter(cx, scalar_rank1(cx, x), 0, scalar_rank1(cx, index),
                    scalar_rank1(cx, cx.tensor(src, dt)), reduce, include_self)
        return reshape(cx, y, ())
    ax = norm_dim(dim, x.type.rank)
    src = cx.tensor(src, dt)
    if src.type.rank == 0:
        src = cx.broadcast(src, index.type.shape)
    return cx.op("scatter", x, index, src, axis=ax, reduce=reduce, include_self=include_self)


_SCATTER_REDUCE = {"add": ScatterReduce.ADD, "multiply": ScatterReduce.MULTIPLY,
                   "sum": ScatterReduce.ADD, "prod": ScatterReduce.MULTIPLY, "mean": ScatterReduce.MEAN,
                   "amax": ScatterReduce.AMAX, "amin": ScatterReduce.AMIN}


@aten("aten.scatter.src", "aten.scatter.value")
def scatter_plain(cx, x, dim, index, src):
    return scatter(cx, x, dim, index, src)


@aten("aten.scatter.reduce", "aten.scatter.value_reduce")
def scatter_reduce_legacy(cx, x, dim, index, src, reduce):
    return scatter(cx, x, dim, index, src, _SCATTER_REDUCE[reduce])


@aten("aten.scatter_add.default")
def scatter_add(cx, x, dim, index, src):
    return scatter(cx, x, dim, index, src, ScatterReduce.ADD)


@aten("aten.scatter_reduce.two")
def scatter_reduce(cx, x, dim, index, src, reduce, include_self=True):
    return scatter(cx, x, dim, index, src, _SCATTER_REDUCE[reduce], bool(include_self))


def along(cx, index: Value, like: Value, ax: int) -> Value:
    """A 1-d index of axis `ax` broadcast to the shape of `like` (for index_add/index_copy)."""
    shape = [1] * like.type.rank
    shape[ax] = index.type.shape[0] if index.type.rank else 1
    return cx.broadcast(reshape(cx, index, shape), like.type.shape)


@aten("aten.index_add.default")
def index_add(cx, x, dim, index, source, alpha=1):
    dt = cx.out_dtype
    x, source = cx.tensor(x, dt), cx.tensor(source, dt)
    if x.type.rank == 0:
        return reshape(cx, index_add(cx, scalar_rank1(cx, x), 0, index, scalar_rank1(cx, source), alpha), ())
    ax = norm_dim(dim, x.type.rank)
    if alpha != 1:
        source = cx.op("mul", source, cx.const(alpha, dt))
    return cx.op("scatter", x, along(cx, index, source, ax), source, axis=ax, reduce=ScatterReduce.ADD)


@aten("aten.index_reduce.default")
def index_reduce(cx, x, dim, index, source, reduce, include_self=True):
    dt = cx.out_dtype
    x, source = cx.tensor(x, dt), cx.tensor(source, dt)
    if x.type.rank == 0:
        y = index_reduce(cx, scalar_rank1(cx, x), 0, index, scalar_rank1(cx, source), reduce, include_self)
        return reshape(cx, y, ())
    ax = norm_dim(dim, x.type.rank)
    return cx.op("scatter", x, along(cx, index, source, ax), source, axis=ax,
                 reduce=_SCATTER_REDUCE[reduce], include_self=bool(include_self))


@aten("aten.index_copy.default")
def index_copy(cx, x, dim, index, source):
    dt = cx.out_dtype
    x, source = cx.tensor(x, dt), cx.tensor(source, dt)
    if x.type.rank == 0:
        return reshape(cx, index_copy(cx, scalar_rank1(cx, x), 0, index, scalar_rank1(cx, source)), ())
    ax = norm_dim(dim, x.type.rank)
    return cx.op("scatter", x, along(cx, index, source, ax), source, axis=ax)


@aten("aten.index_fill.int_Scalar", "aten.index_fill.int_Tensor")
def index_fill(cx, x, dim, index, value):
    dt = cx.out_dtype
    x1 = scalar_rank1(cx, cx.tensor(x, dt))
    ax = norm_dim(dim, x1.type.rank)
    y = cx.op("index_put", x1, cx.tensor(value, dt), scalar_rank1(cx, index), axes=(ax,))
    return reshape(cx, y, x.type.shape)


# -- advanced indexing --------------------------------------------------------------------------
def _indexed(indices):
    """(axes, index values) of a torch index list with None for full slices."""
    axes = tuple(i for i, t in enumerate(indices) if t is not None)
    return axes, [indices[i] for i in axes]


@aten("aten.index.Tensor", "aten._unsafe_index.Tensor", "aten._unsafe_index.Tensor_hacked_twin")
def index(cx, x, indices):
    axes, idx = _indexed(indices)
    if not axes:
        return x
    if any(i.type.dtype is DType.BOOL for i in idx):
        raise NotImplementedError("boolean-mask indexing has a data-dependent result shape")
    return cx.op("index", x, *[cx.tensor(i) for i in idx], axes=axes)


def _mask_put(cx, x: Value, ax: int, mask: Value, values: Value, accumulate: bool) -> Value:
    """x[..., mask, ...] = values (one bool mask over axes ax..ax+mask.rank) as a `where`.

    Only values that do not vary along the masked elements (torch's nnz dim of size 1 or absent)
    are supported, since the count of masked elements is data-dependent.
    """
    m, rank = mask.type.rank, x.type.rank
    rest = list(x.type.shape[ax + m:])
    vshape = list(values.type.shape)
    indexed_rank = ax + 1 + len(rest)
    if len(vshape) > indexed_rank:
        raise ValueError(f"values {values.type} have more dims than the indexed shape")
    vshape = [1] * (indexed_rank - len(vshape)) + vshape
    if vshape[ax] != 1:
        raise NotImplementedError("index_put of a boolean mask with one value per masked element")
    values = reshape(cx, values, vshape[:ax] + [1] * m + vshape[ax + 1:])
    mask = reshape(cx, mask, [1] * ax + list(mask.type.shape) + [1] * (rank - ax - m))
    if accumulate:
        values = cx.op("add", x, values)
    return cx.op("where", mask, values, x)


@aten("aten.index_put.default", "aten._unsafe_index_put.default", "aten._unsafe_index_put.hacked_twin",
      "aten.index_put.hacked_twin")
def index_put(cx, x, indices, values, accumulate=False):
    dt = cx.out_dtype
    x, values = cx.tensor(x, dt), cx.tensor(values, dt)
    axes, idx = _indexed(indices)
    if not axes:
        return cx.broadcast(values, x.type.shape)
    masks = [i for i in idx if i.type.dtype is DType.BOOL]
    if masks:
        if len(idx) != 1:
            raise NotImplementedError("index_put mixing a boolean mask with other indices")
        return _mask_put(cx, x, axes[0], idx[0], values, bool(accumulate))
    return cx.op("index_put", x, values, *idx, axes=axes, accumulate=bool(accumulate))


@aten("aten.masked_fill.Scalar", "aten.masked_fill.Tensor")
def masked_fill(cx, x, mask, value):
    dt = cx.out_dtype
    return cx.op("where", cx.tensor(mask, DType.BOOL), cx.tensor(value, dt), cx.tensor(x, dt))


def const_index(cx, values) -> Value:
    """An int64 index tensor constant."""
    arr = np.asarray(values, np.int64)
    return cx.constant_array(arr, DType.I64)


@aten("aten.slice_scatter.default")
def slice_scatter(cx, x, src, dim=0, start=None, end=None, step=1):
    dt = cx.out_dtype
    x, src = cx.tensor(x, dt), cx.tensor(src, dt)
    ax, s, e, step = slice_bounds(x, dim, start, end, step)
    if (s, e, step) == (0, size(x, ax), 1):
        return cx.broadcast(src, x.type.shape)
    return cx.op("index_put", x, src, const_index(cx, np.arange(s, e, step)), axes=(ax,))


@aten("aten.select_scatter.default")
def select_scatter(cx, x, src, dim, index):
    dt = cx.out_dtype
    x, src = cx.tensor(x, dt), cx.tensor(src, dt)
    ax = norm_dim(dim, x.type.rank)
    i = static_int(index)
    i = i + size(x, ax) if i < 0 else i
    return cx.op("index_put", x, unsqueeze(cx, src, ax), const_index(cx, [i]), axes=(ax,))


def diagonal_index(cx, x: Value, offset, dim1, dim2):
    """(row, col) index tensors and axes of the diagonal of x over (dim1, dim2)."""
    r = x.type.rank
    a, b = norm_dim(dim1, r), norm_dim(dim2, r)
    off = static_int(offset)
    n = max(0, min(size(x, a) + min(off, 0), size(x, b) - max(off, 0)))
    rows = np.arange(n, dtype=np.int64) - min(off, 0)
    cols = np.arange(n, dtype=np.int64) + max(off, 0)
    (a, rows), (b, cols) = sorted([(a, rows), (b, cols)], key=lambda p: p[0])
    return (a, b), rows, cols


@aten("aten.diagonal.default", "aten.diagonal_copy.default")
def diagonal(cx, x, offset=0, dim1=0, dim2=1):
    (a, b), rows, cols = diagonal_index(cx, x, offset, dim1, dim2)
    if len(rows) == 0:
        return cx.op("full", shape=cx.out_type.shape, value=0, dtype=x.type.dtype)
    y = cx.op("index", x, const_index(cx, rows), const_index(cx, cols), axes=(a, b))
    # numpy puts the diagonal where the axes were when adjacent, first otherwise; torch puts it last
    pos = a if b == a + 1 else 0
    r = y.type.rank
    return transpose(cx, y, [d for d in range(r) if d != pos] + [pos])


@aten("aten.diagonal_scatter.default")
def diagonal_scatter(cx, x, src, offset=0, dim1=0, dim2=1):
    dt = cx.out_dtype
    x, src = cx.tensor(x, dt), cx.tensor(src, dt)
    (a, b), rows, cols = diagonal_index(cx, x, offset, dim1, dim2)
    if len(rows) == 0:
        return x
    # src has the diagonal last; index_put wants it where numpy's advanced indexing puts it
    pos = a if b == a + 1 else 0
    r = src.type.rank
    src = transpose(cx, src, list(range(pos)) + [r - 1] + list(range(pos, r - 1)))
    return cx.op("index_put", x, src, const_index(cx, rows), const_index(cx, cols), axes=(a, b))


@aten("aten.unfold.default", "aten.unfold_copy.default")
def unfold(cx, x, dimension, size_, step):
    x1 = scalar_rank1(cx, x)
    ax = norm_dim(dimension, x.type.rank)
    n, k, s = size(x1, ax), static_int(size_), static_int(step)
    windows = (n - k) // s + 1
    idx = np.arange(windows, dtype=np.int64)[:, None] * s + np.arange(k, dtype=np.int64)[None, :]
    y = cx.op("take", x1, const_index(cx, idx), axis=ax)
    r = y.type.rank
    perm = [d for d in range(r) if d != ax + 1] + [ax + 1]
    y = transpose(cx, y, perm)
    return reshape(cx, y, (k,)) if x.type.rank == 0 else y


# -- sorting ------------------------------------------------------------------------------------
@aten("aten.sort.default")
def sort(cx, x, dim=-1, descending=False):
    ax = norm_dim(dim, x.type.rank) if x.type.rank else 0
    return cx.ops("sort", x, axis=ax, descending=bool(descending))


@aten("aten.sort.stable")
def sort_stable(cx, x, *, stable=None, dim=-1, descending=False):
    return sort(cx, x, dim, descending)


@aten("aten.argsort.default")
def argsort(cx, x, dim=-1, descending=False):
    return sort(cx, x, dim, descending)[1]


@aten("aten.argsort.stable")
def argsort_stable(cx, x, *, stable=False, dim=-1, descending=False):
    return argsort(cx, x, dim, descending)


@aten("aten.msort.default")
def msort(cx, x):
    return sort(cx, x, 0)[0]


@aten("aten.topk.default")
def topk(cx, x, k, dim=-1, largest=True, sorted=True):
    ax = norm_dim(dim, x.type.rank) if x.type.rank else 0
    return cx.ops("topk", x, k=static_int(k), axis=ax, largest=bool(largest))
