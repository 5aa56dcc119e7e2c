"""Core ML lowerings of constants, factories and indexing by gathers."""
from __future__ import annotations

import numpy as np
from coremltools.converters.mil import Builder as mb

from xcomp.backends.coreml.elementwise import as_dtype, select
from xcomp.backends.coreml.shape import slice_axis
from xcomp.backends.coreml.sizes import has_symbolic, run_sizes
from xcomp.backends.coreml.table import const, dtype_name, lowers, mil_dtype, scalar_like, unsupported
from xcomp.ir.types import TensorType


def _static(out, name):
    if not (isinstance(out, TensorType) and out.is_static):
        raise unsupported(name, f"result type {out} is not a static tensor")
    return tuple(out.shape)


@lowers("constant", "dense")
def _constant(args, attrs, out):
    return mb.const(val=const(np.broadcast_to(attrs["value"], _static(out[0], "constant")), out[0]))


@lowers("scalar")
def _scalar(args, attrs, out):
    return mb.const(val=const(attrs["value"], out[0].dtype))


@lowers("full")
def _full(args, attrs, out):
    if not has_symbolic(out[0].shape):
        return mb.const(val=const(np.full(_static(out[0], "full"), attrs["value"]), out[0]))
    # a symbolic shape: mb.fill at run time (bools filled as int32 and cast: fill has no bool)
    value = const(attrs["value"], out[0])
    shape = run_sizes().shape(out[0].shape, one_unknown_as_minus_one=False)
    if value.dtype == np.bool_:
        return mb.cast(x=mb.fill(shape=shape, value=np.int32(value)), dtype="bool")
    return mb.fill(shape=shape, value=value)


@lowers("arange")
def _arange(args, attrs, out):
    a = attrs
    if not any(isinstance(a[k], str) for k in ("start", "end")):
        n = _static(out[0], "arange")[0]
        return mb.const(val=const(a["start"] + a["step"] * np.arange(n, dtype=np.float64), out[0]))
    # symbolic bounds (integers, op definition): mb.range_1d on int32 sizes, cast to the result dtype
    sizes = run_sizes()
    y = mb.range_1d(start=sizes.scalar(a["start"]), end=sizes.scalar(a["end"]), step=np.int32(a["step"]))
    return as_dtype(y, mil_dtype(out[0]))


@lowers("size")
def _size(args, attrs, out):
    """A size as a 0-d value: a constant, or the int32 arithmetic of its names (`sizes.py`)."""
    v = run_sizes().scalar(attrs["value"]) if isinstance(attrs["value"], str) else np.int32(attrs["value"])
    if isinstance(v, np.integer):
        return mb.const(val=const(int(v), out[0]))
    return as_dtype(v, mil_dtype(out[0]))


def _wrap(idx, n: int):
    """Negative indices counted from the end (int32)."""
    idx = as_dtype(idx, "int32")
    return select(cond=mb.less(x=idx, y=np.int32(0)), a=mb.add(x=idx, y=np.int32(n)), b=idx)


def _gather_any(x, idx, axis):
    """mb.gather on every dtype (bools gathered as int32)."""
    if dtype_name(x) == "bool":
        return mb.cast(x=mb.gather(x=mb.cast(x=x, dtype="int32"), indices=idx, axis=axis), dtype="bool")
    return mb.gather(x=x, indices=idx, axis=axis)


@lowers("take")
def _take(args, attrs, out):
    x, idx = args
    axis = attrs["axis"] % x.rank
    return _gather_any(x, _wrap(idx, x.shape[axis]), axis)


@lowers("gather")
def _gather(args, attrs, out):
    x, idx = args
    if 0 in idx.shape:
        raise unsupported("gather", "empty index")
    axis = attrs["axis"] % x.rank
    for d in range(x.rank):
        if d != axis and idx.shape[d] != x.shape[d]:
            x = slice_axis(x, d, 0, idx.shape[d])
    idx = _wrap(idx, x.shape[axis])
    if dtype_name(x) == "bool":
        y = mb.gather_along_axis(x=mb.cast(x=x, dtype="int32"), indices=idx, axis=axis)
        return mb.cast(x=y, dtype="bool")
    return mb.gather_along_axis(x=x, indices=idx, axis=axis)


@lowers("index")
def _index(args, attrs, out):
    """x[i0, i1, ...] on `axes`: the indexed axes moved to the front and merged, one gather of the
    flat index (sum of index * stride, broadcast), and the index dims moved where numpy puts them."""
    x, idxs, axes = args[0], list(args[1:]), [a % args[0].rank for a in attrs["axes"]]
    if any(isinstance(d, str) for d in x.shape):
        raise unsupported("index", "symbolic input dims")
    rest = [d for d in range(x.rank) if d not in axes]
    if axes != list(range(len(axes))):
        x = mb.transpose(x=x, perm=axes + rest)
    sizes = [args[0].shape[a] for a in axes]
    flat = None
    stride = 1
    for idx, n in reversed(list(zip(idxs, sizes))):
        term = _wrap(idx, n)
        term = term if stride == 1 else mb.mul(x=term, y=np.int32(stride))
        flat = term if flat is None else mb.add(x=flat, y=term)
        stride *= n
    rest_shape = [args[0].shape[d] for d in rest]
    merged = mb.reshape(x=x, shape=np.array([stride] + rest_shape, np.int32)) if len(axes) != 1 else x
    y = _gather_any(merged, flat, 0)
    adjacent = axes == list(range(axes[0], axes[0] + len(axes)))
    k = y.rank - len(rest)
    if adjacent and axes[0] > 0:
        lead = list(range(k, k + axes[0]))
        y = mb.transpose(x=y, perm=lead + list(range(k)) + list(range(k + axes[0], y.rank)))
    return y
