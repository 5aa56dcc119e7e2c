"""aten elementwise ops -> xc elementwise ops.

Operands are promoted to the dtype torch computes for the node (its meta) before the op is built,
so every IR binary op sees one dtype. Comparisons promote to the operands' common dtype.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from xcomp.frontends.aten import aten
from xcomp.ir.core import Value
from xcomp.ir.types import DType
from xcomp.ops.elementwise import GeluApproximate


def common_dtype(cx, *xs) -> DType:
    """torch's result type of mixing these values and Python numbers."""
    from xcomp.frontends.torch_export import XCOMP_TO_TORCH, to_dtype
    probes = []
    for x in xs:
        if isinstance(x, Value):
            shape = () if x.type.rank == 0 else (1,)
            probes.append(torch.empty(shape, dtype=XCOMP_TO_TORCH[x.type.dtype]))
        else:
            probes.append(x)
    dt = probes[0] if not isinstance(probes[0], torch.Tensor) else probes[0].dtype
    acc = probes[0]
    for p in probes[1:]:
        dt = torch.result_type(acc, p)
        acc = torch.empty(() if not any(isinstance(q, torch.Tensor) and q.dim() for q in (acc, p)) else (1,), dtype=dt)
    if not isinstance(dt, torch.dtype):
        dt = torch.tensor(probes[0]).dtype
    return to_dtype(dt)


def unary(op: str):
    """Converter for `aten.<x>(self)` computing in the result dtype."""
    return lambda cx, x: cx.op(op, cx.tensor(x, cx.out_dtype))


def binary(op: str):
    """Converter for `aten.<x>(self, other)`; both operands take the result dtype."""
    def conv(cx, a, b):
        dt = cx.out_dtype
        return cx.op(op, cx.tensor(a, dt), cx.tensor(b, dt))
    return conv


def compare(op: str):
    def conv(cx, a, b):
        dt = common_dtype(cx, a, b)
        return cx.op(op, cx.tensor(a, dt), cx.tensor(b, dt))
    return conv


UNARY = {
    "neg": "neg", "abs": "abs", "sign": "sign", "exp": "exp", "exp2": "exp2", "expm1": "expm1",
    "log": "log", "log2": "log2", "log10": "log10", "log1p": "log1p", "sqrt": "sqrt", "rsqrt": "rsqrt",
    "reciprocal": "reciprocal", "square": "square", "sin": "sin", "cos": "cos", "tan": "tan",
    "asin": "asin", "acos": "acos", "atan": "atan", "sinh": "sinh", "cosh": "cosh", "tanh": "tanh",
    "asinh": "asinh", "acosh": "acosh", "atanh": "atanh", "erf": "erf", "erfinv": "erfinv",
    "lgamma": "lgamma", "sigmoid": "sigmoid", "floor": "floor", "ceil": "ceil", "round": "round",
    "trunc": "trunc", "frac": "frac", "relu": "relu", "silu": "silu", "mish": "mish",
    "hardsigmoid": "hardsigmoid", "hardswish": "hardswish", "bitwise_not": "bitwise_not",
    "erfc": "erfc", "i0": "i0", "sgn": "sign", "special_i0e": "i0e", "special_i1": "i1", "special_i1e": "i1e",
    "digamma": "digamma",
}
for _aten, _xc in UNARY.items():
    aten(f"aten.{_aten}.default")(unary(_xc))


@aten("aten.logical_not.default")
def _logical_not(cx, x):
    return cx.op("logical_not", cx.tensor(x, DType.BOOL))


for _n in ("isnan", "isinf", "isfinite"):
    aten(f"aten.{_n}.default")((lambda n: lambda cx, x: cx.op(n, x))(_n))

BINARY = {
    "mul": "mul", "div": "div", "maximum": "maximum", "minimum": "minimum", "atan2": "atan2",
    "pow": "pow", "remainder": "remainder", "fmod": "fmod", "bitwise_and": "bitwise_and",
    "bitwise_or": "bitwise_or", "bitwise_xor": "bitwise_xor", "copysign": "copysign", "hypot": "hypot",
}
for _aten, _xc in BINARY.items():
    for _ov in ("Tensor", "Scalar", "Tensor_Tensor", "Tensor_Scalar", "Scalar_Tensor", "default"):
        try:
            getattr(getattr(torch.ops.aten, _aten), _ov)
        except AttributeError:
            continue
        aten(f"aten.{_aten}.{_ov}")(binary(_xc))

