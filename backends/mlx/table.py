"""The MLX lowering table: op name -> `fn(args, attrs, out_types) -> list[mx.array]`.

Family modules beside this one fill it with `@lowers("add", ...)` or `table_ops({...})`.
"""
from __future__ import annotations

from typing import Callable

MLX_OPS: dict[str, Callable] = {}


def lowers(*names: str):
    """Register one lowering for ops `xc.<name>`; the function returns one array or a list."""
    def register(fn):
        for n in names:
            key = n if "." in n else f"xc.{n}"
            if key in MLX_OPS:
                raise ValueError(f"MLX lowering for {key} registered twice")
            MLX_OPS[key] = _as_list(fn)
        return fn
    return register


def _as_list(fn):
    def run(args, attrs, out_types):
        out = fn(args, attrs, out_types)
        return list(out) if isinstance(out, (list, tuple)) else [out]
    return run
