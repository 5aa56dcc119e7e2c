"""Indexing ops: take, gather, scatter, advanced index / index_put, sort and topk.

Index operands are integer tensors; negative indices count from the end of their axis. `index`
and `index_put` take one index tensor per axis listed in `axes` (numpy advanced indexing with full
slices on the other axes: the broadcast index dims replace the indexed axes in place when those are
adjacent, and go first otherwise).
"""
from __future__ import annotations

import enum

import numpy as np

from xcomp.ir.types import DType, TensorType, broadcast_shapes
from xcomp.ops.registry import AttrKind, Trait, attr, define, req
from xcomp.ops.shape import check_axes, check_axis, tensor_operands

PURE = Trait.PURE


def _int_index(t: TensorType, name: str):
    if not t.dtype.is_int:
        raise TypeError(f"xc.{name} needs integer indices, got {t}")


# -- take ---------------------------------------------------------------------------------------
def _take_infer(types, a):
    tensor_operands(types, "take")
    x, idx = types
    ax = check_axis(a["axis"], x.rank, "take")
    _int_index(idx, "take")
    return [x.with_shape(x.shape[:ax] + idx.shape + x.shape[ax + 1:])]


define("take", _take_infer, lambda args, a, out: [np.take(args[0], args[1], axis=a["axis"])],
       attrs={"axis": req(AttrKind.INT)}, traits=(PURE,), operands=2,
       doc="Select entries of `axis` by an index tensor of any shape (index_select, embedding).")


# -- gather -------------------------------------------------------------------------------------
def _gather_infer(types, a):
    tensor_operands(types, "gather")
    x, idx = types
    ax = check_axis(a["axis"], x.rank, "gather")
    _int_index(idx, "gather")
    if idx.is_static and idx.numel == 0:
        return [x.with_shape(idx.shape)]     # torch accepts an empty index of any rank
    if idx.rank != x.rank:
        raise ValueError(f"xc.gather: index {idx} must have the rank of {x}")
    for d in range(x.rank):
        if d != ax and isinstance(idx.shape[d], int) and isinstance(x.shape[d], int) \
                and idx.shape[d] > x.shape[d]:
            raise ValueError(f"xc.gather: index {idx} larger than {x} on axis {d}")
    return [x.with_shape(idx.shape)]


def _leading(x: np.ndarray, shape, skip: int) -> np.ndarray:
    """x cut to `shape` on every axis but `skip` (torch gather/scatter use only that corner)."""
    return x[tuple(slice(None) if d == skip else slice(0, n) for d, n in enumerate(shape))]


def _gather_ref(args, a, out):
    x, idx = args
    ax = a["axis"]
    if idx.size == 0:
        return [np.zeros(idx.shape, x.dtype)]
    return [np.take_along_axis(_leading(x, idx.shape, ax), idx.astype(np.int64), axis=ax)]


define("gather", _gather_infer, _gather_ref, attrs={"axis": req(AttrKind.INT)}, traits=(PURE,),
       operands=2, doc="torch.gather: out[i][j][k] = x[i][index[i][j][k]][k] for axis 1.")


# -- scatter ------------------------------------------------------------------------------------
class ScatterReduce(enum.Enum):
    NONE = "none"          # plain assignment (duplicates: one of the values)
    ADD = "add"
    MULTIPLY = "multiply"
    AMAX = "amax"
    AMIN = "amin"
    MEAN = "mean"


def _scatter_infer(types, a):
    tensor_operands(types, "scatter")
    x, idx, src = types
    ax = check_axis(a["axis"], x.rank, "scatter")
    _int_index(idx, "scatter")
    if src.dtype != x.dtype:
        raise TypeError(f"xc.scatter needs src of the dtype of {x}, got {src}")
    if not (idx.rank == src.rank == x.rank):
        raise ValueError(f"xc.scatter: {x}, index {idx} and src {src} need one rank")
    for d in range(x.rank):
        i, s, n = idx.shape[d], src.shape[d], x.shape[d]
        if all(isinstance(v, int) for v in (i, s, n)) and (i > s or (d != ax and i > n)):
            raise ValueError(f"xc.scatter: index {idx} larger than src {src} or {x} on axis {d}")
    return [x]