for _aten, _xc in {"eq": "eq", "ne": "ne", "lt": "lt", "le": "le", "gt": "gt", "ge": "ge"}.items():
    aten(f"aten.{_aten}.Tensor", f"aten.{_aten}.Scalar")(compare(_xc))

for _aten, _xc in {"bitwise_left_shift": "shift_left", "bitwise_right_shift": "shift_right"}.items():
    aten(*(f"aten.{_aten}.{ov}" for ov in ("Tensor", "Tensor_Scalar", "Scalar_Tensor")))(binary(_xc))

for _aten in ("logical_and", "logical_or", "logical_xor"):
    aten(f"aten.{_aten}.default")((lambda n: lambda cx, a, b: cx.op(n, cx.tensor(a, DType.BOOL),
                                                                      cx.tensor(b, DType.BOOL)))(_aten))


def with_alpha(op: str):
    """`aten.add`/`aten.sub`: self op alpha * other, in the result dtype."""
    def conv(cx, a, b, alpha=1):
        dt = cx.out_dtype
        b = cx.tensor(b, dt)
        if alpha != 1:
            b = cx.op("mul", b, cx.const(alpha, dt))
        return cx.op(op, cx.tensor(a, dt), b)
    return conv


add = aten("aten.add.Tensor", "aten.add.Scalar")(with_alpha("add"))
sub = aten("aten.sub.Tensor", "aten.sub.Scalar")(with_alpha("sub"))


@aten("aten.rsub.Scalar", "aten.rsub.Tensor")
def rsub(cx, a, b, alpha=1):
    """rsub(self, other, alpha) = other - alpha * self."""
    return sub(cx, b, a, alpha)


@aten("aten.div.Tensor_mode", "aten.div.Scalar_mode")
def div_mode(cx, a, b, rounding_mode=None):
    dt = cx.out_dtype
    a, b = cx.tensor(a, dt), cx.tensor(b, dt)
    if rounding_mode == "floor":
        return cx.op("floor_div", a, b)
    q = cx.op("div", a, b) if dt.is_float else None
    if rounding_mode == "trunc":
        if dt.is_float:
            return cx.op("trunc", q)
        # integer truncation division: sign(a*b) * (|a| // |b|)
        fl = cx.op("floor_div", cx.op("abs", a), cx.op("abs", b))
        neg = cx.op("ne", cx.op("lt", a, cx.const(0, dt)), cx.op("lt", b, cx.const(0, dt)))
        return cx.op("where", neg, cx.op("neg", fl), fl)
    return q


@aten("aten.floor_divide.default", "aten.floor_divide.Scalar")
def floor_divide(cx, a, b):
    dt = cx.out_dtype
    return cx.op("floor_div", cx.tensor(a, dt), cx.tensor(b, dt))


@aten("aten.where.self", "aten.where.ScalarSelf", "aten.where.ScalarOther", "aten.where.Scalar")
def where(cx, c, a, b):
    dt = cx.out_dtype
    return cx.op("where", cx.tensor(c, DType.BOOL), cx.tensor(a, dt), cx.tensor(b, dt))


@aten("aten.clamp.default", "aten.clamp.Tensor", "aten.clamp_min.default", "aten.clamp_min.Tensor")
def clamp(cx, x, lo=None, hi=None):
    dt = cx.out_dtype
    y = cx.tensor(x, dt)
    if lo is not None:
        y = cx.op("maximum", y, cx.tensor(lo, dt))
    if hi is not None:
        y = cx.op("minimum", y, cx.tensor(hi, dt))
    return y


@aten("aten.clamp_max.default", "aten.clamp_max.Tensor")
def clamp_max(cx, x, hi):
    return clamp(cx, x, None, hi)


