"""aten.as_strided -> xc reshape/transpose, or a constant-index take.

`as_strided(x, size, stride, offset)` addresses x's *storage*, so its meaning depends on x's memory
layout (`ConvertContext.operand_layout`). Mapping each output element through the storage back to
x's logical (row-major) index gives a constant index array. When that array is a permutation of a
reshape of all of x (timm's pooling re-expressing a permuted tensor, a contiguous view), the result
is a reshape and a transpose; any other selection of x's elements is one `take` with the indices.
Reads outside x's elements (storage x does not own) are unsupported.
"""
from __future__ import annotations

import numpy as np

from xcomp.frontends.aten import aten
from xcomp.frontends.aten.indexing import const_index
from xcomp.frontends.aten.shape import reshape, static_ints, transpose
from xcomp.ir.core import Value


def logical_indices(shape, in_strides, in_offset, size, stride, offset) -> np.ndarray:
    """For each element of `as_strided(x, size, stride, offset)`, x's row-major flat index."""
    shape, size = tuple(shape), tuple(size)
    positions = in_offset + _positions(shape, in_strides)
    if positions.size and positions.min() < 0:
        raise NotImplementedError("as_strided of an input with negative strides")
    storage = np.full(int(positions.max()) + 1 if positions.size else 0, -1, np.int64)
    storage[positions.ravel()] = np.arange(positions.size)
    if np.count_nonzero(storage >= 0) != positions.size:
        raise NotImplementedError("as_strided of an input whose elements overlap in memory")
    wanted = offset + _positions(size, stride)
    if wanted.size and (wanted.min() < 0 or wanted.max() >= storage.size or (storage[wanted] < 0).any()):
        raise NotImplementedError("as_strided reads memory outside its input's elements")
    return storage[wanted] if wanted.size else wanted


def _positions(shape, strides) -> np.ndarray:
    pos = np.zeros(shape, np.int64)
    for axis, (n, s) in enumerate(zip(shape, strides)):
        pos = pos + (np.arange(n, dtype=np.int64) * s).reshape((n,) + (1,) * (len(shape) - axis - 1))
    return pos


def view_of(flat: np.ndarray, numel: int):
    """(source shape, permutation) with `flat == arange(numel).reshape(source).transpose(perm)`,
    when the index array is such a view of all elements; else None."""
    if flat.size != numel or flat.size == 0 or flat.ravel()[0] != 0:
        return None
    dims = [k for k in range(flat.ndim) if flat.shape[k] > 1]
    steps = {k: int(flat[tuple(1 if a == k else 0 for a in range(flat.ndim))]) for k in dims}
    order = sorted(dims, key=lambda k: -steps[k]) + [k for k in range(flat.ndim) if flat.shape[k] == 1]
    expected = 1
    for k in reversed(order):
        if flat.shape[k] > 1 and steps[k] != expected:
            return None
        expected *= flat.shape[k]
    source = tuple(flat.shape[k] for k in order)
    perm = tuple(order.index(k) for k in range(flat.ndim))
    if not np.array_equal(np.arange(numel).reshape(source).transpose(perm), flat):
        return None
    return source, perm


@aten("aten.as_strided.default", "aten.as_strided_copy.default")
def as_strided(cx, x: Value, size, stride, storage_offset=None) -> Value:
    layout = cx.operand_layout(0)
    if layout is None:
        raise NotImplementedError("as_strided needs its input's memory layout, which this frontend lacks")
    in_strides, in_offset = layout
    shape = static_ints(x.type.shape)
    size, stride = static_ints(size), static_ints(stride)
    offset = in_offset if storage_offset is None else int(storage_offset)
    flat = logical_indices(shape, in_strides, in_offset, size, stride, offset)
    numel = int(np.prod(shape, dtype=np.int64))
    view = view_of(flat, numel)
    if view is not None:
        source, perm = view
        return transpose(cx, reshape(cx, x, source), perm)
    rows = cx.op("take", reshape(cx, x, (numel,)), const_index(cx, flat.ravel()), axis=0)
    return reshape(cx, rows, size)
