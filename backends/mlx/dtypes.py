"""dtype mapping between xcomp and MLX."""
from __future__ import annotations

import mlx.core as mx

from xcomp.ir.types import DType

MX_NAMES = {
    DType.F64: "float64", DType.F32: "float32", DType.F16: "float16", DType.BF16: "bfloat16",
    DType.I64: "int64", DType.I32: "int32", DType.I16: "int16", DType.I8: "int8",
    DType.U8: "uint8", DType.BOOL: "bool_",
}
MX_DTYPES = {dt: getattr(mx, name) for dt, name in MX_NAMES.items()}
FROM_MX = {v: k for k, v in MX_DTYPES.items()}


def mx_dtype(dt: DType):
    return MX_DTYPES[dt]
