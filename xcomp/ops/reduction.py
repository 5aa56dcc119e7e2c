"""Reductions over `axes` (sum, mean, prod, amax, amin, var, any, all, logsumexp), arg-reductions
(argmax, argmin over one `axis`) and scans (cumsum, cumprod).

`axes` is a tuple of distinct axes (negative axes count from the end); the empty tuple reduces every
axis. `keepdim` keeps reduced axes as size 1. Reductions keep their operand's dtype (frontends cast
first where torch promotes, as for integer sums); mean, var and logsumexp need floats; any and all
give bool. The numpy references accumulate floats in float64.
"""
from __future__ import annotations

import numpy as np

from xcomp.ir.types import DType, TensorType
from xcomp.ops.registry import AttrKind, Trait, attr, define, req

PURE, RED = Trait.PURE, Trait.REDUCTION


def _tensor(t, name) -> TensorType:
    if not isinstance(t, TensorType):
        raise TypeError(f"xc.{name} takes a tensor, got {t}")
    return t


def normalize_axis(axis: int, rank: int, name: str = "op") -> int:
    """`axis` in [0, rank); a 0-d tensor accepts axis 0 or -1 (torch's convention)."""
    r = max(rank, 1)
    if not -r <= axis < r:
        raise ValueError(f"xc.{name}: axis {axis} out of range for rank {rank}")
    return axis % r


def normalize_axes(axes, rank: int, name: str = "op") -> tuple[int, ...]:
    """Distinct non-negative axes; the empty tuple (or a 0-d operand) means every axis."""
    if rank == 0:
        for a in axes:
            normalize_axis(a, 0, name)
        return ()
    out = tuple(normalize_axis(a, rank, name) for a in axes) if axes else tuple(range(rank))
    if len(set(out)) != len(out):
        raise ValueError(f"xc.{name}: repeated axis in {tuple(axes)}")
    return out


def reduced_shape(shape, axes, keepdim: bool):
    """The shape left after reducing `axes` (already normalized)."""
    if keepdim:
        return tuple(1 if i in axes else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in axes)


def _reduce_infer(name, float_only=False, result_dtype=None):
    def infer(types, a):
        t = _tensor(types[0], name)
        if float_only and not t.dtype.is_float:
            raise TypeError(f"xc.{name} needs a floating-point tensor, got {t}")
        axes = normalize_axes(a["axes"], t.rank, name)
        return [TensorType(reduced_shape(t.shape, axes, a["keepdim"]), result_dtype or t.dtype)]
    return infer


def _np_axes(x, a):
    return normalize_axes(a["axes"], x.ndim) or None


def _wide(x):
    """Floats accumulate in float64; ints keep their dtype (wrapping like torch)."""
    return x.astype(np.float64) if x.dtype.kind == "f" else x


def _sum(x, a):
    return np.sum(_wide(x), axis=_np_axes(x, a), keepdims=a["keepdim"], dtype=_wide(x).dtype)


def _prod(x, a):
    return np.prod(_wide(x), axis=_np_axes(x, a), keepdims=a["keepdim"], dtype=_wide(x).dtype)


def _mean(x, a):
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.mean(x.astype(np.float64), axis=_np_axes(x, a), keepdims=a["keepdim"])


def _extreme(fn):
    def run(x, a):
        return fn(x, axis=_np_axes(x, a), keepdims=a["keepdim"])
    return run


def _var(x, a):
    axes = _np_axes(x, a)
    x64 = x.astype(np.float64)
    n = x.size if axes is None else int(np.prod([x.shape[i] for i in axes]))
    dev = x64 - np.mean(x64, axis=axes, keepdims=True) if n else x64
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.sum(dev * dev, axis=axes, keepdims=a["keepdim"]) / np.float64(max(n - a["correction"], 0))