@aten("aten.round.decimals")
def round_decimals(cx, x, decimals=0):
    """torch's kernel: nearbyint(x * 10^d) / 10^d, or nearbyint(x / 10^-d) * 10^-d for d < 0."""
    dt = cx.out_dtype
    x = cx.tensor(x, dt)
    scale = cx.const(10.0 ** abs(decimals), dt)
    if decimals >= 0:
        return cx.op("div", cx.op("round", cx.op("mul", x, scale)), scale)
    return cx.op("mul", cx.op("round", cx.op("div", x, scale)), scale)


@aten("aten._assert_tensor_metadata.default")
def assert_tensor_metadata(cx, x, *args, **kwargs):
    """A trace-time check that `aten.to` leaves behind; the IR's types already carry it."""
    return None


@aten("aten.polygamma.default")
def polygamma(cx, n, x):
    if n != 0:
        raise NotImplementedError(f"polygamma of order {n} (only 0, the digamma function)")
    return cx.op("digamma", cx.tensor(x, cx.out_dtype))


@aten("aten.hardtanh.default")
def hardtanh(cx, x, min_val=-1.0, max_val=1.0):
    dt = cx.out_dtype
    return cx.op("minimum", cx.op("maximum", x, cx.const(min_val, dt)), cx.const(max_val, dt))


@aten("aten.angle.default")
def angle(cx, x):
    """The argument of a real number: pi below zero, else 0; NaN stays NaN."""
    dt, (x,) = _float_out(cx, x)
    zero = cx.const(0, dt)
    y = cx.op("where", cx.op("lt", x, zero), cx.const(math.pi, dt), zero)
    return cx.op("where", cx.op("isnan", x), x, y)


@aten("aten.gelu.default")
def gelu(cx, x, approximate="none"):
    return cx.op("gelu", x, approximate=GeluApproximate(approximate))


@aten("aten.leaky_relu.default")
def leaky_relu(cx, x, negative_slope=0.01):
    return cx.op("leaky_relu", x, slope=float(negative_slope))


@aten("aten.elu.default")
def elu(cx, x, alpha=1.0, scale=1.0, input_scale=1.0):
    return cx.op("elu", x, alpha=float(alpha), scale=float(scale), input_scale=float(input_scale))


@aten("aten.softplus.default")
def softplus(cx, x, beta=1.0, threshold=20.0):
    return cx.op("softplus", x, beta=float(beta), threshold=float(threshold))


@aten("aten._to_copy.default", "aten.to.dtype", "aten.clone.default", "aten.alias.default",
      "aten.detach.default", "aten.lift_fresh_copy.default", "aten.contiguous.default")
def copy_like(cx, x, *args, **kwargs):
    return cx.cast(cx.tensor(x), cx.out_dtype)


# -- decompositions into xc elementwise ops ----------------------------------------------------------
def _float_out(cx, *xs):
    dt = cx.out_dtype
    return dt, [cx.tensor(x, dt) for x in xs]


@aten("aten.signbit.default")
def signbit(cx, x):
    """x < 0, and -0.0 (whose reciprocal is -inf) too."""
    if not x.type.dtype.is_float:
        return cx.op("lt", x, cx.const(0, x.type.dtype))
    zero = cx.const(0, x.type.dtype)
    neg_zero = cx.op("logical_and", cx.op("eq", x, zero), cx.op("lt", cx.op("reciprocal", x), zero))
    return cx.op("logical_or", cx.op("lt", x, zero), neg_zero)


def _isinf_on(side: str):
    """isposinf (side "gt") / isneginf (side "lt")."""
    def conv(cx, x):
        if not x.type.dtype.is_float:
            return cx.op("ne", x, x)  # integers are never infinite
        return cx.op("logical_and", cx.op("isinf", x), cx.op(side, x, cx.const(0, x.type.dtype)))
    return conv


aten("aten.isposinf.default")(_isinf_on("gt"))
aten("aten.isneginf.default")(_isinf_on("lt"))


@aten("aten.sinc.default")
def sinc(cx, x):
    """sin(pi x) / (pi x), 1 at 0."""
    dt, (x,) = _float_out(cx, x)
    px = cx.op("mul", x, cx.const(math.pi, dt))
    return cx.op("where", cx.op("eq", x, cx.const(0, dt)), cx.const(1, dt), cx.op("div", cx.op("sin", px), px))


