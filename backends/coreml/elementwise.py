"""Core ML lowerings of elementwise ops: MIL's own op where it has one, a short MIL decomposition
where it does not (expm1, log1p, atan2, copysign, fmod, isnan, ...)."""
from __future__ import annotations

import math

import numpy as np
from coremltools.converters.mil import Builder as mb

from xcomp.backends.coreml.table import (COREML_OPS, MIL_NUMPY, _as_list, dtype_name, is_float, mil_dtype,
                                         scalar_like, unsupported)
from xcomp.ir.types import DType
from xcomp.ops.elementwise import GeluApproximate


def as_dtype(x, dtype: str):
    """`x` cast to MIL dtype `dtype` (no op when it already is)."""
    return x if dtype_name(x) == dtype else mb.cast(x=x, dtype=dtype)


def as_bool(x):
    return x if dtype_name(x) == "bool" else mb.not_equal(x=x, y=scalar_like(0, x))


def select(cond, a, b):
    """mb.select with a or b of the full broadcast shape: coremltools' `select` infers its type from
    a and b alone (a (2, 8) condition with scalar branches would be declared a scalar)."""
    cond, a, b = (v if hasattr(v, "op") else mb.const(val=v) for v in (cond, a, b))
    shapes = [tuple(v.shape) for v in (cond, a, b)]
    if all(isinstance(d, (int, np.integer)) for s in shapes for d in s):
        full = tuple(np.broadcast_shapes(*shapes))
        if tuple(np.broadcast_shapes(shapes[1], shapes[2])) != full:
            if a.val is not None:
                a = mb.const(val=np.broadcast_to(np.asarray(a.val), full).copy())
            elif b.val is not None:
                b = mb.const(val=np.broadcast_to(np.asarray(b.val), full).copy())
            else:
                zeros = np.zeros(full, MIL_NUMPY[dtype_name(a)])
                a = mb.logical_or(x=a, y=zeros) if dtype_name(a) == "bool" else mb.add(x=a, y=zeros)
    elif _cond_wider(*shapes):   # symbolic sizes: `a` given cond's shape at run time
        zeros = mb.fill(shape=mb.shape(x=cond), value=np.int32(0))
        a = mb.logical_or(x=a, y=mb.cast(x=zeros, dtype="bool")) if dtype_name(a) == "bool" \
            else mb.add(x=a, y=zeros if dtype_name(a) == "int32" else mb.cast(x=zeros, dtype=dtype_name(a)))
    return mb.select(cond=cond, a=a, b=b)


def _cond_wider(cond, a, b) -> bool:
    """Whether cond has a dim (from the right) that neither branch has: coremltools would declare
    the select with the branches' smaller shape."""
    for i in range(1, len(cond) + 1):
        d = cond[-i]
        has = [s[-i] for s in (a, b) if len(s) >= i]
        if not (isinstance(d, (int, np.integer)) and d == 1) and all(
                isinstance(h, (int, np.integer)) and h == 1 for h in has):
            return True
    return False


def _c(v, x):
    return scalar_like(v, x)


def _trunc(x):
    return select(cond=mb.less(x=x, y=_c(0, x)), a=mb.ceil(x=x), b=mb.floor(x=x))


def _asinh(x):
    ax = mb.abs(x=x)
    r = mb.log(x=mb.add(x=ax, y=mb.sqrt(x=mb.add(x=mb.mul(x=ax, y=ax), y=_c(1, x)))), epsilon=_c(0, x))
    return mb.mul(x=mb.sign(x=x), y=r)


def _acosh(x):
    return mb.log(x=mb.add(x=x, y=mb.sqrt(x=mb.sub(x=mb.mul(x=x, y=x), y=_c(1, x)))), epsilon=_c(0, x))


def _neg(x):
    return mb.sub(x=_c(0, x), y=x)


