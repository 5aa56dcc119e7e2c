"""MLX frontend: MLX functions, `mlx.nn` modules and `.mlxfn` files into xcomp IR.

Capture goes through `mx.export_function(callback, fn, *args)`; each reported primitive is converted
through one table (`PRIMITIVES`, filled by the family modules: elementwise, shape, reduction,
indexing, linalg, fast). `docs/mlx_primitives.md` lists the table (`python -m
xcomp.frontends.mlx.docs`).
"""
from __future__ import annotations

from xcomp.frontends.mlx import elementwise, fast, indexing, linalg, reduction, shape  # noqa: F401 (fill the table)
from xcomp.frontends.mlx.capture import build, record
from xcomp.frontends.mlx.mlxfn import load_mlxfn, read_signature
from xcomp.frontends.mlx.module import capture
from xcomp.frontends.mlx.table import IR_OPS, PRIMITIVES

__all__ = ["PRIMITIVES", "IR_OPS", "build", "record", "capture", "capture_function", "load_mlxfn",
           "read_signature"]


def capture_function(fn, tensors, dynamic=None):
    """`(program, out_spec)` of an MLX function or module called on MLX arrays (xcomp.api's entry);
    `dynamic` (one {axis: name or None} per array) makes those dims symbolic (`dynamic.py`)."""
    return capture(fn, tensors, dynamic)
