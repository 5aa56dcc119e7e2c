"""dtype mapping between xcomp and MLX."""
from __future__ import annotations

import mlx.core as mx

from xcomp.backends.mlx.table import MX_NAMES
from xcomp.ir.types import DType

MX_DTYPES = {dt: getattr(mx, name) for dt, name in MX_NAMES.items()}
FROM_MX = {v: k for k, v in MX_DTYPES.items()}


def mx_dtype(dt: DType):
    return MX_DTYPES[dt]
