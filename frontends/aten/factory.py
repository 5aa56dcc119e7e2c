"""aten factory ops -> xc.full / xc.arange.

zeros, ones, empty (as zeros), full, scalar_tensor and their `_like` / `new_` forms all become
`full`; the dtype is the node's (torch's `dtype=` kwarg or default), device/layout/pin_memory/
memory_format are ignored.
"""
from __future__ import annotations

import numpy as np
import torch

from xcomp.frontends.aten import aten
from xcomp.frontends.aten.shape import static_int, static_ints  # noqa: F401
from xcomp.frontends.aten.symbolic import sizes
from xcomp.ir.core import Value
from xcomp.ir.types import DType


def full(cx, shape, value) -> Value:
    """A tensor of the node's dtype filled with a Python number."""
    dt = cx.out_dtype
    if isinstance(value, (torch.SymInt, torch.SymFloat, torch.SymBool)):
        raise NotImplementedError(f"fill value {value} is symbolic")
    if isinstance(value, str):  # a symbolic size as the fill value
        return cx.broadcast(cx.tensor(value, dt), sizes(shape))
    value = bool(value) if dt.is_bool else value
    if dt.is_float and not isinstance(value, float):
        value = float(value)
    if dt.is_int and isinstance(value, bool):
        value = int(value)
    return cx.op("full", shape=sizes(shape), value=value, dtype=dt)


@aten("aten.full.default")
def full_default(cx, size, fill_value, **kwargs):
    return full(cx, size, fill_value)


@aten("aten.zeros.default", "aten.empty.memory_format")
def zeros(cx, size, **kwargs):
    return full(cx, size, 0)


@aten("aten.empty_permuted.default")
def empty_permuted(cx, size, physical_layout, **kwargs):
    return full(cx, size, 0)


@aten("aten.empty_strided.default")
def empty_strided(cx, size, stride, **kwargs):
    return full(cx, size, 0)


@aten("aten.ones.default")
def ones(cx, size, **kwargs):
    return full(cx, size, 1)


@aten("aten.scalar_tensor.default")
def scalar_tensor(cx, s, **kwargs):
    return full(cx, (), s)


@aten("aten.full_like.default")
def full_like(cx, x, fill_value, **kwargs):
    if isinstance(fill_value, Value):
        return cx.broadcast(cx.tensor(fill_value, cx.out_dtype), x.type.shape)
    return full(cx, x.type.shape, fill_value)


@aten("aten.zeros_like.default", "aten.empty_like.default")
def zeros_like(cx, x, **kwargs):
    return full(cx, x.type.shape, 0)


@aten("aten.ones_like.default")
def ones_like(cx, x, **kwargs):
    return full(cx, x.type.shape, 1)


@aten("aten.new_zeros.default", "aten.new_empty.default")
def new_zeros(cx, x, size, **kwargs):
    return full(cx, size, 0)


@aten("aten.new_empty_strided.default")
def new_empty_strided(cx, x, size, stride, **kwargs):
    return full(cx, size, 0)


@aten("aten.new_ones.default")
def new_ones(cx, x, size, **kwargs):
    return full(cx, size, 1)


@aten("aten.new_full.default")
def new_full(cx, x, size, fill_value, **kwargs):
    return full(cx, size, fill_value)


@aten("aten.fill.Scalar", "aten.fill.Tensor")
def fill(cx, x, value):
    if isinstance(value, Value):
        return cx.broadcast(cx.tensor(value, cx.out_dtype), x.type.shape)
    return full(cx, x.type.shape, value)


@aten("aten.zero.default")
def zero(cx, x):
    return full(cx, x.type.shape, 0)


def _number(v):
    if isinstance(v, (torch.SymInt, torch.SymFloat)):
        raise NotImplementedError(f"arange bound {v} is symbolic")
    if isinstance(v, Value):
        raise NotImplementedError("arange bounds given as tensors")
    return v


def arange(cx, start, end, step=1) -> Value:
    start, end, step = _number(start), _number(end), _number(step)
    dt = cx.out_dtype
    if dt.is_int:  # torch computes integer aranges from the truncated bounds
        start, end, step = (v if isinstance(v, str) else int(v) for v in (start, end, step))
        return cx.op("arange", start=start, end=end, step=step, dtype=dt)
    return cx.op("arange", start=float(start), end=float(end), step=float(step), dtype=dt)


@aten("aten.arange.default")
def arange_default(cx, end, **kwargs):
    return arange(cx, 0, end)


@aten("aten.arange.start")
def arange_start(cx, start, end, **kwargs):
    return arange(cx, start, end)


@aten("aten.arange.start_step")
def arange_start_step(cx, start, end, step=1, **kwargs):
    return arange(cx, start, end, step)


@aten("aten.linspace.default")
def linspace(cx, start, end, steps, **kwargs):
    """torch's two-sided formula: start + i*step for the first half, end - (n-1-i)*step after."""
    start, end, n = _number(start), _number(end), static_int(steps)
    dt = cx.out_dtype
    work = dt if dt.is_float else DType.F32
    if n <= 1:
        return full(cx, (n,), start)
    step = (float(end) - float(start)) / (n - 1)
    i = cx.op("arange", start=0, end=n, step=1, dtype=work)
    lo = cx.op("add", cx.op("mul", i, cx.const(step, work)), cx.const(start, work))
    back = cx.op("sub", cx.const(n - 1, work), i)
    hi = cx.op("sub", cx.const(end, work), cx.op("mul", back, cx.const(step, work)))
    first = cx.op("lt", i, cx.const(n // 2, work))
    return cx.cast(cx.op("where", first, lo, hi), dt)


@aten("aten.eye.default")
def eye(cx, n, **kwargs):
    return eye_m(cx, n, n)


@aten("aten.eye.m")
def eye_m(cx, n, m, **kwargs):
    n, m = static_int(n), static_int(m)
    rows = cx.op("arange", start=0, end=n, step=1, dtype=DType.I64)
    cols = cx.op("arange", start=0, end=m, step=1, dtype=DType.I64)
    rows = cx.op("reshape", rows, shape=(n, 1))
    return cx.cast(cx.op("eq", rows, cols), cx.out_dtype)


def _tri_indices(cx, fn, row, col, offset):
    rows, cols = fn(static_int(row), static_int(offset), static_int(col))
    return cx.constant_array(np.stack([rows, cols]).astype(np.int64).reshape(2, -1), DType.I64)


@aten("aten.tril_indices.default")
def tril_indices(cx, row, col, offset=0, **kwargs):
    return cx.cast(_tri_indices(cx, np.tril_indices, row, col, offset), cx.out_dtype)


@aten("aten.triu_indices.default")
def triu_indices(cx, row, col, offset=0, **kwargs):
    return cx.cast(_tri_indices(cx, np.triu_indices, row, col, offset), cx.out_dtype)