def scatter_coords(index: np.ndarray, axis: int) -> tuple[np.ndarray, ...]:
    """Target coordinates of every index entry: its own position, with `axis` replaced by its value."""
    grid = list(np.indices(index.shape, sparse=True))
    grid[axis] = index
    return tuple(np.broadcast_to(g, index.shape) for g in grid)


_UFUNC = {ScatterReduce.ADD: np.add, ScatterReduce.MULTIPLY: np.multiply,
          ScatterReduce.AMAX: np.maximum, ScatterReduce.AMIN: np.minimum, ScatterReduce.MEAN: np.add}


def identity(reduce: ScatterReduce, dtype: np.dtype):
    """The value a reduction starts from when `include_self` is false."""
    if reduce in (ScatterReduce.ADD, ScatterReduce.MEAN):
        return np.zeros((), dtype)
    if reduce is ScatterReduce.MULTIPLY:
        return np.ones((), dtype)
    info = np.finfo(dtype) if dtype.kind == "f" else np.iinfo(dtype) if dtype.kind in "iu" else None
    big = (np.inf if dtype.kind == "f" else info.max) if info is not None else True
    small = (-np.inf if dtype.kind == "f" else info.min) if info is not None else False
    return np.asarray(small if reduce is ScatterReduce.AMAX else big, dtype)


def _scatter_ref(args, a, out):
    x, idx, src = args
    ax, reduce = a["axis"], a["reduce"]
    y = x.copy()
    if idx.size == 0:
        return [y]
    idx = np.where(idx < 0, idx + x.shape[ax], idx).astype(np.int64)
    coords = scatter_coords(idx, ax)
    vals = _leading(src, idx.shape, -1)
    if reduce is ScatterReduce.NONE:
        y[coords] = vals
        return [y]
    if not a["include_self"]:
        y[coords] = identity(reduce, y.dtype)
    _UFUNC[reduce].at(y, coords, vals)
    if reduce is ScatterReduce.MEAN:
        count = np.full(x.shape, 1 if a["include_self"] else 0, np.int64)
        np.add.at(count, coords, 1)
        count = np.maximum(count, 1)
        y = (y / count) if y.dtype.kind == "f" else np.floor_divide(y, count)
        y = y.astype(x.dtype)
    return [y]


define("scatter", _scatter_infer, _scatter_ref,
       attrs={"axis": req(AttrKind.INT),
              "reduce": attr(AttrKind.ENUM, ScatterReduce.NONE, enum=ScatterReduce),
              "include_self": attr(AttrKind.BOOL, True)},
       traits=(PURE,), operands=3,
       doc="torch.scatter / scatter_reduce: x with src[p] combined into x[p with axis := index[p]] "
           "for every position p of index.")


# -- advanced index / index_put -----------------------------------------------------------------
def index_result_shape(x: TensorType, idx_shapes, axes) -> tuple:
    """numpy's result shape of x[...] with index arrays at `axes` and full slices elsewhere."""
    b = broadcast_shapes(*idx_shapes)
    rest = [x.shape[d] for d in range(x.rank) if d not in axes]
    adjacent = list(axes) == list(range(axes[0], axes[0] + len(axes)))
    if adjacent:
        return tuple(x.shape[:axes[0]]) + tuple(b) + tuple(x.shape[axes[-1] + 1:])
    return tuple(b) + tuple(rest)


def _check_index(x, idx_types, axes, name):
    if not axes or len(axes) != len(idx_types):
        raise ValueError(f"xc.{name}: {len(idx_types)} index tensors for axes {tuple(axes)}")
    check_axes(axes, x.rank, name)
    if list(axes) != sorted(axes):
        raise ValueError(f"xc.{name}: axes {tuple(axes)} must be increasing")
    for t in idx_types:
        _int_index(t, name)


def _index_infer(types, a):
    tensor_operands(types, "index")
    x, idx = types[0], types[1:]
    _check_index(x, idx, a["axes"], "index")
    return [x.with_shape(index_result_shape(x, [t.shape for t in idx], a["axes"]))]


def index_tuple(ndim: int, axes, indices) -> tuple:
    """The numpy indexing tuple: index arrays at `axes`, full slices elsewhere."""
    full: list = [slice(None)] * ndim
    for ax, i in zip(axes, indices):
        full[ax] = i
    return tuple(full)