UNARY = {
    "abs": lambda x: mb.abs(x=x), "exp": lambda x: mb.exp(x=x), "exp2": lambda x: mb.exp2(x=x),
    "sqrt": lambda x: mb.sqrt(x=x), "square": lambda x: mb.square(x=x),
    "log": lambda x: mb.log(x=x, epsilon=_c(0, x)),
    "log2": lambda x: mb.mul(x=mb.log(x=x, epsilon=_c(0, x)), y=_c(1 / math.log(2), x)),
    "log10": lambda x: mb.mul(x=mb.log(x=x, epsilon=_c(0, x)), y=_c(1 / math.log(10), x)),
    "log1p": lambda x: mb.log(x=mb.add(x=x, y=_c(1, x)), epsilon=_c(0, x)),
    "expm1": lambda x: mb.sub(x=mb.exp(x=x), y=_c(1, x)),
    "rsqrt": lambda x: mb.rsqrt(x=x, epsilon=_c(0, x)),
    "reciprocal": lambda x: mb.real_div(x=_c(1, x), y=x),
    "neg": _neg, "sign": lambda x: mb.sign(x=x),
    "sin": lambda x: mb.sin(x=x), "cos": lambda x: mb.cos(x=x), "tan": lambda x: mb.tan(x=x),
    "asin": lambda x: mb.asin(x=x), "acos": lambda x: mb.acos(x=x), "atan": lambda x: mb.atan(x=x),
    "sinh": lambda x: mb.sinh(x=x), "cosh": lambda x: mb.cosh(x=x), "tanh": lambda x: mb.tanh(x=x),
    "asinh": _asinh, "acosh": _acosh, "atanh": lambda x: mb.atanh(x=x),
    "erf": lambda x: mb.erf(x=x), "erfc": lambda x: mb.sub(x=_c(1, x), y=mb.erf(x=x)),
    "sigmoid": lambda x: mb.sigmoid(x=x), "relu": lambda x: mb.relu(x=x), "silu": lambda x: mb.silu(x=x),
    "floor": lambda x: mb.floor(x=x), "ceil": lambda x: mb.ceil(x=x), "round": lambda x: mb.round(x=x),
    "trunc": _trunc, "frac": lambda x: mb.sub(x=x, y=_trunc(x)),
    "mish": lambda x: mb.mul(x=x, y=mb.tanh(x=mb.softplus(x=x))),
    "hardsigmoid": lambda x: mb.sigmoid_hard(x=x, alpha=1 / 6, beta=0.5),
    "hardswish": lambda x: mb.mul(x=x, y=mb.sigmoid_hard(x=x, alpha=1 / 6, beta=0.5)),
    "isnan": lambda x: mb.not_equal(x=x, y=x),
    "isinf": lambda x: mb.equal(x=mb.abs(x=x), y=_c(np.inf, x)),
    "isfinite": lambda x: mb.less(x=mb.abs(x=x), y=_c(np.inf, x)),
}
INT_UNARY = {"abs", "sign", "square", "neg"}     # MIL ops defined on int32 too


def _unary_rule(name, fn):
    def rule(args, attrs, out_types):
        x = args[0]
        if name in ("isnan", "isinf", "isfinite") and not is_float(x):
            return mb.logical_not(x=mb.equal(x=x, y=x)) if name != "isfinite" else mb.equal(x=x, y=x)
        want = mil_dtype(out_types[0])
        if name not in INT_UNARY and not is_float(x):
            x = as_dtype(x, want if want.startswith("fp") else "fp32")
        y = fn(x)
        return as_dtype(y, want)
    return rule


for _name, _fn in UNARY.items():
    COREML_OPS[f"xc.{_name}"] = _as_list(_unary_rule(_name, _fn))


def _fmod(a, b):
    r = mb.mod(x=a, y=b)           # sign of the divisor (python); fmod takes the dividend's
    wrong = mb.logical_and(x=mb.not_equal(x=r, y=_c(0, r)),
                           y=mb.logical_xor(x=mb.less(x=r, y=_c(0, r)), y=mb.less(x=a, y=_c(0, a))))
    return select(cond=wrong, a=mb.sub(x=r, y=b), b=r)


def _atan2(y, x):
    base = mb.atan(x=mb.real_div(x=y, y=x))
    zero = _c(0, x)
    shift = select(cond=mb.less(x=y, y=zero), a=_c(-math.pi, x), b=_c(math.pi, x))
    out = select(cond=mb.less(x=x, y=zero), a=mb.add(x=base, y=shift), b=base)
    both_zero = mb.logical_and(x=mb.equal(x=x, y=zero), y=mb.equal(x=y, y=zero))
    return select(cond=both_zero, a=mb.mul(x=y, y=zero), b=out)


def _copysign(a, b):
    neg = mb.logical_or(x=mb.less(x=b, y=_c(0, b)),
                        y=mb.logical_and(x=mb.equal(x=b, y=_c(0, b)),
                                         y=mb.less(x=mb.real_div(x=_c(1, b), y=b), y=_c(0, b))))
    m = mb.abs(x=a)
    return select(cond=neg, a=_neg(m), b=m)


ARITH = {
    "add": lambda a, b: mb.add(x=a, y=b), "sub": lambda a, b: mb.sub(x=a, y=b),
    "mul": lambda a, b: mb.mul(x=a, y=b), "div": lambda a, b: mb.real_div(x=a, y=b),
    "floor_div": lambda a, b: mb.floor_div(x=a, y=b), "remainder": lambda a, b: mb.mod(x=a, y=b),
    "fmod": _fmod, "pow": lambda a, b: mb.pow(x=a, y=b),
    "maximum": lambda a, b: mb.maximum(x=a, y=b), "minimum": lambda a, b: mb.minimum(x=a, y=b),
    "atan2": _atan2, "copysign": _copysign,
    "hypot": lambda a, b: mb.sqrt(x=mb.add(x=mb.mul(x=a, y=a), y=mb.mul(x=b, y=b))),
}
FLOAT_ARITH = {"div", "atan2", "copysign", "hypot"}
COMPARE = {"eq": "equal", "ne": "not_equal", "lt": "less", "le": "less_equal", "gt": "greater",
           "ge": "greater_equal"}
LOGICAL = {"logical_and": "logical_and", "logical_or": "logical_or", "logical_xor": "logical_xor",
           "bitwise_and": "logical_and", "bitwise_or": "logical_or", "bitwise_xor": "logical_xor"}