@aten("aten.nan_to_num.default")
def nan_to_num(cx, x, nan=0.0, posinf=None, neginf=None):
    dt = cx.out_dtype
    if not dt.is_float:
        return x
    info = np.finfo(dt.np) if dt is not DType.BF16 else torch.finfo(torch.bfloat16)
    posinf = float(info.max) if posinf is None else posinf
    neginf = float(info.min) if neginf is None else neginf
    zero = cx.const(0, dt)
    y = cx.op("where", cx.op("isnan", x), cx.const(nan, dt), x)
    inf = cx.op("isinf", y)
    y = cx.op("where", cx.op("logical_and", inf, cx.op("gt", y, zero)), cx.const(posinf, dt), y)
    return cx.op("where", cx.op("logical_and", inf, cx.op("lt", y, zero)), cx.const(neginf, dt), y)


@aten("aten.logit.default")
def logit(cx, x, eps=None):
    dt, (x,) = _float_out(cx, x)
    if eps is not None:
        x = cx.op("minimum", cx.op("maximum", x, cx.const(eps, dt)), cx.const(1 - eps, dt))
    return cx.op("log", cx.op("div", x, cx.op("sub", cx.const(1, dt), x)))


@aten("aten.heaviside.default")
def heaviside(cx, x, values):
    """`values` where x == 0, else (x > 0)."""
    dt = cx.out_dtype
    x, values = cx.tensor(x, dt), cx.tensor(values, dt)
    zero = cx.const(0, dt)
    return cx.op("where", cx.op("eq", x, zero), values, cx.cast(cx.op("gt", x, zero), dt))


def _x_log(log_op: str):
    """x * log(y) (or log1p), 0 where x == 0, NaN where y is NaN (torch's xlogy/xlog1py)."""
    def conv(cx, x, y):
        dt, (x, y) = _float_out(cx, x, y)
        zero = cx.const(0, dt)
        prod = cx.op("where", cx.op("eq", x, zero), zero, cx.op("mul", x, cx.op(log_op, y)))
        return cx.op("where", cx.op("isnan", y), y, prod)
    return conv


aten("aten.xlogy.Tensor", "aten.xlogy.Scalar_Self", "aten.xlogy.Scalar_Other")(_x_log("log"))
aten("aten.special_xlog1py.default", "aten.special_xlog1py.self_scalar",
     "aten.special_xlog1py.other_scalar")(_x_log("log1p"))


@aten("aten.special_entr.default")
def entr(cx, x):
    """-x log x for x > 0, 0 at 0, -inf below, NaN stays NaN."""
    dt, (x,) = _float_out(cx, x)
    zero = cx.const(0, dt)
    pos = cx.op("neg", cx.op("mul", x, cx.op("log", x)))
    y = cx.op("where", cx.op("gt", x, zero), pos,
              cx.op("where", cx.op("eq", x, zero), zero, cx.const(-math.inf, dt)))
    return cx.op("where", cx.op("isnan", x), x, y)


@aten("aten.special_ndtr.default")
def ndtr(cx, x):
    """The standard normal CDF: erfc(-x / sqrt 2) / 2."""
    dt, (x,) = _float_out(cx, x)
    z = cx.op("mul", x, cx.const(-math.sqrt(0.5), dt))
    return cx.op("mul", cx.op("erfc", z), cx.const(0.5, dt))


def _nan_ignoring(op: str):
    """fmax/fmin: maximum/minimum that ignore a NaN operand."""
    def conv(cx, a, b):
        dt = cx.out_dtype
        a, b = cx.tensor(a, dt), cx.tensor(b, dt)
        pick = cx.op(op, a, b)
        if not dt.is_float:
            return pick
        return cx.op("where", cx.op("isnan", a), b, cx.op("where", cx.op("isnan", b), a, pick))
    return conv


aten("aten.fmax.default")(_nan_ignoring("maximum"))
aten("aten.fmin.default")(_nan_ignoring("minimum"))


@aten("aten.ldexp.Tensor", "aten.ldexp.default")
def ldexp(cx, x, other):
    """x * 2**other."""
    dt, (x, other) = _float_out(cx, x, other)
    return cx.op("mul", x, cx.op("exp2", other))
