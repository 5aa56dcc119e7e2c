"""MLX lowerings of constants and host values."""
from __future__ import annotations

import mlx.core as mx
import numpy as np

from xcomp.backends.mlx.dtypes import mx_dtype
from xcomp.backends.mlx.table import lowers


@lowers("constant", "dense")
def _constant(args, a, out):
    return mx.array(np.asarray(a["value"]).astype(out[0].dtype.np)).astype(mx_dtype(out[0].dtype))


@lowers("scalar")
def _scalar(args, a, out):
    return a["value"]


@lowers("none")
def _none(args, a, out):
    return None


@lowers("list")
def _list(args, a, out):
    return [list(args)]
