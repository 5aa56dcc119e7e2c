"""C++ rules of constants and factories: constant/dense/scalar as file-scope arrays, full, arange."""
from __future__ import annotations

import numpy as np

from xcomp.backends.cpp.lower import c_literal, rule, shape_of, store
from xcomp.backends.cpp.sizes import Sz, dim
from xcomp.ops.factory import fill_value


@rule("constant", "dense")
def _constant(lw, op, args):
    t = op.results[0].type
    value = np.asarray(op.attrs["value"]).astype(t.dtype.np if t.dtype.name != "BF16" else np.float32)
    shape = shape_of(t)
    if any(isinstance(d, Sz) for d in shape) and value.size == 1:   # a splat over run-time sizes
        y = lw.out(op)
        lw.emit(f"xc_fill<{y.sty}>({y.ptr}, {y.numel}, {_lit(y, value.reshape(-1)[0].item())});")
        return [y]
    b = lw.constant(t.dtype, np.broadcast_to(value, shape))
    return [b]


def _lit(y, v) -> str:
    if y.dtype.is_float:
        return f"xc_from<{y.sty}>((double)({c_literal(y.dtype.__class__.F64, float(v))}))"
    return f"({y.sty})({c_literal(y.dtype, v)})"


@rule("scalar")
def _scalar(lw, op, args):
    t = op.results[0].type
    return [lw.constant(t.dtype, np.asarray(op.attrs["value"]))]


@rule("full")
def _full(lw, op, args):
    y = lw.out(op)
    v = np.asarray(fill_value(op.attrs["value"], y.dtype)).reshape(-1)[0].item()
    lw.emit(f"xc_fill<{y.sty}>({y.ptr}, {y.numel}, {_lit(y, v)});")
    return [y]


@rule("arange")
def _arange(lw, op, args):
    t = op.results[0].type
    if not t.is_static:   # integer start and step (type inference requires it), run-time length
        y = lw.out(op)
        start, step = dim(op.attrs["start"]), int(op.attrs["step"])
        lw.emit(f"for (int64_t i = 0; i < {y.numel}; ++i) {y.ptr}[i] = {store(y.dtype, f'({start} + {step} * i)')};")
        return [y]
    from xcomp.ops.registry import REGISTRY
    (value,) = REGISTRY["xc.arange"].reference([], op.attrs, [t])
    return [lw.constant(t.dtype, np.asarray(value).astype(t.dtype.np))]


@rule("size")
def _size(lw, op, args):
    from xcomp.errors import LoweringError
    v = op.attrs["value"]
    if isinstance(v, str):   # the size at run time
        y = lw.out(op)
        lw.emit(f"{y.ptr}[0] = ({y.sty})({dim(v)});")
        return [y]
    if not isinstance(v, (int, np.integer)):
        raise LoweringError(f"xc.size of {v!r}: not a size")
    return [lw.constant(op.results[0].type.dtype, np.asarray(int(v)))]
