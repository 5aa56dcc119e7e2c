"""MLX dtypes as IR dtypes. Unsigned types the IR lacks widen to a signed type that holds every value
(uint32 -> i64: MLX's argmax/argsort results); the frontend casts outputs back to MLX's dtype."""
from __future__ import annotations

import mlx.core as mx
import numpy as np

from xcomp.ir.types import DType

FROM_MX = {
    mx.float64: DType.F64, mx.float32: DType.F32, mx.float16: DType.F16, mx.bfloat16: DType.BF16,
    mx.int64: DType.I64, mx.int32: DType.I32, mx.int16: DType.I16, mx.int8: DType.I8,
    mx.uint8: DType.U8, mx.bool_: DType.BOOL, mx.uint16: DType.I32, mx.uint32: DType.I64,
    mx.uint64: DType.I64,
}

# Unsigned MLX dtypes held in a wider signed IR dtype: their width in bits. Results of primitives that
# can leave that range (WRAPPING) are reduced modulo 2**bits, as MLX's own unsigned arithmetic is.
WIDENED_BITS = {mx.uint16: 16, mx.uint32: 32}
WRAPPING = frozenset({"Add", "Subtract", "Multiply", "Negative", "Power", "BitwiseBinary", "BitwiseInvert",
                      "AsType", "Scan", "Reduce", "Matmul", "AddMM"})


class DTypeError(TypeError):
    """An MLX dtype with no IR counterpart (complex64)."""


def ir_dtype(dt) -> DType:
    try:
        return FROM_MX[dt]
    except KeyError:
        raise DTypeError(f"xcomp has no dtype for MLX's {dt}") from None


def to_numpy(a: mx.array) -> np.ndarray:
    """An MLX array as numpy in the IR's storage (bfloat16 held as float32, uint32 as int64)."""
    dt = ir_dtype(a.dtype)
    if a.dtype == mx.bfloat16:
        a = a.astype(mx.float32)
    return np.array(a).astype(dt.np if dt is not DType.BF16 else np.float32)
