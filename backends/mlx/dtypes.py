"""dtype mapping between xcomp and MLX."""
from __future__ import annotations

import mlx.core as mx

from xcomp.ir.types import DType

MX_DTYPES = {
    DType.F64: mx.float64, DType.F32: mx.float32, DType.F16: mx.float16, DType.BF16: mx.bfloat16,
    DType.I64: mx.int64, DType.I32: mx.int32, DType.I16: mx.int16, DType.I8: mx.int8,
    DType.U8: mx.uint8, DType.BOOL: mx.bool_,
}
FROM_MX = {v: k for k, v in MX_DTYPES.items()}


def mx_dtype(dt: DType):
    return MX_DTYPES[dt]
