"""torch's dtypes and xcomp's, both ways: the one interop map (importing it loads no frontend)."""
from __future__ import annotations

import torch

from xcomp.ir.types import DType

TORCH_DTYPES = {
    torch.float64: DType.F64, torch.float32: DType.F32, torch.float16: DType.F16,
    torch.bfloat16: DType.BF16, torch.int64: DType.I64, torch.int32: DType.I32,
    torch.int16: DType.I16, torch.int8: DType.I8, torch.uint8: DType.U8, torch.bool: DType.BOOL,
}
XCOMP_TO_TORCH = {v: k for k, v in TORCH_DTYPES.items()}
