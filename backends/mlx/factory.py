"""MLX lowerings of factory ops."""
from __future__ import annotations

import mlx.core as mx

from xcomp.backends.mlx.dtypes import mx_dtype
from xcomp.backends.mlx.table import lowers
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
    # float32 is MLX's widest float on the GPU; compute start + i*step there like torch does
    return (start + step * mx.arange(n, dtype=mx.float32)).astype(mx_dtype(out[0].dtype))
