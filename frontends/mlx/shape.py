"""Shape primitives: reshapes (Reshape, Squeeze, ExpandDims, Flatten, Unflatten), Broadcast, Full,
Transpose, Slice, Split, Concatenate, Pad, Arange, NumberOfElements, AsStrided.

Every reshape-like primitive becomes `xc.reshape` to the shape the event reports (its arguments may
hold -1 or axes); shapes are never recomputed here.
"""
from __future__ import annotations

import numpy as np

from xcomp.frontends.mlx.table import Unsupported, primitive
from xcomp.ir import symbolic as sym
from xcomp.ir.types import DType

RESHAPES = ("Reshape", "Squeeze", "ExpandDims", "Flatten", "Unflatten")


def _to_event_shape(cx, inputs, args):
    return [cx.reshape(inputs[0], cx.out.shape)]


for _name in RESHAPES:
    primitive(_name, "reshape")(_to_event_shape)


@primitive("Broadcast", "broadcast_to")
def broadcast(cx, inputs, args):
    x = inputs[0]
    return [x if tuple(x.type.shape) == tuple(cx.out.shape) else cx.op("broadcast_to", x, shape=cx.out.shape)]


@primitive("Full", "broadcast_to")
def full(cx, inputs, args):
    return broadcast(cx, inputs, args)


@primitive("BroadcastAxes", "broadcast_to")
def broadcast_axes(cx, inputs, args):
    return broadcast(cx, inputs[:1], args)


@primitive("Transpose", "transpose")
def transpose(cx, inputs, args):
    perm = tuple(args[0])
    if perm == tuple(range(len(perm))):
        return [inputs[0]]
    return [cx.op("transpose", inputs[0], perm=perm)]


def slice_axes(cx, x, starts, ends, strides):
    """x[start:end:stride] on every axis, one `xc.slice` per axis that is not whole."""
    for ax, (s, e, st) in enumerate(zip(starts, ends, strides)):
        n = x.type.shape[ax]
        if st < 0:
            raise Unsupported("a slice with a negative stride")
        if any(isinstance(v, str) for v in (s, e, n)):  # symbolic: bounds as given, guarded by inference
            if (s, e, st) != (0, n, 1):
                x = cx.op("slice", x, axis=ax, start=s, end=e, step=st)
            continue
        s, e = max(0, min(s, n)), max(0, min(e, n))
        if (s, e, st) != (0, n, 1):
            x = cx.op("slice", x, axis=ax, start=s, end=max(s, e), step=st)
    return x


@primitive("Slice", "slice")
def slice_(cx, inputs, args):
    return [slice_axes(cx, inputs[0], *args)]


@primitive("Split", "slice")
def split(cx, inputs, args):
    indices, axis = list(args[0]), args[1]
    x = inputs[0]
    n = x.type.shape[axis]
    bounds = [0] + indices + [n]
    return [cx.op("slice", x, axis=axis, start=lo, end=hi) for lo, hi in zip(bounds, bounds[1:])]


@primitive("Concatenate", "concat")
def concatenate(cx, inputs, args):
    from xcomp.frontends.mlx.elementwise import one_dtype
    return [cx.op("concat", *one_dtype(cx, inputs), axis=args[0] % cx.out.rank)]


@primitive("Pad", "pad")
def pad(cx, inputs, args):
    axes, lo, hi = args
    x, value = inputs
    fill = cx.known(value)
    if fill is None:
        raise Unsupported("a pad value computed inside the function (pad with a constant)")
    widths = [(0, 0)] * x.type.rank
    for ax, l, h in zip(axes, lo, hi):
        widths[ax % x.type.rank] = (l, h)
    pads = [p for lo_hi in reversed(widths) for p in lo_hi]  # torch order: last axis first
    return [cx.op("pad", x, pads=tuple(pads), value=float(np.asarray(fill, np.float64)))]


@primitive("Arange", "arange")
def arange(cx, inputs, args):
    start, stop, step = args
    dt = cx.out.dtype
    n = cx.out.shape[0]
    if isinstance(n, str) or any(isinstance(v, str) for v in args):  # a symbolic length
        if any(isinstance(v, float) and not v.is_integer() for v in (start, step)):
            raise Unsupported("an arange of symbolic length with a fractional start or step")
        start, step = int(start), int(step)
        return [cx.op("arange", start=start, end=sym.add(start, sym.mul(step, n)), step=step, dtype=dt)]
    if dt.is_int and all(float(v).is_integer() for v in args):
        start, stop, step = int(start), int(stop), int(step)
    return [cx.op("arange", start=start, end=start + step * n, step=step, dtype=dt)]


@primitive("NumberOfElements", "constant, size, div (symbolic sizes)")
def number_of_elements(cx, inputs, args):
    axes, inverted, _ = args
    shape = inputs[0].type.shape
    if any(not isinstance(shape[a], int) for a in axes):  # a size known at run time (xc.size)
        n = cx.cast(cx.op("size", value=sym.product([shape[a] for a in axes]), dtype=DType.I64), cx.out.dtype)
        return [cx.op("div", cx.const(1, cx.out.dtype), n) if inverted else n]
    n = int(np.prod([shape[a] for a in axes], dtype=np.int64))
    return [cx.const(1.0 / n if inverted else n, cx.out.dtype)]


@primitive("AsStrided", "reshape, take")
def as_strided(cx, inputs, args):
    shape, strides, offset = args
    flat = cx.reshape(inputs[0], (inputs[0].type.numel,))
    index = offset + sum(np.arange(n).reshape([-1 if d == i else 1 for d in range(len(shape))]) * s
                         for i, (n, s) in enumerate(zip(shape, strides)))
    index = np.broadcast_to(np.asarray(index, np.int64), tuple(shape))
    return [cx.op("take", flat, cx.array(index, DType.I64), axis=0)]
