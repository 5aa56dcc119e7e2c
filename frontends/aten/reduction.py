"""aten reductions -> xc reductions.

Inputs are cast to the dtype torch computes the node in (its meta), which covers integer sums and
products promoting to int64 and `dtype=` keyword arguments; any/all reduce bool views and the driver
casts the result back (uint8 in, uint8 out). Negative dims are normalized here; `dim=None` or `[]`
reduces everything.
"""
from __future__ import annotations

import math

from xcomp.frontends.aten import aten
from xcomp.ir.types import DType
from xcomp.ops.reduction import normalize_axes, normalize_axis


def axes_of(x, dim) -> tuple[int, ...]:
    """torch `dim` (None, int or list, possibly negative) as normalized IR axes."""
    if dim is None:
        dim = ()
    elif isinstance(dim, int):
        dim = (dim,)
    return normalize_axes(tuple(dim), x.type.rank)


def reduce(cx, op: str, x, dim=None, keepdim=False, dtype: DType | None = None):
    """Build `op` over torch `dim`, computing in `dtype` (default: the node's result dtype)."""
    x = cx.tensor(x, dtype or cx.out_dtype)
    return cx.op(op, x, axes=axes_of(x, dim), keepdim=bool(keepdim))


def reduction(op: str, input_dtype: DType | None = None):
    """Converter for `aten.<r>(self, dim=None, keepdim=False, *, dtype=None)` and its overloads."""
    def conv(cx, x, dim=None, keepdim=False, *, dtype=None):
        return reduce(cx, op, x, dim, keepdim, input_dtype)
    return conv


for _xc, _names in {
    "sum": ("aten.sum.dim_IntList", "aten.sum.default"),
    "prod": ("aten.prod.dim_int", "aten.prod.default"),
    "mean": ("aten.mean.dim", "aten.mean.default"),
    "amax": ("aten.amax.default", "aten.max.default"),
    "amin": ("aten.amin.default", "aten.min.default"),
    "logsumexp": ("aten.logsumexp.default",),
}.items():
    aten(*_names)(reduction(_xc))

for _xc in ("any", "all"):
    aten(f"aten.{_xc}.dim", f"aten.{_xc}.dims", f"aten.{_xc}.default")(reduction(_xc, DType.BOOL))


@aten("aten.nansum.default")
def nansum(cx, x, dim=None, keepdim=False, *, dtype=None):
    x = cx.tensor(x, cx.out_dtype)
    if x.type.dtype.is_float:
        x = cx.op("where", cx.op("isnan", x), cx.const(0, x.type.dtype), x)
    return cx.op("sum", x, axes=axes_of(x, dim), keepdim=bool(keepdim))


def _arg(op: str):
    def conv(cx, x, dim=None, keepdim=False):
        axis = None if dim is None or x.type.rank == 0 else normalize_axis(dim, x.type.rank)
        return cx.op(op, x, axis=axis, keepdim=bool(keepdim))
    return conv


aten("aten.argmax.default")(_arg("argmax"))
aten("aten.argmin.default")(_arg("argmin"))


def _values_indices(value_op: str, index_op: str):
    """`max.dim`/`min.dim`: (values, indices) along one dim."""
    def conv(cx, x, dim, keepdim=False):
        return [reduce(cx, value_op, x, dim, keepdim, x.type.dtype), _arg(index_op)(cx, x, dim, keepdim)]
    return conv


aten("aten.max.dim")(_values_indices("amax", "argmax"))
aten("aten.min.dim")(_values_indices("amin", "argmin"))


@aten("aten.aminmax.default")
def aminmax(cx, x, *, dim=None, keepdim=False):
    return [reduce(cx, "amin", x, dim, keepdim, x.type.dtype), reduce(cx, "amax", x, dim, keepdim, x.type.dtype)]


def _correction(unbiased=True, correction=None) -> float:
    if correction is not None:
        return float(correction)
    return 1.0 if unbiased else 0.0


def variance(cx, x, dim=None, keepdim=False, correction: float = 1.0):
    """var over torch `dim` in the node's dtype."""
    x = cx.tensor(x, cx.out_dtype)
    return cx.op("var", x, axes=axes_of(x, dim), keepdim=bool(keepdim), correction=correction)


def _var_like(sqrt: bool, with_mean: bool):
    """var/std (and var_mean/std_mean) in all three overload styles."""
    def conv(cx, x, dim=None, unbiased=True, keepdim=False, *, correction=None):
        if isinstance(dim, bool):  # var.default(self, unbiased)
            dim, unbiased = None, dim
        v = variance(cx, x, dim, keepdim, _correction(unbiased, correction))
        if sqrt:
            v = cx.op("sqrt", v)
        if not with_mean:
            return v
        return [v, reduce(cx, "mean", x, dim, keepdim, v.type.dtype)]
    return conv


for _ov in ("default", "dim", "correction"):
    aten(f"aten.var.{_ov}")(_var_like(False, False))
    aten(f"aten.std.{_ov}")(_var_like(True, False))
    aten(f"aten.var_mean.{_ov}")(_var_like(False, True))
    aten(f"aten.std_mean.{_ov}")(_var_like(True, True))


def _scan(op: str):
    def conv(cx, x, dim, *, dtype=None):
        x = cx.tensor(x, cx.out_dtype)
        if x.type.rank == 0:
            normalize_axis(dim, 0, op)
            return x
        return cx.op(op, x, axis=normalize_axis(dim, x.type.rank, op))
    return conv


aten("aten.cumsum.default")(_scan("cumsum"))
aten("aten.cumprod.default")(_scan("cumprod"))


@aten("aten.linalg_vector_norm.default")
def vector_norm(cx, x, ord=2, dim=None, keepdim=False, *, dtype=None):
    """The p-norm from abs/pow/sum (inf, -inf and 0 norms from amax/amin/counts)."""
    dt = cx.out_dtype
    x = cx.tensor(x, dt)
    axes, keepdim = axes_of(x, dim), bool(keepdim)
    a = cx.op("abs", x)
    ord = float(ord)
    if math.isinf(ord):
        return cx.op("amax" if ord > 0 else "amin", a, axes=axes, keepdim=keepdim)
    if ord == 0:
        return cx.op("sum", cx.cast(cx.op("ne", x, cx.const(0, dt)), dt), axes=axes, keepdim=keepdim)
    if ord == 1:
        return cx.op("sum", a, axes=axes, keepdim=keepdim)
    if ord == 2:
        return cx.op("sqrt", cx.op("sum", cx.op("mul", x, x), axes=axes, keepdim=keepdim))
    s = cx.op("sum", cx.op("pow", a, cx.const(ord, dt)), axes=axes, keepdim=keepdim)
    return cx.op("pow", s, cx.const(1.0 / ord, dt))


@aten("aten.norm.Scalar", "aten.norm.ScalarOpt_dim", "aten.norm.ScalarOpt_dim_dtype", "aten.norm.ScalarOpt_dtype")
def norm(cx, x, p=2, dim=None, keepdim=False, *, dtype=None):
    return vector_norm(cx, x, 2 if p is None else p, dim, keepdim)