def _common(a, b) -> str:
    da, db = dtype_name(a), dtype_name(b)
    if da == db:
        return da
    floats = [d for d in (da, db) if d.startswith("fp")]
    return "fp32" if "fp32" in floats else floats[0] if floats else "int32"


def _arith_rule(name, fn):
    def rule(args, attrs, out_types):
        want = mil_dtype(out_types[0])
        if want == "bool":   # max/min/mul of bools: on int32, then back
            a, b = (as_dtype(v, "int32") for v in args)
            return as_dtype(fn(a, b), "bool")
        a, b = (as_dtype(v, want) for v in args)
        return fn(a, b)
    return rule


def _compare_rule(mil_name):
    def rule(args, attrs, out_types):
        a, b = args
        common = _common(a, b)
        if common == "bool":
            common = "int32"
        return getattr(mb, mil_name)(x=as_dtype(a, common), y=as_dtype(b, common))
    return rule


def _logical_rule(name, mil_name):
    def rule(args, attrs, out_types):
        if name.startswith("bitwise") and out_types[0].dtype is not DType.BOOL:
            raise unsupported(name, "Core ML has no integer bitwise ops")
        return getattr(mb, mil_name)(x=as_bool(args[0]), y=as_bool(args[1]))
    return rule


for _name, _fn in ARITH.items():
    COREML_OPS[f"xc.{_name}"] = _as_list(_arith_rule(_name, _fn))
for _name, _mil in COMPARE.items():
    COREML_OPS[f"xc.{_name}"] = _as_list(_compare_rule(_mil))
for _name, _mil in LOGICAL.items():
    COREML_OPS[f"xc.{_name}"] = _as_list(_logical_rule(_name, _mil))


def _logical_not(args, attrs, out_types):
    return mb.logical_not(x=as_bool(args[0]))


def _bitwise_not(args, attrs, out_types):
    if out_types[0].dtype is not DType.BOOL:
        raise unsupported("bitwise_not", "Core ML has no integer bitwise ops")
    return mb.logical_not(x=args[0])


def _gelu(args, attrs, out_types):
    mode = "TANH_APPROXIMATION" if attrs["approximate"] is GeluApproximate.TANH else "EXACT"
    return mb.gelu(x=args[0], mode=mode)


def _softplus(args, attrs, out_types):
    x, beta, threshold = args[0], attrs["beta"], attrs["threshold"]
    bx = x if beta == 1.0 else mb.mul(x=x, y=_c(beta, x))
    sp = mb.softplus(x=bx)
    sp = sp if beta == 1.0 else mb.real_div(x=sp, y=_c(beta, x))
    return select(cond=mb.greater(x=bx, y=_c(threshold, x)), a=x, b=sp)


def _elu(args, attrs, out_types):
    x, alpha, scale, inscale = args[0], attrs["alpha"], attrs["scale"], attrs["input_scale"]
    if scale == 1.0 and inscale == 1.0:
        return mb.elu(x=x, alpha=float(alpha))
    neg = mb.mul(x=mb.sub(x=mb.exp(x=mb.mul(x=x, y=_c(inscale, x))), y=_c(1, x)), y=_c(alpha, x))
    return mb.mul(x=select(cond=mb.greater(x=x, y=_c(0, x)), a=x, b=neg), y=_c(scale, x))


def _leaky_relu(args, attrs, out_types):
    return mb.leaky_relu(x=args[0], alpha=float(attrs["slope"]))


def _cast(args, attrs, out_types):
    want = mil_dtype(out_types[0])
    x = args[0]
    if want == "bool":
        return as_bool(x)
    if dtype_name(x) == "bool" and want != "int32":
        x = mb.cast(x=x, dtype="int32")
    if want == "int32" and is_float(x):
        x = _trunc(x)  # torch truncates toward zero
    return as_dtype(x, want)


def _where(args, attrs, out_types):
    want = mil_dtype(out_types[0])
    c, a, b = args
    if want == "bool":
        a, b = as_dtype(a, "int32"), as_dtype(b, "int32")
        return as_bool(select(as_bool(c), a, b))
    return select(as_bool(c), as_dtype(a, want), as_dtype(b, want))


def _shift(left: bool):
    """Integer shifts as multiplication / floor division by 2**b (arithmetic right shift floors)."""
    def rule(args, attrs, out_types):
        a, b = (as_dtype(v, "int32") for v in args)
        p = mb.cast(x=mb.pow(x=np.float32(2), y=mb.cast(x=b, dtype="fp32")), dtype="int32")
        return mb.mul(x=a, y=p) if left else mb.floor_div(x=a, y=p)
    return rule


for _name, _rule in {"shift_left": _shift(True), "shift_right": _shift(False), "logical_not": _logical_not, "bitwise_not": _bitwise_not, "gelu": _gelu,
                     "softplus": _softplus, "elu": _elu, "leaky_relu": _leaky_relu, "cast": _cast,
                     "where": _where}.items():
    COREML_OPS[f"xc.{_name}"] = _as_list(_rule)
