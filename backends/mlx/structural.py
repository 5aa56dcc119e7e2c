"""MLX lowerings of constants and host values."""
from __future__ import annotations

import numpy as np

from xcomp.backends.mlx.factory import _dtype
from xcomp.backends.mlx.table import choose, lowers, rule


def host_value(value):
    """A host scalar (int, float, bool) as it is."""
    return value


def host_list(*items):
    """Values gathered into one list value."""
    return list(items)


def _constant_params(a, ins, outs):
    value = np.asarray(a["value"]).astype(outs[0].dtype.np)
    return {"val": value.tolist(), "dtype": _dtype(outs[0].dtype)}


_ARRAY = rule("array", _constant_params, positional=("val",))
_EMPTY = rule("zeros", lambda a, ins, outs: {"shape": tuple(outs[0].shape), "dtype": _dtype(outs[0].dtype)})


def _pick(a, ins, outs):
    """A literal array, or zeros of the shape when it has no elements (a literal [] loses it)."""
    return _EMPTY if np.asarray(a["value"]).size == 0 else _ARRAY


choose("constant", _pick, (_ARRAY, _EMPTY))
choose("dense", _pick, (_ARRAY, _EMPTY))
lowers("scalar", host_value, lambda a, ins, outs: {"value": a["value"]})
lowers("none", host_value, lambda a, ins, outs: {"value": None})
lowers("list", host_list)
