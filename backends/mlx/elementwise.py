"""MLX lowerings of elementwise ops: one table line per op."""
from __future__ import annotations

import math

import mlx.core as mx

from xcomp.backends.mlx.dtypes import mx_dtype
from xcomp.backends.mlx.table import MLX_OPS, _as_list
from xcomp.ops.elementwise import GeluApproximate, bessel_i, digamma

_LANCZOS = (0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313,
            -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6,
            1.5056327351493116e-7)  # g = 7, n = 9


def _lgamma_pos(x):
    """log|Gamma(x)| for x >= 0.5 (Lanczos)."""
    z = x - 1
    a = mx.full(x.shape, _LANCZOS[0], x.dtype)
    for i, c in enumerate(_LANCZOS[1:], start=1):
        a = a + c / (z + i)
    t = z + 7.5
    return 0.5 * math.log(2 * math.pi) + (z + 0.5) * mx.log(t) - t + mx.log(a)


def _lgamma(x):
    """MLX has no lgamma: Lanczos for x >= 0.5, the reflection formula below, inf at the poles."""
    small = x < 0.5
    safe = mx.where(small, 1 - x, x)
    pos = _lgamma_pos(safe)
    reflected = math.log(math.pi) - mx.log(mx.abs(mx.sin(math.pi * x))) - pos
    pole = mx.logical_and(x <= 0, x == mx.floor(x))
    inf = mx.array(math.inf, x.dtype)
    return mx.where(pole, inf, mx.where(small, reflected, pos))


def _i0(x):
    """Modified Bessel I0: its power series (positive terms, no cancellation) up to |x| = 15,
    the asymptotic expansion beyond."""
    ax = mx.abs(x)
    y = mx.square(mx.minimum(ax, 15.0) / 2)
    term, series = mx.ones_like(x), mx.ones_like(x)
    for k in range(1, 41):
        term = term * y / (k * k)
        series = series + term
    big = mx.maximum(ax, 15.0)
    inv = 1 / big
    poly = 1 + inv * (1 / 8 + inv * (9 / 128 + inv * (225 / 3072 + inv * (11025 / 98304 + inv * 893025 / 3932160))))
    asym = mx.exp(big) / mx.sqrt(2 * math.pi * big) * poly
    return mx.where(ax <= 15.0, series, asym)


UNARY = {
    "neg": mx.negative, "abs": mx.abs, "sign": mx.sign, "exp": mx.exp, "exp2": lambda x: mx.power(2.0, x).astype(x.dtype),
    "expm1": mx.expm1, "log": mx.log, "log2": mx.log2, "log10": mx.log10, "log1p": mx.log1p,
    "sqrt": mx.sqrt, "rsqrt": mx.rsqrt, "reciprocal": mx.reciprocal, "square": mx.square,
    "sin": mx.sin, "cos": mx.cos, "tan": mx.tan, "asin": mx.arcsin, "acos": mx.arccos, "atan": mx.arctan,
    "sinh": mx.sinh, "cosh": mx.cosh, "tanh": mx.tanh, "asinh": mx.arcsinh, "acosh": mx.arccosh,
    "atanh": mx.arctanh, "erf": mx.erf, "erfc": lambda x: 1 - mx.erf(x), "erfinv": mx.erfinv, "i0": _i0,
    "i0e": lambda x: bessel_i(x, mx, 0, True), "i1": lambda x: bessel_i(x, mx, 1, False),
    "i1e": lambda x: bessel_i(x, mx, 1, True), "digamma": lambda x: digamma(x, mx), "sigmoid": mx.sigmoid,
    "floor": mx.floor, "ceil": mx.ceil, "round": mx.round, "trunc": lambda x: mx.where(x < 0, mx.ceil(x), mx.floor(x)),
    "frac": lambda x: x - mx.where(x < 0, mx.ceil(x), mx.floor(x)),
    "relu": lambda x: mx.maximum(x, mx.array(0, x.dtype)), "silu": lambda x: x * mx.sigmoid(x),
    "mish": lambda x: x * mx.tanh(mx.logaddexp(x, mx.array(0, x.dtype))),
    "hardsigmoid": lambda x: mx.clip(x / 6 + 0.5, 0, 1),
    "hardswish": lambda x: x * mx.clip(x / 6 + 0.5, 0, 1),
    "lgamma": _lgamma, "logical_not": mx.logical_not, "bitwise_not": mx.bitwise_invert,
    "isnan": mx.isnan, "isinf": mx.isinf, "isfinite": lambda x: mx.logical_not(mx.logical_or(mx.isnan(x), mx.isinf(x))),
}

BINARY = {
    "add": mx.add, "sub": mx.subtract, "mul": mx.multiply, "div": mx.divide,
    "floor_div": mx.floor_divide, "remainder": mx.remainder,
    "fmod": lambda a, b: a - b * mx.where(a / b < 0, mx.ceil(a / b), mx.floor(a / b)).astype(a.dtype),
    "pow": mx.power, "maximum": mx.maximum, "minimum": mx.minimum, "atan2": mx.arctan2,
    "copysign": lambda a, b: mx.where(mx.logical_or(b < 0, mx.logical_and(b == 0, 1 / b < 0)), -mx.abs(a), mx.abs(a)),
    "hypot": lambda a, b: mx.sqrt(a * a + b * b),
    "bitwise_and": mx.bitwise_and, "bitwise_or": mx.bitwise_or, "bitwise_xor": mx.bitwise_xor,
    "shift_left": mx.left_shift, "shift_right": mx.right_shift,
    "eq": mx.equal, "ne": mx.not_equal, "lt": mx.less, "le": mx.less_equal, "gt": mx.greater,
    "ge": mx.greater_equal, "logical_and": mx.logical_and, "logical_or": mx.logical_or,
    "logical_xor": lambda a, b: mx.not_equal(a, b),
}


def _gelu(x, approximate):
    if approximate is GeluApproximate.TANH:
        return 0.5 * x * (1 + mx.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x * x * x)))
    return 0.5 * x * (1 + mx.erf(x / math.sqrt(2)))


WITH_ATTRS = {
    "gelu": lambda x, approximate: _gelu(x, approximate),
    "softplus": lambda x, beta, threshold: mx.where(x * beta > threshold, x, mx.logaddexp(beta * x, mx.array(0, x.dtype)) / beta),
    "elu": lambda x, alpha, scale, input_scale: scale * mx.where(x > 0, x, alpha * (mx.exp(x * input_scale) - 1)),
    "leaky_relu": lambda x, slope: mx.where(x > 0, x, x * slope),
    "cast": lambda x, dtype: x.astype(mx_dtype(dtype)),
    "where": lambda c, a, b: mx.where(c, a, b),
}

for _table in (UNARY, BINARY, WITH_ATTRS):
    for _name, _fn in _table.items():
        MLX_OPS[f"xc.{_name}"] = _as_list((lambda f: lambda args, attrs, out: f(*args, **attrs))(_fn))