define("index", _index_infer,
       lambda args, a, out: [args[0][index_tuple(args[0].ndim, a["axes"], args[1:])]],
       attrs={"axes": req(AttrKind.INTS)}, traits=(PURE,),
       doc="Advanced indexing (aten.index.Tensor): operands x, then one integer index per axis in `axes`.")


def _index_put_infer(types, a):
    tensor_operands(types, "index_put")
    x, v, idx = types[0], types[1], types[2:]
    _check_index(x, idx, a["axes"], "index_put")
    if v.dtype != x.dtype:
        raise TypeError(f"xc.index_put needs values of the dtype of {x}, got {v}")
    target = index_result_shape(x, [t.shape for t in idx], a["axes"])
    if broadcast_shapes(target, v.shape) != tuple(target):
        raise ValueError(f"xc.index_put: values {v} do not broadcast to the indexed shape {target}")
    return [x]


def _index_put_ref(args, a, out):
    x, v, idx = args[0], args[1], args[2:]
    y = x.copy()
    tup = index_tuple(x.ndim, a["axes"], idx)
    if a["accumulate"]:
        np.add.at(y, tup, np.broadcast_to(v, y[tup].shape))
    else:
        y[tup] = v
    return [y]


define("index_put", _index_put_infer, _index_put_ref,
       attrs={"axes": req(AttrKind.INTS), "accumulate": attr(AttrKind.BOOL, False)}, traits=(PURE,),
       doc="x with x[indices] set to (or, with accumulate, incremented by) values: operands x, "
           "values, then one integer index per axis in `axes`.")


# -- sort / topk --------------------------------------------------------------------------------
def sort_indices(x: np.ndarray, axis: int, descending: bool) -> np.ndarray:
    """Stable argsort; descending keeps equal elements in their original order (NaN sorts largest)."""
    if not descending:
        return np.argsort(x, axis=axis, kind="stable")
    r = np.argsort(np.flip(x, axis), axis=axis, kind="stable")
    return np.flip(x.shape[axis] - 1 - r, axis)


def _sort_infer(types, a):
    tensor_operands(types, "sort")
    x = types[0]
    if x.rank:
        check_axis(a["axis"], x.rank, "sort")
    return [x, x.with_dtype(DType.I64)]


def _sort_ref(args, a, out):
    x = args[0]
    if x.ndim == 0:
        return [x.copy(), np.zeros((), np.int64)]
    i = sort_indices(x, a["axis"], a["descending"])
    return [np.take_along_axis(x, i, a["axis"]), i]


define("sort", _sort_infer, _sort_ref,
       attrs={"axis": req(AttrKind.INT), "descending": attr(AttrKind.BOOL, False)}, traits=(PURE,),
       operands=1, doc="Stable sort along `axis`: (values, int64 indices).")


def _topk_infer(types, a):
    tensor_operands(types, "topk")
    x, k = types[0], a["k"]
    if x.rank == 0:
        if k > 1:
            raise ValueError(f"xc.topk: k={k} for a 0-d tensor")
        return [x, x.with_dtype(DType.I64)]
    ax = check_axis(a["axis"], x.rank, "topk")
    n = x.shape[ax]
    if k < 0 or (isinstance(n, int) and k > n):
        raise ValueError(f"xc.topk: k={k} out of range for size {n}")
    shape = list(x.shape)
    shape[ax] = k
    return [x.with_shape(shape), x.with_shape(shape).with_dtype(DType.I64)]


def _topk_ref(args, a, out):
    x = args[0]
    if x.ndim == 0:
        return [x.copy(), np.zeros((), np.int64)]
    ax = a["axis"]
    i = np.take(sort_indices(x, ax, a["largest"]), np.arange(a["k"]), axis=ax)
    return [np.take_along_axis(x, i, ax), i]


define("topk", _topk_infer, _topk_ref,
       attrs={"k": req(AttrKind.INT), "axis": req(AttrKind.INT), "largest": attr(AttrKind.BOOL, True)},
       traits=(PURE,), operands=1,
       doc="The k largest (or smallest) entries along `axis`, sorted: (values, int64 indices).")
