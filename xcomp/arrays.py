"""Moving arrays between numpy, torch and MLX without importing frameworks that are not in use."""
from __future__ import annotations

import sys
from typing import Any

import numpy as np

from xcomp.ir.types import TensorType


def kind_of(x: Any) -> str | None:
    """"torch", "mlx", "numpy", or None for a non-array."""
    if isinstance(x, np.ndarray):
        return "numpy"
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(x, torch.Tensor):
        return "torch"
    mx = sys.modules.get("mlx.core")
    if mx is not None and isinstance(x, mx.array):
        return "mlx"
    return None


def to_numpy(x: Any) -> np.ndarray:
    k = kind_of(x)
    if k == "torch":
        import torch
        t = x.detach().cpu()
        return (t.float() if t.dtype == torch.bfloat16 else t).numpy()
    if k == "mlx":
        import mlx.core as mx
        # numpy reads the MLX buffer in place (buffer protocol; no copy, except bfloat16 -> float32)
        return np.asarray(x.astype(mx.float32) if x.dtype == mx.bfloat16 else x)
    return np.asarray(x)


def convert(x: Any, kind: str, type: TensorType | None = None) -> Any:
    """`x` as an array of `kind` ("numpy", "mlx", "torch"), with the dtype of `type` if given."""
    if kind_of(x) == kind and type is None:
        return x
    if kind == "mlx":
        import mlx.core as mx
        from xcomp.backends.mlx.dtypes import mx_dtype
        if kind_of(x) == "mlx":
            return x if x.dtype == mx_dtype(type.dtype) else x.astype(mx_dtype(type.dtype))
        a = mx.array(to_numpy(x))
        return a.astype(mx_dtype(type.dtype)) if type is not None and a.dtype != mx_dtype(type.dtype) else a
    if kind == "torch":
        import torch
        from xcomp.frontends.torch_dtypes import XCOMP_TO_TORCH
        a = to_numpy(x)
        t = torch.from_numpy(np.ascontiguousarray(a).reshape(a.shape))  # keeps 0-d arrays 0-d
        if type is None or t.dtype == XCOMP_TO_TORCH[type.dtype]:
            return t
        return t.to(XCOMP_TO_TORCH[type.dtype])
    a = to_numpy(x)
    if type is not None and a.dtype != type.dtype.np:
        a = a.astype(type.dtype.np)
    return a
