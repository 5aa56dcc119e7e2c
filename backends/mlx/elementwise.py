"""MLX lowerings of elementwise ops: one table line per op (an MLX function name, or a helper
written with MLX alone where MLX has no function of that name)."""
from __future__ import annotations

import math

from xcomp.backends.mlx.table import mx  # None where MLX is missing: source emission needs no MLX

from xcomp.backends.mlx.table import Expr, helper, lowers, names
from xcomp.ops.elementwise import bessel_i, digamma

helper(bessel_i)
helper(digamma)


@helper
def lgamma(x):
    """log|Gamma(x)| (MLX has none): Lanczos (g = 7, n = 9) for x >= 0.5, the reflection formula
    below, inf at the poles."""
    coef = (0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313,
            -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6,
            1.5056327351493116e-7)
    small = x < 0.5
    z = mx.where(small, 1 - x, x) - 1
    a = mx.full(x.shape, coef[0], x.dtype)
    for i, c in enumerate(coef[1:], start=1):
        a = a + c / (z + i)
    t = z + 7.5
    pos = 0.5 * math.log(2 * math.pi) + (z + 0.5) * mx.log(t) - t + mx.log(a)
    reflected = math.log(math.pi) - mx.log(mx.abs(mx.sin(math.pi * x))) - pos
    pole = mx.logical_and(x <= 0, x == mx.floor(x))
    return mx.where(pole, mx.array(math.inf, x.dtype), mx.where(small, reflected, pos))


@helper
def i0(x):
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


@helper
def trunc(x):
    return mx.where(x < 0, mx.ceil(x), mx.floor(x))


@helper
def frac(x):
    return x - trunc(x)


@helper
def exp2(x):
    return mx.power(2.0, x).astype(x.dtype)


@helper
def erfc(x):
    return 1 - mx.erf(x)


@helper
def relu(x):
    return mx.maximum(x, mx.array(0, x.dtype))


@helper
def mish(x):
    return x * mx.tanh(mx.logaddexp(x, mx.array(0, x.dtype)))


@helper
def hardsigmoid(x):
    return mx.clip(x / 6 + 0.5, 0, 1)


@helper
def hardswish(x):
    return x * hardsigmoid(x)


@helper
def isfinite(x):
    return mx.logical_not(mx.logical_or(mx.isnan(x), mx.isinf(x)))


@helper
def fmod(a, b):
    return a - b * trunc(a / b).astype(a.dtype)


@helper
def copysign(a, b):
    negative = mx.logical_or(b < 0, mx.logical_and(b == 0, 1 / b < 0))
    return mx.where(negative, -mx.abs(a), mx.abs(a))


@helper
def hypot(a, b):
    return mx.sqrt(a * a + b * b)


@helper
def softplus(x, beta, threshold):
    return mx.where(x * beta > threshold, x, mx.logaddexp(beta * x, mx.array(0, x.dtype)) / beta)


@helper
def elu(x, alpha, scale, input_scale):
    return scale * mx.where(x > 0, x, alpha * (mx.exp(x * input_scale) - 1))


@helper
def leaky_relu(x, slope):
    return mx.where(x > 0, x, x * slope)


names({
    "neg": "negative", "abs": "abs", "sign": "sign", "exp": "exp", "expm1": "expm1", "log": "log",
    "log2": "log2", "log10": "log10", "log1p": "log1p", "sqrt": "sqrt", "rsqrt": "rsqrt",
    "reciprocal": "reciprocal", "square": "square", "sin": "sin", "cos": "cos", "tan": "tan",
    "asin": "arcsin", "acos": "arccos", "atan": "arctan", "sinh": "sinh", "cosh": "cosh", "tanh": "tanh",
    "asinh": "arcsinh", "acosh": "arccosh", "atanh": "arctanh", "erf": "erf", "erfinv": "erfinv",
    "sigmoid": "sigmoid", "floor": "floor", "ceil": "ceil", "round": "round",
    "logical_not": "logical_not", "bitwise_not": "bitwise_invert", "isnan": "isnan", "isinf": "isinf",
    # binary
    "add": "add", "sub": "subtract", "mul": "multiply", "div": "divide", "floor_div": "floor_divide",
    "remainder": "remainder", "pow": "power", "maximum": "maximum", "minimum": "minimum",
    "atan2": "arctan2", "bitwise_and": "bitwise_and", "bitwise_or": "bitwise_or",
    "bitwise_xor": "bitwise_xor", "shift_left": "left_shift", "shift_right": "right_shift",
    "eq": "equal", "ne": "not_equal", "lt": "less", "le": "less_equal", "gt": "greater",
    "ge": "greater_equal", "logical_and": "logical_and", "logical_or": "logical_or",
    "logical_xor": "not_equal", "where": "where",
})

for _name, _fn in {"exp2": exp2, "erfc": erfc, "i0": i0, "trunc": trunc, "frac": frac, "relu": relu,
                   "mish": mish, "hardsigmoid": hardsigmoid, "hardswish": hardswish, "lgamma": lgamma,
                   "isfinite": isfinite, "fmod": fmod, "copysign": copysign, "hypot": hypot}.items():
    lowers(_name, _fn)

for _name, (_order, _scaled) in {"i0e": (0, True), "i1": (1, False), "i1e": (1, True)}.items():
    lowers(_name, bessel_i, lambda a, i, o, order=_order, scaled=_scaled:
           {"xp": Expr("mx"), "order": order, "scaled": scaled})
lowers("digamma", digamma, lambda a, i, o: {"xp": Expr("mx")})
lowers("softplus", softplus, lambda a, i, o: {"beta": a["beta"], "threshold": a["threshold"]})
lowers("elu", elu, lambda a, i, o: {"alpha": a["alpha"], "scale": a["scale"], "input_scale": a["input_scale"]})
lowers("leaky_relu", leaky_relu, lambda a, i, o: {"slope": a["slope"]})
lowers("cast", ".astype", lambda a, i, o: {"dtype": Expr(f"mx.{mx_name(a['dtype'])}")})


def mx_name(dtype) -> str:
    """The MLX dtype name of an IR dtype (`DType.BOOL` -> `"bool_"`)."""
    from xcomp.backends.mlx.table import MX_NAMES
    return MX_NAMES[dtype]
