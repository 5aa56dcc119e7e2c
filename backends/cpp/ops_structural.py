"""C++ rules of constants and factories: constant/dense/scalar as file-scope arrays, full, arange."""
from __future__ import annotations

import numpy as np

from xcomp.backends.cpp.lower import c_literal, rule, shape_of
from xcomp.ops.factory import fill_value


@rule("constant", "dense")
def _constant(lw, op, args):
    t = op.results[0].type
    value = np.asarray(op.attrs["value"]).astype(t.dtype.np if t.dtype.name != "BF16" else np.float32)
    b = lw.constant(t.dtype, np.broadcast_to(value, shape_of(t)))
    return [b]


@rule("scalar")
def _scalar(lw, op, args):
    t = op.results[0].type
    return [lw.constant(t.dtype, np.asarray(op.attrs["value"]))]


@rule("full")
def _full(lw, op, args):
    y = lw.out(op)
    v = np.asarray(fill_value(op.attrs["value"], y.dtype)).reshape(-1)[0].item()
    if y.dtype.is_float:
        lit = f"xc_from<{y.sty}>((double)({c_literal(y.dtype.__class__.F64, float(v))}))"
    else:
        lit = f"({y.sty})({c_literal(y.dtype, v)})"
    lw.emit(f"xc_fill<{y.sty}>({y.ptr}, {y.numel}, {lit});")
    return [y]


@rule("arange")
def _arange(lw, op, args):
    t = op.results[0].type
    from xcomp.ops.registry import REGISTRY
    (value,) = REGISTRY["xc.arange"].reference([], op.attrs, [t])
    return [lw.constant(t.dtype, np.asarray(value).astype(t.dtype.np))]


@rule("size")
def _size(lw, op, args):
    from xcomp.errors import LoweringError
    v = op.attrs["value"]
    if not isinstance(v, (int, np.integer)):
        raise LoweringError(f"xc.size of the symbolic size {v}: the cpp target needs static shapes")
    return [lw.constant(op.results[0].type.dtype, np.asarray(int(v)))]
