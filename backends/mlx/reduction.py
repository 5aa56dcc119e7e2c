"""MLX lowerings of reductions and scans: one table line per op. (`var` has no entry: the
decompose pass writes it with mean, sub, mul and sum.)"""
from __future__ import annotations

from xcomp.backends.mlx.table import mx  # None where MLX is missing: source emission needs no MLX

from xcomp.backends.mlx.table import Expr, lowers, names
from xcomp.ops.reduction import normalize_axes


def _reduce_params(a, ins, outs):
    return {"axis": list(normalize_axes(a["axes"], ins[0].ndim)), "keepdims": a["keepdim"]}


names({"sum": "sum", "prod": "prod", "mean": "mean"}, _reduce_params, cast="changed")  # bool/int sums
names({"amax": "max", "amin": "min", "any": "any", "all": "all", "logsumexp": "logsumexp"}, _reduce_params)


def arg_reduce(x, fn, axis, keepdims, shape):
    """argmax/argmin (`fn`) along `axis`, or over every element when axis is None."""
    if axis is None or x.ndim == 0:
        return fn(x.reshape(-1), axis=0).reshape(shape)
    return fn(x, axis=axis, keepdims=keepdims)


def scan(x, fn, axis):
    """A cumulative op (`fn`) along `axis`; a 0-d operand is its own scan."""
    return x if x.ndim == 0 else fn(x, axis=axis)


def _arg_params(fn):
    return lambda a, ins, outs: {"fn": Expr(fn), "axis": a["axis"], "keepdims": a["keepdim"],
                                 "shape": tuple(outs[0].shape)}


def _scan_params(fn):
    return lambda a, ins, outs: {"fn": Expr(fn), "axis": a["axis"] % max(ins[0].ndim, 1)}


lowers("argmax", arg_reduce, _arg_params("mx.argmax"), cast="always")   # MLX indexes in uint32
lowers("argmin", arg_reduce, _arg_params("mx.argmin"), cast="always")
lowers("cumsum", scan, _scan_params("mx.cumsum"), cast="changed")
lowers("cumprod", scan, _scan_params("mx.cumprod"), cast="changed")