def _logsumexp(x, a):
    axes = _np_axes(x, a)
    x64 = x.astype(np.float64)
    m = np.amax(x64, axis=axes, keepdims=True) if x.size else np.zeros([1] * x.ndim)
    m = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        out = np.log(np.sum(np.exp(x64 - m), axis=axes, keepdims=True)) + m
    return out if a["keepdim"] else np.squeeze(out, axis=axes if axes is not None else tuple(range(x.ndim)))


def _bool_reduce(fn):
    return lambda x, a: fn(x.astype(bool), axis=_np_axes(x, a), keepdims=a["keepdim"])


_REDUCE_ATTRS = {"axes": attr(AttrKind.INTS, ()), "keepdim": attr(AttrKind.BOOL, False)}

# name -> (numpy reference, float only, result dtype, extra traits)
REDUCTIONS = {
    "sum": (_sum, False, None, ()),
    "prod": (_prod, False, None, ()),
    "mean": (_mean, True, None, ()),
    "amax": (_extreme(np.amax), False, None, ()),
    "amin": (_extreme(np.amin), False, None, ()),
    "any": (_bool_reduce(np.any), False, DType.BOOL, ()),
    "all": (_bool_reduce(np.all), False, DType.BOOL, ()),
    "logsumexp": (_logsumexp, True, None, (Trait.COMPOSITE,)),
}

for _name, (_fn, _float, _dt, _traits) in REDUCTIONS.items():
    define(_name, _reduce_infer(_name, _float, _dt),
           (lambda f: lambda args, a, out: [f(args[0], a)])(_fn),
           attrs=dict(_REDUCE_ATTRS), traits=(PURE, RED, *_traits), operands=1)

define("var", _reduce_infer("var", True), lambda args, a, out: [_var(args[0], a)],
       attrs={**_REDUCE_ATTRS, "correction": attr(AttrKind.FLOAT, 1.0)},
       traits=(PURE, RED), operands=1,
       doc="Variance: sum((x - mean)^2) / (N - correction); `correction=1` is Bessel's.")


def _arg_infer(name):
    def infer(types, a):
        t = _tensor(types[0], name)
        if a["axis"] is None:
            shape = tuple(1 for _ in t.shape) if a["keepdim"] else ()
        else:
            axis = normalize_axis(a["axis"], t.rank, name)
            shape = reduced_shape(t.shape, (axis,) if t.rank else (), a["keepdim"])
        return [TensorType(shape, DType.I64)]
    return infer


def _arg(fn):
    def run(args, a, out):
        x = args[0]
        if x.dtype == np.bool_:
            x = x.astype(np.uint8)
        if a["axis"] is None or x.ndim == 0:
            r = fn(x.reshape(-1))
            return [np.asarray(r).reshape(out[0].shape)]
        return [fn(x, axis=a["axis"], keepdims=a["keepdim"])]
    return run


for _name, _fn in {"argmax": np.argmax, "argmin": np.argmin}.items():
    define(_name, _arg_infer(_name), _arg(_fn),
           attrs={"axis": attr(AttrKind.INT), "keepdim": attr(AttrKind.BOOL, False)},
           traits=(PURE, RED), operands=1,
           doc=f"Index (i64) of the first {_name[3:]}imum along `axis`; no axis: over the flattened tensor.")


def _scan_infer(name):
    def infer(types, a):
        t = _tensor(types[0], name)
        normalize_axis(a["axis"], t.rank, name)
        if t.dtype.is_bool:
            raise TypeError(f"xc.{name} needs a numeric tensor, got {t}")
        return [t]
    return infer


def _scan(fn):
    def run(args, a, out):
        x = args[0]
        if x.ndim == 0:
            return [x]
        return [fn(_wide(x), axis=normalize_axis(a["axis"], x.ndim), dtype=_wide(x).dtype)]
    return run


for _name, _fn in {"cumsum": np.cumsum, "cumprod": np.cumprod}.items():
    define(_name, _scan_infer(_name), _scan(_fn), attrs={"axis": req(AttrKind.INT)},
           traits=(PURE,), operands=1, doc=f"Inclusive {_name[3:]} scan along `axis`, same shape and dtype.")
