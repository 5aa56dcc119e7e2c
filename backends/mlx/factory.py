"""MLX lowerings of factory ops."""
from __future__ import annotations

from xcomp.backends.mlx.table import mx  # None where MLX is missing: source emission needs no MLX

from xcomp.backends.mlx.elementwise import mx_name
from xcomp.backends.mlx.table import Expr, lowers
from xcomp.ir.types import DType
from xcomp.ops.factory import fill_value


def _dtype(dt: DType) -> Expr:
    return Expr(f"mx.{mx_name(dt)}")


def arange(n, start, step, dtype, work):
    """start + i * step for i < n, computed in `work` (int64 for integer steps, else float32, or
    float64 for f64 results: MLX has float64 on the CPU only)."""
    return (start + step * mx.arange(n, dtype=work)).astype(dtype)


def _arange_params(a, ins, outs):
    dt = outs[0].dtype
    ints = isinstance(a["start"], int) and isinstance(a["step"], int)
    work = DType.I64 if ints else DType.F64 if dt is DType.F64 else DType.F32
    return {"n": outs[0].shape[0], "start": a["start"], "step": a["step"], "dtype": _dtype(dt), "work": _dtype(work)}


def full(shape, value, dtype):
    """`value` broadcast to `shape` (mx.full drops zero-size dimensions)."""
    return mx.broadcast_to(mx.array(value, dtype=dtype), shape)


lowers("full", full, lambda a, ins, outs: {"shape": tuple(outs[0].shape),
                                           "value": fill_value(a["value"], outs[0].dtype).item(),
                                           "dtype": _dtype(outs[0].dtype)})
lowers("arange", arange, _arange_params)
