"""MLX lowerings of factory ops."""
from __future__ import annotations

import mlx.core as mx

from xcomp.backends.mlx.dtypes import mx_dtype
from xcomp.backends.mlx.table import lowers
from xcomp.ir.types import DType
from xcomp.ops.factory import fill_value


@lowers("full")
def _full(args, a, out):
    value = mx.array(fill_value(a["value"], out[0].dtype)).astype(mx_dtype(out[0].dtype))
    return mx.broadcast_to(value, out[0].shape)


@lowers("arange")
def _arange(args, a, out):
    n = out[0].shape[0]
    start, step = a["start"], a["step"]
    if isinstance(start, int) and isinstance(step, int):
        return (start + step * mx.arange(n, dtype=mx.int64)).astype(mx_dtype(out[0].dtype))
    # start + i*step in float32 (float64 for f64 results: MLX has float64 on the CPU only)
    work = mx.float64 if out[0].dtype is DType.F64 else mx.float32
    return (start + step * mx.arange(n, dtype=work)).astype(mx_dtype(out[0].dtype))
