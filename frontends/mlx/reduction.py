"""Reductions and scans: Reduce, ArgReduce, LogSumExp, Softmax, Scan, Sort, ArgSort, Partition,
ArgPartition. MLX keeps reduced axes (a Squeeze follows when the user did not ask for them)."""
from __future__ import annotations

from xcomp.frontends.mlx.table import Unsupported, primitive

REDUCE = {0: "all", 1: "any", 2: "sum", 3: "prod", 4: "amin", 5: "amax"}  # Reduce's ReduceType enum
ARG_REDUCE = {0: "argmin", 1: "argmax"}
SCAN = {2: "cumsum", 3: "cumprod"}  # Scan's ReduceType: Max, Min, Sum, Prod, LogAddExp
SCAN_NAMES = {0: "max", 1: "min", 4: "logaddexp"}


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


@primitive("Scan", "cumsum, cumprod (flip for reverse, shift for exclusive)")
def scan(cx, inputs, args):
    kind, axis, reverse, inclusive = args
    if kind not in SCAN:
        raise Unsupported(f"a cumulative {SCAN_NAMES.get(kind, kind)} (no IR op; cumsum and cumprod map)")
    x = inputs[0]
    axis %= x.type.rank
    if reverse:
        x = cx.op("flip", x, axes=(axis,))
    y = cx.op(SCAN[kind], x, axis=axis)
    if not inclusive:  # shift by one along the axis, the identity first
        n = x.type.shape[axis]
        shape = list(x.type.shape)
        shape[axis] = 1
        first = cx.op("full", shape=tuple(shape), value=0 if kind == 2 else 1, dtype=x.type.dtype)
        y = cx.op("concat", first, cx.op("slice", y, axis=axis, start=0, end=n - 1), axis=axis)
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
