"""Reductions and scans: Reduce, ArgReduce, LogSumExp, Softmax, Scan, Sort, ArgSort, Partition,
ArgPartition. MLX keeps reduced axes (a Squeeze follows when the user did not ask for them)."""
from __future__ import annotations

import math

import numpy as np

from xcomp.frontends.mlx.table import Unsupported, primitive

REDUCE = {0: "all", 1: "any", 2: "sum", 3: "prod", 4: "amin", 5: "amax"}  # Reduce's ReduceType enum
ARG_REDUCE = {0: "argmin", 1: "argmax"}
SCAN = {2: "cumsum", 3: "cumprod"}  # Scan's ReduceType: Max, Min, Sum, Prod, LogAddExp


@primitive("Reduce", "all, any, sum, prod, amin, amax (by type)")
def reduce(cx, inputs, args):
    kind, axes = args
    x = inputs[0]
    if not axes:
        return [x]
    return [cx.op(REDUCE[kind], x, axes=tuple(axes), keepdim=True)]


@primitive("ArgReduce", "argmin, argmax (by type)")
def arg_reduce(cx, inputs, args):
    kind, axis = args
    return [cx.op(ARG_REDUCE[kind], inputs[0], axis=axis, keepdim=True)]


@primitive("LogSumExp", "logsumexp")
def logsumexp(cx, inputs, args):
    return [cx.op("logsumexp", inputs[0], axes=(inputs[0].type.rank - 1,), keepdim=True)]


@primitive("Softmax", "softmax")
def softmax(cx, inputs, args):
    return [cx.op("softmax", inputs[0], axis=inputs[0].type.rank - 1)]


def _identity(kind: int, dtype):
    """The value a scan of `kind` starts from (what an exclusive scan puts first)."""
    if kind in (2, 3):
        return 0 if kind == 2 else 1
    if dtype.is_float:
        return -math.inf if kind in (0, 4) else math.inf
    info = np.iinfo(dtype.np) if dtype.is_int else None
    return (info.min if kind == 0 else info.max) if info is not None else kind == 1


def _shifted(cx, y, axis: int, by: int, fill):
    """y moved `by` places along `axis`, `fill` coming in first."""
    n = y.type.shape[axis]
    shape = list(y.type.shape)
    shape[axis] = min(by, n)
    first = cx.op("full", shape=tuple(shape), value=fill, dtype=y.type.dtype)
    if by >= n:
        return first
    return cx.op("concat", first, cx.op("slice", y, axis=axis, start=0, end=n - by), axis=axis)


def _log_step_scan(cx, x, axis: int, kind: int):
    """An inclusive max/min/logaddexp scan in log2(n) steps (Hillis-Steele): y = y (+) shift(y, 2^k)."""
    from xcomp.frontends.mlx.elementwise import logaddexp
    combine = {0: lambda a, b: cx.op("maximum", a, b), 1: lambda a, b: cx.op("minimum", a, b),
               4: lambda a, b: logaddexp(cx, a, b)}[kind]
    y, step = x, 1
    while step < x.type.shape[axis]:
        y = combine(y, _shifted(cx, y, axis, step, _identity(kind, x.type.dtype)))
        step *= 2
    return y


@primitive("Scan", "cumsum, cumprod; maximum/minimum/logaddexp in log2(n) shifted steps (flip: reverse)")
def scan(cx, inputs, args):
    kind, axis, reverse, inclusive = args
    x = inputs[0]
    if kind == 4 and not x.type.dtype.is_float:
        raise Unsupported("a cumulative logaddexp of integers")
    axis %= x.type.rank
    if reverse:
        x = cx.op("flip", x, axes=(axis,))
    y = cx.op(SCAN[kind], x, axis=axis) if kind in SCAN else _log_step_scan(cx, x, axis, kind)
    if not inclusive:
        y = _shifted(cx, y, axis, 1, _identity(kind, x.type.dtype))
    if reverse:
        y = cx.op("flip", y, axes=(axis,))
    return [y]


def _sort(cx, x, axis):
    return cx.ops("sort", x, axis=axis % max(x.type.rank, 1))


@primitive("Sort", "sort (values)")
def sort(cx, inputs, args):
    return [_sort(cx, inputs[0], args[0])[0]]


@primitive("ArgSort", "sort (indices)")
def argsort(cx, inputs, args):
    return [_sort(cx, inputs[0], args[0])[1]]


@primitive("Partition", "sort (values: a full sort is a valid partition)")
def partition(cx, inputs, args):
    return [_sort(cx, inputs[0], args[1])[0]]


@primitive("ArgPartition", "sort (indices: a full sort is a valid partition)")
def argpartition(cx, inputs, args):
    return [_sort(cx, inputs[0], args[1])[1]]
