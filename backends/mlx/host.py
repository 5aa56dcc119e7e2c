"""MLX lowerings of host-value ops (TorchScript lists and kept asserts): plain Python on the host."""
from __future__ import annotations

from xcomp.backends.mlx.table import mx  # None where MLX is missing: source emission needs no MLX

from xcomp.backends.mlx.table import MLX_OPS, lowers


def list_append(items, x):
    return list(items) + [x]


def list_get(items, i):
    return items[int(i.item()) if hasattr(i, "item") else int(i)]


def list_len(items):
    return mx.array(len(items), dtype=mx.int64)


def script_raise(message):
    """A scripted `raise`/`assert` on a taken branch."""
    raise RuntimeError(message)


def _raise_eagerly(args, attrs, out_types):
    from xcomp.errors import ScriptRaiseError
    raise ScriptRaiseError(attrs["message"])


lowers("list_append", list_append)
lowers("list_get", list_get)
lowers("list_len", list_len)
lowers("raise", script_raise, lambda a, ins, outs: {"message": a["message"]})
MLX_OPS["xc.raise"] = _raise_eagerly   # eagerly xcomp's own error; emitted source raises RuntimeError
