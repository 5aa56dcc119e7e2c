"""Elementwise primitives: unary math, binary arithmetic, comparisons, logic, select, casts.

Regular primitives are one table entry (MLX name -> IR op name); the few with state or no single IR
op have a converter of their own below.
"""
from __future__ import annotations

import math

import numpy as np

from xcomp.frontends.mlx.dtypes import ir_dtype
from xcomp.frontends.mlx.table import Unsupported, primitive
from xcomp.ir.types import DType

UNARY = {
    "Abs": "abs", "ArcCos": "acos", "ArcCosh": "acosh", "ArcSin": "asin", "ArcSinh": "asinh",
    "ArcTan": "atan", "ArcTanh": "atanh", "Ceil": "ceil", "Cos": "cos", "Cosh": "cosh", "Erf": "erf",
    "ErfInv": "erfinv", "Exp": "exp", "Expm1": "expm1", "Floor": "floor", "Log1p": "log1p",
    "LogicalNot": "logical_not", "Negative": "neg", "Round": "round", "Sigmoid": "sigmoid",
    "Sign": "sign", "Sin": "sin", "Sinh": "sinh", "Square": "square", "Tan": "tan", "Tanh": "tanh",
    "BitwiseInvert": "bitwise_not",
}
BINARY = {
    "Add": "add", "Subtract": "sub", "Multiply": "mul", "FloorDivide": "floor_div",
    "Remainder": "remainder", "Power": "pow", "Maximum": "maximum", "Minimum": "minimum",
    "ArcTan2": "atan2", "NotEqual": "ne", "Greater": "gt", "GreaterEqual": "ge", "Less": "lt",
    "LessEqual": "le", "LogicalAnd": "logical_and", "LogicalOr": "logical_or",
}
IDENTITY = ("Copy", "StopGradient", "Conjugate", "Real")  # no-ops on real arrays
LOG_BASES = {0: "log2", 1: "log10", 2: "log"}                 # Log's Base enum: two, ten, e
BITWISE = {0: "bitwise_and", 1: "bitwise_or", 2: "bitwise_xor", 3: "shift_left", 4: "shift_right"}


def one_dtype(cx, values):
    """Operands cast to their common dtype (MLX casts before its primitives; this is a safeguard)."""
    dts = {v.type.dtype for v in values}
    if len(dts) == 1:
        return list(values)
    common = DType.from_numpy(np.result_type(*(d.np for d in dts)))
    return [cx.cast(v, common) for v in values]


def _unary(ir):
    return lambda cx, inputs, args: [cx.op(ir, inputs[0])]


def _binary(ir):
    return lambda cx, inputs, args: [cx.op(ir, *one_dtype(cx, inputs))]


for _mx, _ir in UNARY.items():
    primitive(_mx, _ir)(_unary(_ir))
for _mx, _ir in BINARY.items():
    primitive(_mx, _ir)(_binary(_ir))
for _mx in IDENTITY:
    primitive(_mx, "(none: the input itself)")(lambda cx, inputs, args: [inputs[0]])


@primitive("Log", "log, log2, log10 (by base)")
def log(cx, inputs, args):
    return [cx.op(LOG_BASES[args[0]], inputs[0])]


@primitive("Sqrt", "sqrt, rsqrt (recip)")
def sqrt(cx, inputs, args):
    return [cx.op("rsqrt" if args[0] else "sqrt", inputs[0])]


@primitive("AsType", "cast")
def astype(cx, inputs, args):
    return [cx.cast(inputs[0], ir_dtype(args[0]))]


@primitive("BitwiseBinary", "bitwise_and/or/xor, shift_left/right (by op)")
def bitwise(cx, inputs, args):
    return [cx.op(BITWISE[args[0]], *one_dtype(cx, inputs))]


@primitive("Divide", "div (integers: floor_div corrected toward zero)")
def divide(cx, inputs, args):
    a, b = one_dtype(cx, inputs)
    if a.type.dtype.is_float:
        return [cx.op("div", a, b)]
    # C++ integer division truncates: floor(a / b) + 1 where the signs differ and b does not divide a
    q, r = cx.op("floor_div", a, b), cx.op("remainder", a, b)
    zero = cx.const(0, a.type.dtype)
    fix = cx.op("logical_and", cx.op("ne", r, zero), cx.op("ne", cx.op("lt", a, zero), cx.op("lt", b, zero)))
    return [cx.op("where", fix, cx.op("add", q, cx.const(1, a.type.dtype)), q)]


@primitive("DivMod", "floor_div, remainder")
def divmod_(cx, inputs, args):
    a, b = one_dtype(cx, inputs)
    return [cx.op("floor_div", a, b), cx.op("remainder", a, b)]


@primitive("Equal", "eq (equal_nan: or both isnan)")
def equal(cx, inputs, args):
    a, b = one_dtype(cx, inputs)
    eq = cx.op("eq", a, b)
    if args and args[0] and a.type.dtype.is_float:
        eq = cx.op("logical_or", eq, cx.op("logical_and", cx.op("isnan", a), cx.op("isnan", b)))
    return [eq]


def logaddexp(cx, a, b):
    """log(exp(a) + exp(b)) without overflow; exact where a == b (infinities included)."""
    m = cx.op("maximum", a, b)
    tail = cx.op("log1p", cx.op("exp", cx.op("neg", cx.op("abs", cx.op("sub", a, b)))))
    same = cx.op("add", a, cx.const(math.log(2.0), a.type.dtype))
    return cx.op("where", cx.op("eq", a, b), same, cx.op("add", m, tail))


@primitive("LogAddExp", "maximum, sub, abs, neg, exp, log1p, add, eq, where")
def log_add_exp(cx, inputs, args):
    a, b = one_dtype(cx, inputs)
    if not a.type.dtype.is_float:
        raise Unsupported(f"LogAddExp of {a.type.dtype.value} operands")
    return [logaddexp(cx, a, b)]


@primitive("Select", "where")
def select(cx, inputs, args):
    c, x, y = inputs
    x, y = one_dtype(cx, [x, y])
    return [cx.op("where", cx.cast(c, DType.BOOL), x, y)]
