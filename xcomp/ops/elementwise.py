"""Elementwise ops: unary math, activations, binary arithmetic, comparisons, logic, where, cast.

Binary ops broadcast like numpy and require operands of one dtype (frontends insert casts).
Each op is one line of a table: name, numpy reference, and the dtype rule.
"""
from __future__ import annotations

import enum
import math

import numpy as np

from xcomp.ir.types import DType, TensorType, broadcast_shapes
from xcomp.ops.registry import AttrKind, Trait, attr, define, req

PURE, EW, COMM = Trait.PURE, Trait.ELEMENTWISE, Trait.COMMUTATIVE

_erf = np.vectorize(math.erf, otypes=[np.float64])
_erfc = np.vectorize(math.erfc, otypes=[np.float64])
_lgamma = np.vectorize(math.lgamma, otypes=[np.float64])


def erf(x):
    return _erf(np.asarray(x, np.float64)).astype(np.asarray(x).dtype)


def erfinv(x):
    """Inverse error function by Newton iteration on math.erf (float64)."""
    y = np.asarray(x, np.float64)
    # initial guess (Giles) then Newton steps
    w = -np.log(np.clip((1.0 - y) * (1.0 + y), 1e-300, None))
    z = np.where(w < 5.0, np.sqrt(np.maximum(w, 0)) * np.sign(y) * 0.886, np.sign(y) * np.sqrt(w))
    for _ in range(60):
        err = _erf(z) - y
        z = z - err / (2.0 / math.sqrt(math.pi) * np.exp(-z * z))
    z = np.where(np.abs(y) == 1, np.sign(y) * np.inf, z)
    z = np.where(np.abs(y) > 1, np.nan, z)
    return z.astype(np.asarray(x).dtype)


# Special functions written once over an array namespace `xp` (numpy here, in float64; the MLX
# backend calls the same code with mlx.core). Only abs/where/exp/log/... of both libraries are used.
def bessel_i(x, xp, order: int, scaled: bool):
    """Modified Bessel function I0 or I1 (`order`), times exp(-|x|) when `scaled`. Its power series
    (all terms positive, so no cancellation) up to |x| = 15, the asymptotic expansion beyond."""
    ax = xp.abs(x)
    small = xp.minimum(ax, 15.0)
    y = small * small / 4
    term = xp.ones_like(x) if order == 0 else small / 2
    series = term
    for k in range(1, 41):
        term = term * y / (k * (k + order))
        series = series + term
    if scaled:
        series = series * xp.exp(-small)
    big = xp.maximum(ax, 15.0)
    inv = 1 / (8 * big)
    mu, coef, poly = 4 * order * order, xp.ones_like(x), xp.ones_like(x)
    for k in range(1, 7):  # prod_{j<=k} -(mu - (2j-1)^2) / (k! (8x)^k)
        coef = coef * -(mu - (2 * k - 1) ** 2) / k * inv
        poly = poly + coef
    asym = poly / xp.sqrt(2 * math.pi * big)
    if not scaled:
        asym = asym * xp.exp(big)
    out = xp.where(ax <= 15.0, series, asym)
    return out if order == 0 else xp.where(x < 0, -out, out)


def digamma(x, xp):
    """psi(x): reflection below 1/2, six recurrence steps up, then the asymptotic series.
    -inf at 0 and NaN at the negative integers, as torch."""
    small = x < 0.5
    y = xp.where(small, 1 - x, x)
    acc = xp.zeros_like(x)
    for i in range(6):
        acc = acc - 1 / (y + i)
    z = y + 6
    iz2 = 1 / (z * z)
    series = xp.log(z) - 0.5 / z - iz2 * (1 / 12 - iz2 * (1 / 120 - iz2 * (1 / 252 - iz2 * (1 / 240 - iz2 / 132))))
    pos = acc + series
    frac = x - xp.where(x < 0, xp.ceil(x), xp.floor(x))  # tan(pi * frac) is accurate, tan(pi * x) is not
    out = xp.where(small, pos - math.pi / xp.tan(math.pi * frac), pos)
    pole = xp.logical_and(x <= 0, x == xp.floor(x))
    return xp.where(x == 0, -math.inf, xp.where(pole, math.nan, out))


def _f64(fn):
    """Run a special function in float64, quietly (poles give inf/NaN by design)."""
    def run(x):
        with np.errstate(all="ignore"):
            return fn(x.astype(np.float64))
    return run


def _float_only(name):
    def check(t):
        if not t.dtype.is_float:
            raise TypeError(f"xc.{name} needs a floating-point operand, got {t}")
    return check


def _tensor(types, name):
    for t in types:
        if not isinstance(t, TensorType):
            raise TypeError(f"xc.{name} takes tensors, got {t}")


