"""The per-op expression table for generated kernels, with Metal and CUDA dialect overrides.

An entry maps an op name to a C expression: a format string over the operand spellings (`{0}`,
`{1}`, ...) and the op's attributes (`{approximate}` etc. are not used: attribute-dependent entries
are functions `(args, attrs, ctx) -> str`). Keys ending in `:int` override an entry when the op
computes on integers or bools. The keys of a dialect's table are its capability list: a fused group
that uses an op outside it runs as MLX built-ins instead.

Float math computes in float32 (`float`), whatever the storage dtype; integers and bools compute in
their own C type.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Union

from xcomp.errors import LoweringError
from xcomp.ir.types import DType
from xcomp.ops.elementwise import GeluApproximate

Entry = Union[str, Callable[[list, dict, "ExprContext"], str]]


@dataclass(frozen=True)
class ExprContext:
    """What an expression may depend on besides its operands: the dialect and the C types."""

    dialect: "Dialect"
    in_dtype: DType        # dtype of the first operand
    out_dtype: DType       # dtype of the result


def flit(x: float) -> str:
    """A float32 literal (inf and nan spelled through the dialect-neutral XC_INF / XC_NAN macros)."""
    if math.isnan(x):
        return "XC_NAN"
    if math.isinf(x):
        return "XC_INF" if x > 0 else "(-XC_INF)"
    r = repr(float(x))
    return f"{r}f" if ("e" in r or "." in r) else f"{r}.0f"


def _gelu(a, at, ctx):
    x = a[0]
    if at["approximate"] is GeluApproximate.TANH:
        return (f"(0.5f * {x} * (1.0f + {ctx.dialect.call('tanh')}(0.7978845608028654f * "
                f"({x} + 0.044715f * {x} * {x} * {x}))))")
    return f"(0.5f * {x} * (1.0f + xc_erf({x} * 0.7071067811865476f)))"


def _softplus(a, at, ctx):
    x, b, t = a[0], flit(at["beta"]), flit(at["threshold"])
    d = ctx.dialect
    return f"(({x} * {b} > {t}) ? {x} : {d.call('log1p')}({d.call('exp')}({b} * {x})) / {b})"


def _elu(a, at, ctx):
    x = a[0]
    e = ctx.dialect.call("exp")
    return (f"({flit(at['scale'])} * ({x} > 0.0f ? {x} : {flit(at['alpha'])} * "
            f"({e}({x} * {flit(at['input_scale'])}) - 1.0f)))")


def _cast(a, at, ctx):
    dst = at["dtype"]
    d = ctx.dialect
    x = a[0]
    if dst.is_bool:
        return f"({x} != 0)"
    if dst.is_float:
        v = f"((float)({x}))"
        # values cast to a narrower float keep float32 registers but take its rounding
        return f"xc_round_{dst.value}({v})" if dst in (DType.F16, DType.BF16) else v
    return f"(({d.ctype(dst)})({x}))"


def _call1(fn: str) -> Entry:
    return lambda a, at, ctx: f"{ctx.dialect.call(fn)}({a[0]})"


def _call2(fn: str) -> Entry:
    return lambda a, at, ctx: f"{ctx.dialect.call(fn)}({a[0]}, {a[1]})"


# Entries shared by both dialects. Math functions go through `Dialect.call`, which spells them.
COMMON: dict[str, Entry] = {
    "xc.add": "({0} + {1})", "xc.sub": "({0} - {1})", "xc.mul": "({0} * {1})", "xc.div": "({0} / {1})",
    "xc.neg": "(-{0})", "xc.square": "({0} * {0})", "xc.reciprocal": "(1.0f / {0})",
    "xc.abs": _call1("fabs"), "xc.abs:int": "({0} < 0 ? -{0} : {0})",
    "xc.sign": "({0} > 0.0f ? 1.0f : ({0} < 0.0f ? -1.0f : {0}))",
    "xc.sign:int": "(({0} > 0) - ({0} < 0))",
    "xc.exp": _call1("exp"), "xc.exp2": _call1("exp2"), "xc.expm1": _call1("expm1"),
    "xc.log": _call1("log"), "xc.log2": _call1("log2"), "xc.log10": _call1("log10"),
    "xc.log1p": _call1("log1p"), "xc.sqrt": _call1("sqrt"), "xc.rsqrt": _call1("rsqrt"),
    "xc.sin": _call1("sin"), "xc.cos": _call1("cos"), "xc.tan": _call1("tan"),
    "xc.asin": _call1("asin"), "xc.acos": _call1("acos"), "xc.atan": _call1("atan"),
    "xc.sinh": _call1("sinh"), "xc.cosh": _call1("cosh"), "xc.tanh": _call1("tanh"),
    "xc.asinh": _call1("asinh"), "xc.acosh": _call1("acosh"), "xc.atanh": _call1("atanh"),
    "xc.erf": "xc_erf({0})", "xc.erfinv": "xc_erfinv({0})",
    "xc.sigmoid": lambda a, at, ctx: f"(1.0f / (1.0f + {ctx.dialect.call('exp')}(-{a[0]})))",
    "xc.silu": lambda a, at, ctx: f"({a[0]} / (1.0f + {ctx.dialect.call('exp')}(-{a[0]})))",
    "xc.mish": lambda a, at, ctx: (f"({a[0]} * {ctx.dialect.call('tanh')}({ctx.dialect.call('log1p')}"
                                   f"({ctx.dialect.call('exp')}({a[0]}))))"),
    "xc.floor": _call1("floor"), "xc.ceil": _call1("ceil"), "xc.round": _call1("rint"),
    "xc.trunc": _call1("trunc"), "xc.frac": lambda a, at, ctx: f"({a[0]} - {ctx.dialect.call('trunc')}({a[0]}))",
    "xc.floor:int": "{0}", "xc.ceil:int": "{0}", "xc.round:int": "{0}", "xc.trunc:int": "{0}",
    "xc.relu": "({0} < 0.0f ? 0.0f : {0})", "xc.relu:int": "({0} < 0 ? 0 : {0})",
    "xc.hardsigmoid": "xc_clamp01({0} / 6.0f + 0.5f)",
    "xc.hardswish": "({0} * xc_clamp01({0} / 6.0f + 0.5f))",
    "xc.logical_not": "(!{0})", "xc.bitwise_not": "(~{0})",
    # ~ of a C bool is -1 or -2, both true: bools negate logically (the GPT block's causal mask)
    "xc.bitwise_not:int": lambda a, at, ctx: f"(!{a[0]})" if ctx.in_dtype.is_bool else f"(~{a[0]})",
    "xc.isnan": "({0} != {0})", "xc.isinf": "xc_isinf({0})", "xc.isfinite": "xc_isfinite({0})",
    "xc.isnan:int": "false", "xc.isinf:int": "false", "xc.isfinite:int": "true",
    "xc.gelu": _gelu, "xc.softplus": _softplus, "xc.elu": _elu,
    "xc.leaky_relu": lambda a, at, ctx: f"({a[0]} > 0.0f ? {a[0]} : {a[0]} * {flit(at['slope'])})",
    "xc.cast": _cast, "xc.cast:int": _cast,
    "xc.floor_div": lambda a, at, ctx: f"{ctx.dialect.call('floor')}({a[0]} / {a[1]})",
    "xc.floor_div:int": "xc_floordiv({0}, {1})",
    "xc.remainder": "xc_remf({0}, {1})", "xc.remainder:int": "xc_remi({0}, {1})",
    "xc.fmod": _call2("fmod"), "xc.fmod:int": "({1} == 0 ? 0 : {0} % {1})",
    "xc.pow": "xc_powf({0}, {1})", "xc.pow:int": "xc_powi({0}, {1})",
    "xc.maximum": "xc_max({0}, {1})", "xc.minimum": "xc_min({0}, {1})",
    "xc.maximum:int": "({0} > {1} ? {0} : {1})", "xc.minimum:int": "({0} < {1} ? {0} : {1})",
    "xc.atan2": _call2("atan2"), "xc.copysign": _call2("copysign"), "xc.hypot": "xc_hypot({0}, {1})",
    "xc.bitwise_and:int": "({0} & {1})", "xc.bitwise_or:int": "({0} | {1})",
    "xc.bitwise_xor:int": "({0} ^ {1})", "xc.shift_left:int": "({0} << {1})",
    "xc.shift_right:int": "({0} >> {1})",
    "xc.eq": "({0} == {1})", "xc.ne": "({0} != {1})", "xc.lt": "({0} < {1})", "xc.le": "({0} <= {1})",
    "xc.gt": "({0} > {1})", "xc.ge": "({0} >= {1})",
    "xc.logical_and": "((bool)({0}) && (bool)({1}))", "xc.logical_or": "((bool)({0}) || (bool)({1}))",
    "xc.logical_xor": "((bool)({0}) != (bool)({1}))",
    "xc.where": "({0} ? {1} : {2})",
}
# integer/bool variants default to the float spelling where it is type-generic
for _k in ("add", "sub", "mul", "neg", "square", "eq", "ne", "lt", "le", "gt", "ge", "logical_not",
           "logical_and", "logical_or", "logical_xor", "where"):
    COMMON.setdefault(f"xc.{_k}:int", COMMON[f"xc.{_k}"])
COMMON["xc.bitwise_and:int"], COMMON["xc.bitwise_or:int"] = "({0} & {1})", "({0} | {1})"

# Metal spells math as metal::f (overloaded on float); `rint` rounds half to even like numpy.
METAL: dict[str, Entry] = {**COMMON}
# CUDA spells float32 math with the f suffix; lgamma exists there and not in Metal's stdlib.
def _scaled_bessel(fn: str) -> Entry:
    """exp(-|x|) * fn(x): the exponentially scaled modified Bessel functions."""
    return lambda a, at, ctx: (f"({ctx.dialect.call('exp')}(-{ctx.dialect.call('fabs')}({a[0]})) * "
                               f"{ctx.dialect.call(fn)}({a[0]}))")


CUDA: dict[str, Entry] = {**COMMON, "xc.lgamma": _call1("lgamma"), "xc.erfc": _call1("erfc"),
                          "xc.i0": _call1("cyl_bessel_i0"), "xc.i1": _call1("cyl_bessel_i1"),
                          "xc.i0e": _scaled_bessel("cyl_bessel_i0"), "xc.i1e": _scaled_bessel("cyl_bessel_i1"),
                          "xc.digamma": "xc_digamma({0})"}


@dataclass(frozen=True)
class Dialect:
    """How one GPU language spells types, math calls and the expression table.

    `renames` gives the full spelling of math functions the language lacks or names otherwise
    (helpers of the same name are defined in the dialect's header template).
    """

    name: str
    table: dict[str, Entry]
    math_prefix: str
    math_suffix: str
    ctypes: dict[DType, str]
    renames: dict[str, str]
    long_suffix: str = "L"            # suffix of integer literals beyond 32 bits
    vector_unroll: bool = False       # elementwise kernels may take several vectors per thread
    qualifier: str = "inline"         # qualifier of the helper functions in the header
    inf: str = "XC_INF"               # how the header spells float infinity
    file_ext: str = ""                # extension of an exported source file
    size_ctype: str = "long"          # C type of the run-time sizes a kernel reads (sizes.py)

    def helpers(self) -> dict[str, str]:
        """The spellings the shared helper template (templates/common/math.j2) is rendered with."""
        calls = {k: self.call(f) for k, f in (("abs", "fabs"), ("fmod", "fmod"), ("pow", "pow"),
                                               ("rint", "rint"), ("fmin", "fmin"), ("fmax", "fmax"),
                                               ("floor", "floor"), ("tan", "tan"), ("log", "log"),
                                               ("sqrt", "sqrt"))}
        return {"q": self.qualifier, "inf": self.inf, **calls}

    def call(self, fn: str) -> str:
        """The spelling of the float32 math function `fn`."""
        if fn in self.renames:
            return self.renames[fn]
        return f"{self.math_prefix}{fn}{self.math_suffix}"

    def ctype(self, dt: DType) -> str:
        """Storage C type of `dt` (what MLX's generated signature uses)."""
        try:
            return self.ctypes[dt]
        except KeyError:
            raise LoweringError(f"{self.name} kernels do not handle {dt.value}") from None

    def compute_type(self, dt: DType) -> str:
        """Register type: float32 for every float dtype, the storage type otherwise."""
        return "float" if dt.is_float else self.ctype(dt)

    def supports(self, op_name: str, dt: DType) -> bool:
        return self._entry(op_name, dt) is not None

    def _entry(self, op_name: str, dt: DType):
        if not dt.is_float and f"{op_name}:int" in self.table:
            return self.table[f"{op_name}:int"]
        if dt.is_float:
            return self.table.get(op_name)
        return None

    def expr(self, op_name: str, args: list[str], attrs: dict, in_dtype: DType, out_dtype: DType) -> str:
        """The C expression of one op over operand spellings `args`."""
        e = self._entry(op_name, in_dtype)
        if e is None:
            raise LoweringError(f"no {self.name} kernel expression for {op_name} on {in_dtype.value}")
        if callable(e):
            return e(args, attrs, ExprContext(self, in_dtype, out_dtype))
        return e.format(*args)


METAL_DIALECT = Dialect(
    "metal", METAL, "metal::", "",
    {DType.F32: "float", DType.F16: "half", DType.BF16: "bfloat16_t", DType.I64: "long",
     DType.I32: "int", DType.I16: "short", DType.I8: "char", DType.U8: "uchar", DType.BOOL: "bool"},
    {"fabs": "metal::abs", "expm1": "xc_expm1", "log1p": "xc_log1p", "fmin": "metal::min",
     "fmax": "metal::max"},
    inf="INFINITY", file_ext="metal", size_ctype="uint")
CUDA_DIALECT = Dialect(
    "cuda", CUDA, "", "f",
    {DType.F32: "float", DType.F16: "__half", DType.BF16: "__nv_bfloat16", DType.I64: "int64_t",
     DType.I32: "int32_t", DType.I16: "int16_t", DType.I8: "int8_t", DType.U8: "uint8_t",
     DType.BOOL: "bool"},
    {}, long_suffix="LL", vector_unroll=True, qualifier="__device__ __forceinline__", file_ext="cu")

# C++ spells float32 math as the std:: float overloads of <cmath>; lgamma/erfc come from there too,
# the Bessel functions and digamma from helpers in templates/cpp/header.j2. Integer true division
# does not exist in the IR (xc.div is float-only), so only float entries are added here.
CPP: dict[str, Entry] = {**COMMON, "xc.lgamma": _call1("lgamma"), "xc.erfc": _call1("erfc"),
                         "xc.i0": "xc_bessel_i({0}, 0, false)", "xc.i1": "xc_bessel_i({0}, 1, false)",
                         "xc.i0e": "xc_bessel_i({0}, 0, true)", "xc.i1e": "xc_bessel_i({0}, 1, true)",
                         "xc.digamma": "xc_digamma({0})", "xc.rsqrt": "(1.0f / std::sqrt({0}))",
                         "xc.sigmoid": "xc_vsigmoid({0})",
                         "xc.abs:int": "({0} < 0 ? -{0} : {0})",
                         "xc.bitwise_not:int": "xc_not({0})",
                         "xc.logical_not:int": "(!{0})",
                         # exp of softmax's x - max(x) (graph.mark_nonpositive): no overflow to handle
                         "xc.exp": lambda a, at, ctx: f"xc_vexp{'_nonpos' if at.get('nonpositive') else ''}({a[0]})"}
CPP_DIALECT = Dialect(
    "cpp", CPP, "std::", "",
    {DType.F32: "float", DType.F64: "double", DType.F16: "xc_f16", DType.BF16: "xc_bf16",
     DType.I64: "int64_t", DType.I32: "int32_t", DType.I16: "int16_t", DType.I8: "int8_t",
     DType.U8: "uint8_t", DType.BOOL: "bool"},
    {"exp": "xc_vexp", "tanh": "xc_vtanh"},      # the runtime's vectorizable exp/tanh
    long_suffix="LL", qualifier="static inline", inf="XC_INF", file_ext="cpp")

DIALECTS = {"metal": METAL_DIALECT, "cuda": CUDA_DIALECT, "cpp": CPP_DIALECT}
