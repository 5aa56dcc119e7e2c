"""Core ML lowerings of constants, factories and indexing by gathers."""
from __future__ import annotations

import numpy as np
from coremltools.converters.mil import Builder as mb

from xcomp.backends.coreml.elementwise import as_dtype, select
from xcomp.backends.coreml.shape import slice_axis
from xcomp.backends.coreml.sizes import has_symbolic, run_sizes
from xcomp.backends.coreml.table import const, dtype_name, lowers, mil_dtype, scalar_like, unsupported
from xcomp.ir import symbolic as sym
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


def _wrap(idx, n):
    """Negative indices counted from the end (int32); `n` an int or a symbolic size (IR dim)."""
    idx = as_dtype(idx, "int32")
    n = run_sizes().scalar(n) if isinstance(n, str) else np.int32(n)
    return select(cond=mb.less(x=idx, y=np.int32(0)), a=mb.add(x=idx, y=n), b=idx)


def _ir_dim(axis: int):
    """The IR size of the first operand's `axis` (symbolic or not) of the op being lowered."""
    return run_sizes().operand_types[0].shape[axis]


def _gather_any(x, idx, axis):
    """mb.gather on every dtype (bools gathered as int32)."""
    if dtype_name(x) == "bool":
        return mb.cast(x=mb.gather(x=mb.cast(x=x, dtype="int32"), indices=idx, axis=axis), dtype="bool")
    return mb.gather(x=x, indices=idx, axis=axis)


@lowers("take")
def _take(args, attrs, out):
    x, idx = args
    axis = attrs["axis"] % x.rank
    return _gather_any(x, _wrap(idx, _ir_dim(axis)), axis)


@lowers("gather")
def _gather(args, attrs, out):
    x, idx = args
    if 0 in idx.shape:
        raise unsupported("gather", "empty index")
    axis = attrs["axis"] % x.rank
    x_dims, idx_dims = (t.shape for t in run_sizes().operand_types[:2])   # IR sizes (maybe symbolic)
    for d in range(x.rank):
        if d != axis and idx_dims[d] != x_dims[d]:
            x = slice_axis(x, d, 0, idx_dims[d])
    idx = _wrap(idx, _ir_dim(axis))
    if dtype_name(x) == "bool":
        y = mb.gather_along_axis(x=mb.cast(x=x, dtype="int32"), indices=idx, axis=axis)
        return mb.cast(x=y, dtype="bool")
    return mb.gather_along_axis(x=x, indices=idx, axis=axis)


@lowers("index")
def _index(args, attrs, out):
    """x[i0, i1, ...] on `axes`: the indexed axes moved to the front and merged, one gather of the
    flat index (sum of index * stride, broadcast), and the index dims moved where numpy puts them."""
    x, idxs, axes = args[0], list(args[1:]), [a % args[0].rank for a in attrs["axes"]]
    dims = list(run_sizes().operand_types[0].shape)       # IR sizes: ints or symbolic expressions
    rest = [d for d in range(x.rank) if d not in axes]
    if axes != list(range(len(axes))):
        x = mb.transpose(x=x, perm=axes + rest)
    flat = None
    stride = 1
    for idx, n in reversed(list(zip(idxs, [dims[a] for a in axes]))):
        term = _wrap(idx, n)
        if stride != 1:
            term = mb.mul(x=term, y=run_sizes().scalar(stride))
        flat = term if flat is None else mb.add(x=flat, y=term)
        stride = sym.mul(stride, n)
    target = [stride] + [dims[d] for d in rest]
    merged = x if len(axes) == 1 else mb.reshape(x=x, shape=run_sizes().shape(target)) if has_symbolic(target) \
        else mb.reshape(x=x, shape=np.array(target, np.int32))
    y = _gather_any(merged, flat, 0)
    adjacent = axes == list(range(axes[0], axes[0] + len(axes)))
    k = y.rank - len(rest)
    if adjacent and axes[0] > 0:
        lead = list(range(k, k + axes[0]))
        y = mb.transpose(x=y, perm=lead + list(range(k)) + list(range(k + axes[0], y.rank)))
    return y