def _unary_infer(name, float_only):
    def infer(types, a):
        _tensor(types, name)
        if float_only and not types[0].dtype.is_float:
            raise TypeError(f"xc.{name} needs a floating-point tensor, got {types[0]}")
        return [types[0]]
    return infer


def _binary_infer(name, result_dtype=None, float_only=False):
    def infer(types, a):
        _tensor(types, name)
        dts = {t.dtype for t in types}
        if len(dts) != 1:
            raise TypeError(f"xc.{name} needs operands of one dtype, got {[str(t) for t in types]}")
        dt = types[0].dtype
        if float_only and not dt.is_float:
            raise TypeError(f"xc.{name} needs floating-point operands, got {types[0]}")
        try:
            shape = broadcast_shapes(*(t.shape for t in types))
        except ValueError as e:
            raise TypeError(f"xc.{name}: {e}") from None
        return [TensorType(shape, result_dtype or dt)]
    return infer


def _ref(fn):
    return lambda args, a, out: [fn(*args, **a)]


def _sigmoid(x):
    return (1.0 / (1.0 + np.exp(-x.astype(np.float64)))).astype(x.dtype)


class GeluApproximate(enum.Enum):
    NONE = "none"
    TANH = "tanh"


def _gelu(x, approximate):
    x64 = x.astype(np.float64)
    if approximate is GeluApproximate.TANH:
        y = 0.5 * x64 * (1 + np.tanh(math.sqrt(2 / math.pi) * (x64 + 0.044715 * x64 ** 3)))
    else:
        y = 0.5 * x64 * (1 + _erf(x64 / math.sqrt(2)))
    return y.astype(x.dtype)


def _softplus(x, beta, threshold):
    x64 = x.astype(np.float64)
    return np.where(x64 * beta > threshold, x64, np.log1p(np.exp(beta * x64)) / beta).astype(x.dtype)


def _elu(x, alpha, scale, input_scale):
    x64 = x.astype(np.float64)
    return (scale * np.where(x64 > 0, x64, alpha * (np.exp(x64 * input_scale) - 1))).astype(x.dtype)


# name -> (reference, float_only, extra attrs)
UNARY = {
    "neg": (np.negative, False), "abs": (np.abs, False), "sign": (np.sign, False),
    "exp": (np.exp, True), "exp2": (np.exp2, True), "expm1": (np.expm1, True),
    "log": (np.log, True), "log2": (np.log2, True), "log10": (np.log10, True), "log1p": (np.log1p, True),
    "sqrt": (np.sqrt, True), "rsqrt": (lambda x: 1 / np.sqrt(x), True),
    "reciprocal": (lambda x: 1 / x, True), "square": (np.square, False),
    "sin": (np.sin, True), "cos": (np.cos, True), "tan": (np.tan, True),
    "asin": (np.arcsin, True), "acos": (np.arccos, True), "atan": (np.arctan, True),
    "sinh": (np.sinh, True), "cosh": (np.cosh, True), "tanh": (np.tanh, True),
    "asinh": (np.arcsinh, True), "acosh": (np.arccosh, True), "atanh": (np.arctanh, True),
    "erf": (erf, True), "erfc": (lambda x: _erfc(x.astype(np.float64)), True), "erfinv": (erfinv, True),
    "i0": (lambda x: np.i0(x.astype(np.float64)), True),
    "i0e": (_f64(lambda x: bessel_i(x, np, 0, True)), True), "i1": (_f64(lambda x: bessel_i(x, np, 1, False)), True),
    "i1e": (_f64(lambda x: bessel_i(x, np, 1, True)), True), "digamma": (_f64(lambda x: digamma(x, np)), True), "lgamma": (lambda x: _lgamma(x).astype(x.dtype), True),
    "sigmoid": (_sigmoid, True),
    "floor": (np.floor, False), "ceil": (np.ceil, False), "round": (np.round, False),
    "trunc": (np.trunc, False), "frac": (lambda x: x - np.trunc(x), True),
    "relu": (lambda x: np.maximum(x, np.zeros((), x.dtype)), False),
    "silu": (lambda x: (x * _sigmoid(x)).astype(x.dtype), True),
    "mish": (lambda x: (x * np.tanh(np.log1p(np.exp(x.astype(np.float64))))).astype(x.dtype), True),
    "hardsigmoid": (lambda x: np.clip(x / 6 + 0.5, 0, 1).astype(x.dtype), True),
    "hardswish": (lambda x: (x * np.clip(x / 6 + 0.5, 0, 1)).astype(x.dtype), True),
    "logical_not": (np.logical_not, False), "bitwise_not": (np.invert, False),
    "isnan": (np.isnan, False), "isinf": (np.isinf, False), "isfinite": (np.isfinite, False),
}
BOOL_RESULT = {"logical_not", "isnan", "isinf", "isfinite"}

