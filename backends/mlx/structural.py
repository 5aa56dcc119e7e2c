"""MLX lowerings of constants and host values."""
from __future__ import annotations

import numpy as np

from xcomp.backends.mlx.factory import _dtype
from xcomp.backends.mlx.table import lowers


def host_value(value):
    """A host scalar (int, float, bool) as it is."""
    return value


def host_list(*items):
    """Values gathered into one list value."""
    return list(items)


def _constant_params(a, ins, outs):
    value = np.asarray(a["value"]).astype(outs[0].dtype.np)
    return {"val": value.tolist(), "dtype": _dtype(outs[0].dtype)}


lowers("constant", "array", _constant_params, positional=("val",))
lowers("dense", "array", _constant_params, positional=("val",))
lowers("scalar", host_value, lambda a, ins, outs: {"value": a["value"]})
lowers("none", host_value, lambda a, ins, outs: {"value": None})
lowers("list", host_list)
