"""aten resampling (`F.interpolate` modes nearest, linear, bilinear, trilinear) -> xc take, mul, add.

With static shapes the source positions and blend weights of every output row are constants: each
resized axis is two gathers (`take` of the lower and upper source rows) blended by a constant weight
vector, computed here with torch's rule (`area_pixel_compute_source_index`): with `align_corners`
the corners map to corners, otherwise pixel centres map to centres (scale `1/scale_factor` when a
scale factor is given, else `in/out`) and negative positions clamp to 0. Nearest is one gather per
axis of row `floor(dst * scale)` computed in float32 as torch does (`nearest-exact` already arrives
decomposed).
"""
from __future__ import annotations

import numpy as np

from xcomp.frontends.aten import aten
from xcomp.frontends.aten.indexing import const_index
from xcomp.ir.core import Value
from xcomp.ir.types import DType


def source_rows(in_size: int, out_size: int, align_corners: bool, scale: float | None):
    """Lower source row, upper source row and the upper row's weight for each output row."""
    dst = np.arange(out_size, dtype=np.float64)
    if align_corners:
        step = (in_size - 1) / (out_size - 1) if out_size > 1 else 0.0
        src = dst * step
    else:
        step = 1.0 / scale if scale is not None and scale > 0 else in_size / out_size
        src = np.maximum(step * (dst + 0.5) - 0.5, 0.0)
    lo = np.minimum(src.astype(np.int64), in_size - 1)
    hi = np.minimum(lo + 1, in_size - 1)
    return lo, hi, src - lo


def _resize_axis(cx, x: Value, axis: int, out_size: int, align_corners: bool, scale) -> Value:
    in_size = x.type.shape[axis]
    if not isinstance(in_size, int):
        raise NotImplementedError(f"symbolic size '{in_size}' of a resized axis")
    lo, hi, weight = source_rows(in_size, out_size, align_corners, scale)
    trailing = (1,) * (x.type.rank - 1 - axis)
    w_hi = cx.constant_array(weight.reshape((out_size,) + trailing).astype(np.float32), x.type.dtype)
    w_lo = cx.constant_array((1.0 - weight).reshape((out_size,) + trailing).astype(np.float32), x.type.dtype)
    rows_lo = cx.op("take", x, const_index(cx, lo), axis=axis)
    rows_hi = cx.op("take", x, const_index(cx, hi), axis=axis)
    return cx.op("add", cx.op("mul", rows_lo, w_lo), cx.op("mul", rows_hi, w_hi))


def _resize(cx, x: Value, n: int, align_corners: bool, scales) -> Value:
    out_dtype = cx.out_dtype
    work = DType.F32 if out_dtype in (DType.F16, DType.BF16) else out_dtype  # torch blends in float
    y = cx.cast(x, work)
    out_shape = cx.out_type.shape
    for k in range(n):
        axis = x.type.rank - n + k
        y = _resize_axis(cx, y, axis, out_shape[axis], bool(align_corners), scales[k])
    return cx.cast(y, out_dtype)


def _linear(n: int):
    def vec(cx, x, output_size, align_corners, scale_factors=None):
        scales = list(scale_factors) if scale_factors else [None] * n
        return _resize(cx, x, n, align_corners, scales)

    def default(cx, x, output_size, align_corners, *scales):
        scales = list(scales) + [None] * (n - len(scales))
        return _resize(cx, x, n, align_corners, scales[:n])
    return vec, default


for _n, _name in ((1, "upsample_linear1d"), (2, "upsample_bilinear2d"), (3, "upsample_trilinear3d")):
    _vec, _default = _linear(_n)
    aten(f"aten.{_name}.vec")(_vec)
    aten(f"aten.{_name}.default")(_default)


def nearest_rows(in_size: int, out_size: int, scale: float | None) -> np.ndarray:
    """torch's `nearest_neighbor_compute_source_index`, in float32 like its kernel."""
    step = np.float32(1.0 / scale if scale is not None and scale > 0 else in_size / out_size)
    src = np.floor(np.arange(out_size, dtype=np.float32) * step).astype(np.int64)
    return np.minimum(src, in_size - 1)


def _nearest_resize(cx, x: Value, n: int, scales) -> Value:
    out_shape = cx.out_type.shape
    for k in range(n):
        axis = x.type.rank - n + k
        in_size = x.type.shape[axis]
        if not isinstance(in_size, int):
            raise NotImplementedError(f"symbolic size '{in_size}' of a resized axis")
        x = cx.op("take", x, const_index(cx, nearest_rows(in_size, out_shape[axis], scales[k])), axis=axis)
    return x


def _nearest(n: int):
    def vec(cx, x, output_size, scale_factors=None):
        return _nearest_resize(cx, x, n, list(scale_factors) if scale_factors else [None] * n)

    def default(cx, x, output_size, *scales):
        return _nearest_resize(cx, x, n, (list(scales) + [None] * n)[:n])
    return vec, default


for _n in (1, 2, 3):
    _vec, _default = _nearest(_n)
    aten(f"aten.upsample_nearest{_n}d.vec")(_vec)
    aten(f"aten.upsample_nearest{_n}d.default")(_default)