for _name, (_fn, _float) in UNARY.items():
    _infer = _unary_infer(_name, _float)
    if _name in BOOL_RESULT:
        _infer = (lambda inner: lambda types, a: [inner(types, a)[0].with_dtype(DType.BOOL)])(_infer)
    define(_name, _infer, _ref(_fn), traits=(PURE, EW), operands=1)

define("gelu", _unary_infer("gelu", True), _ref(_gelu), traits=(PURE, EW, Trait.COMPOSITE), operands=1,
       attrs={"approximate": attr(AttrKind.ENUM, GeluApproximate.NONE, enum=GeluApproximate)})
define("softplus", _unary_infer("softplus", True), _ref(_softplus), traits=(PURE, EW), operands=1,
       attrs={"beta": attr(AttrKind.FLOAT, 1.0), "threshold": attr(AttrKind.FLOAT, 20.0)})
define("elu", _unary_infer("elu", True), _ref(_elu), traits=(PURE, EW), operands=1,
       attrs={"alpha": attr(AttrKind.FLOAT, 1.0), "scale": attr(AttrKind.FLOAT, 1.0),
              "input_scale": attr(AttrKind.FLOAT, 1.0)})
define("leaky_relu", _unary_infer("leaky_relu", True),
       _ref(lambda x, slope: np.where(x > 0, x, x * np.asarray(slope, x.dtype))),
       traits=(PURE, EW), operands=1, attrs={"slope": attr(AttrKind.FLOAT, 0.01)})
define("cast", lambda types, a: [types[0].with_dtype(a["dtype"])],
       lambda args, a, out: [_cast(args[0], a["dtype"])],
       traits=(PURE, EW), operands=1, attrs={"dtype": req(AttrKind.DTYPE)})


def _cast(x, dtype: DType):
    if dtype.is_int and np.asarray(x).dtype.kind == "f":
        x = np.trunc(x)
        with np.errstate(invalid="ignore"):
            return x.astype(dtype.np)
    return np.asarray(x).astype(dtype.np)


def _div(a, b):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.true_divide(a, b).astype(a.dtype)


def _int_safe(fn):
    """Integer floor-div/mod by zero: numpy warns and gives 0; keep quiet (torch raises on CPU)."""
    def run(a, b):
        with np.errstate(divide="ignore", invalid="ignore"):
            return fn(a, b)
    return run


def _pow(a, b):
    if a.dtype.kind in "iu":
        return np.power(a, np.maximum(b, 0)).astype(a.dtype)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.power(a, b)


# name -> (reference, commutative, float_only)
BINARY = {
    "add": (np.add, True, False), "sub": (np.subtract, False, False), "mul": (np.multiply, True, False),
    "div": (_div, False, True), "floor_div": (_int_safe(np.floor_divide), False, False),
    "remainder": (_int_safe(np.mod), False, False), "fmod": (_int_safe(np.fmod), False, False),
    "pow": (_pow, False, False), "maximum": (np.maximum, True, False), "minimum": (np.minimum, True, False),
    "atan2": (np.arctan2, False, True), "copysign": (np.copysign, False, True),
    "hypot": (np.hypot, True, True),
    "bitwise_and": (np.bitwise_and, True, False), "bitwise_or": (np.bitwise_or, True, False),
    "bitwise_xor": (np.bitwise_xor, True, False),
    "shift_left": (np.left_shift, False, False), "shift_right": (np.right_shift, False, False),
}
COMPARE = {
    "eq": (np.equal, True), "ne": (np.not_equal, True), "lt": (np.less, False),
    "le": (np.less_equal, False), "gt": (np.greater, False), "ge": (np.greater_equal, False),
    "logical_and": (np.logical_and, True), "logical_or": (np.logical_or, True),
    "logical_xor": (np.logical_xor, True),
}

for _name, (_fn, _comm, _float) in BINARY.items():
    define(_name, _binary_infer(_name, float_only=_float), _ref(_fn),
           traits=(PURE, EW, COMM) if _comm else (PURE, EW), operands=2)
for _name, (_fn, _comm) in COMPARE.items():
    define(_name, _binary_infer(_name, DType.BOOL), _ref(_fn),
           traits=(PURE, EW, COMM) if _comm else (PURE, EW), operands=2)


def _where_infer(types, a):
    _tensor(types, "where")
    c, x, y = types
    if c.dtype is not DType.BOOL:
        raise TypeError(f"xc.where needs a bool condition, got {c}")
    if x.dtype != y.dtype:
        raise TypeError(f"xc.where needs branches of one dtype, got {x} and {y}")
    try:
        return [TensorType(broadcast_shapes(c.shape, x.shape, y.shape), x.dtype)]
    except ValueError as e:
        raise TypeError(f"xc.where: {e}") from None


define("where", _where_infer, _ref(np.where), traits=(PURE, EW), operands=3)
