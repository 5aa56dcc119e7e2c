"""The MLX lowering table, one entry per IR op, serving the `mlx` target (eager) and the
`mlx-source` emitter (Python source) alike, so an op added once works in both.

An entry is a `Rule`: what to call and with which keyword arguments.

- `callee` is an MLX function by name (`"softmax"`: eager `mx.softmax`, source `mx.softmax(x, ...)`),
  a method of the first operand (`".astype"`: `x.astype(...)`), or a helper function written with
  MLX alone (`@helper`, in the family modules): eager calls it, the emitter copies its source into
  the emitted module once and calls it by name.
- `params(attrs, ins, outs) -> dict` gives the keyword arguments as plain Python values (numbers,
  tuples, strings, slices, None, `Expr("mx.float32")`), computed from the op's typed attributes,
  the operands' shapes (`ins[i].shape`, `ins[i].ndim`) and the result types (`outs`, IR types).
  Geometry is computed here, once, at lowering time: the emitted code holds only literals.

Regular ops are registered from name tables (`names({"neg": "negative"})`); irregular ones with
`lowers("conv", conv, params=...)`. `MLX_OPS` is the eager view: `fn(args, attrs, out_types)`.
"""
from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import Any, Callable

from xcomp.ir.types import DType

try:
    import mlx.core as mx
except ImportError:   # the table still serves the mlx-source emitter, which needs no MLX
    mx = None

MX_NAMES = {
    DType.F64: "float64", DType.F32: "float32", DType.F16: "float16", DType.BF16: "bfloat16",
    DType.I64: "int64", DType.I32: "int32", DType.I16: "int16", DType.I8: "int8",
    DType.U8: "uint8", DType.BOOL: "bool_",
}

MLX_RULES: dict[str, "Rule"] = {}
MLX_OPS: dict[str, Callable] = {}
HELPERS: dict[str, Callable] = {}


class Expr(str):
    """A keyword value that is MLX source (`Expr("mx.float32")`): printed as is, evaluated eagerly
    by attribute lookup from `mx`."""


@dataclass(frozen=True)
class Rule:
    callee: str | Callable
    params: Callable[[dict, list, list], dict] | None = None
    operands: Callable[[list], list] | None = None   # how operands are passed (default: as is)
    positional: tuple[str, ...] = ()                 # params passed by position, after the operands
    chooser: Callable[[dict, list, list], "Rule"] | None = None  # picks the rule per op instead
    alternatives: tuple["Rule", ...] = ()                        # the rules `chooser` picks from
    cast: str = ""   # MLX's result dtype may differ from the IR's: "always", or "changed" (from operand 0's)

    def select(self, attrs: dict, ins: list, outs: list) -> "Rule":
        """The rule that lowers this op instance (itself unless it chooses between rules)."""
        return self.chooser(attrs, ins, outs).select(attrs, ins, outs) if self.chooser else self

    @property
    def callee_name(self) -> str:
        """The callee as it appears in source: `mx.softmax`, `.astype`, `[]` (indexing the first
        operand with param `index`) or a helper's name."""
        if callable(self.callee):
            return self.callee.__name__
        return self.callee if self.callee[0] in ".[" else f"mx.{self.callee}"

    def arguments(self, args: list, attrs: dict, ins: list, outs: list) -> tuple[list, list, dict]:
        """The call's operands (backend values), then its params passed by position, then by keyword."""
        kw = self.params(attrs, ins, outs) if self.params else {}
        passed = self.operands(list(args)) if self.operands else list(args)
        return passed, [kw.pop(k) for k in self.positional], kw


class Shape:
    """What `params` may read of an operand: its static shape, rank and whether it is floating."""

    __slots__ = ("shape", "floating")

    def __init__(self, shape, floating: bool = True):
        self.shape = tuple(shape)
        self.floating = floating

    @property
    def ndim(self) -> int:
        return len(self.shape)


def helper(fn: Callable) -> Callable:
    """Register `fn` as an MLX helper: it may use only `mx`, `math` and other helpers (the emitter
    copies its source into generated modules that import nothing else)."""
    if fn.__name__ in HELPERS and HELPERS[fn.__name__] is not fn:
        raise ValueError(f"MLX helper {fn.__name__} registered twice")
    HELPERS[fn.__name__] = fn
    return fn


def rule(callee: str | Callable, params: Callable | None = None, operands: Callable | None = None,
         positional: tuple[str, ...] = (), cast: str = "") -> Rule:
    """A rule, not registered (for `choose`)."""
    if callable(callee) and callee.__name__ not in HELPERS:
        helper(callee)
    return Rule(callee, params, operands, positional, cast=cast)


def _register(name: str, r: Rule) -> Rule:
    key = name if "." in name else f"xc.{name}"
    if key in MLX_RULES:
        raise ValueError(f"MLX lowering for {key} registered twice")
    MLX_RULES[key] = r
    MLX_OPS[key] = eager(r)
    return r


def lowers(name: str, callee: str | Callable, params: Callable | None = None,
           operands: Callable | None = None, positional: tuple[str, ...] = (), cast: str = "") -> Rule:
    """Register the rule of op `xc.<name>` (`cast`: see `Rule.cast`; eagerly the `mlx` target casts
    every result to its IR dtype, emitted source casts where the rule says MLX may differ)."""
    return _register(name, rule(callee, params, operands, positional, cast))


def choose(name: str, chooser: Callable[[dict, list, list], Rule], alternatives: tuple[Rule, ...]) -> Rule:
    """Register op `xc.<name>` as lowered by one of several rules (`alternatives`), picked per op
    instance by `chooser(attrs, ins, outs)`."""
    return _register(name, Rule("", chooser=chooser, alternatives=tuple(alternatives)))


def helper_closure(fn: Callable) -> dict[str, Callable]:
    """`fn` and every plain function it calls through its module's globals, by name (what the
    emitter copies into generated modules). Helpers may use only `math`, `mlx.core` and helpers."""
    import types
    found: dict[str, Callable] = {}

    def names_of(code) -> set[str]:
        out = set(code.co_names)
        for c in code.co_consts:
            if isinstance(c, types.CodeType):
                out |= names_of(c)
        return out

    def visit(f):
        if f.__name__ in found:
            return
        found[f.__name__] = f
        for name in sorted(names_of(f.__code__)):
            target = f.__globals__.get(name)
            if isinstance(target, types.FunctionType):
                visit(target)
            elif isinstance(target, types.ModuleType) and target.__name__ not in ("math", "mlx.core"):
                raise ValueError(f"MLX helper {f.__name__} uses module {target.__name__}: helpers may use "
                                 "only math, mlx.core and other helpers")
    visit(fn)
    return found


def mlx_functions(rule: Rule) -> list[str]:
    """The MLX functions a rule calls, read from its code: the callee, and for helpers every
    `mx.` name in their source and in the rule's params (`fast=Expr("mx.fast.rms_norm")`)."""
    import inspect
    import re
    if rule.chooser is not None:
        return sorted({f for r in rule.alternatives for f in mlx_functions(r)})
    texts = []
    if rule.params is not None:
        try:
            texts.append(inspect.getsource(rule.params))
        except (OSError, TypeError):
            pass
    if callable(rule.callee):
        texts += [inspect.getsource(f) for f in helper_closure(rule.callee).values()]
        found = set()
    elif rule.callee == "[]":
        found = {"array[...]"}
    elif rule.callee.startswith("."):
        found = {f"array{rule.callee}"}
    else:
        found = {f"mx.{rule.callee}"}
    for t in texts:   # `xp.` in array-generic helpers (bessel_i, digamma) is `mx.` here
        found |= set(re.findall(r"\bmx\.[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?", t))
        found |= {f"mx.{n}" for n in re.findall(r"\bxp\.([A-Za-z_][A-Za-z0-9_]*)", t)}
    return sorted(f for f in found if f.removeprefix("mx.") not in _NOT_FUNCTIONS)


_NOT_FUNCTIONS = {"float64", "float32", "float16", "bfloat16", "int64", "int32", "int16", "int8", "uint8",
                  "bool_", "floating", "signedinteger", "fast"}


def names(table: dict[str, str], params: Callable | None = None, cast: str = "") -> None:
    """Register regular ops: IR op name -> MLX function name, all with the same `params`."""
    for op, fn in table.items():
        lowers(op, fn, params, cast=cast)


def resolve(text: str):
    """`"mx.float32"` (or `"float32"`) as the MLX object it names."""
    obj = mx
    if text == "mx":
        return mx
    for part in text.removeprefix("mx.").split("."):
        obj = getattr(obj, part)
    return obj


def _eager_value(v):
    if isinstance(v, Expr):
        return resolve(v)
    if isinstance(v, (list, tuple)) and any(isinstance(x, Expr) for x in v):
        return type(v)(_eager_value(x) for x in v)
    return v


def eager(rule: Rule) -> Callable:
    """The rule as an eager lowering `fn(args, attrs, out_types) -> list[mx.array]`."""
    if rule.chooser is not None:
        def pick(args, attrs, out_types):
            ins = [_shape_of(a) for a in args]
            return eager(rule.select(attrs, ins, out_types))(args, attrs, out_types)
        return pick
    if callable(rule.callee):
        fn = rule.callee
    elif rule.callee == "[]":
        def fn(x, index):
            return x[index]
    elif rule.callee.startswith("."):
        method = rule.callee[1:]

        def fn(x, *rest, **kw):
            return getattr(x, method)(*rest, **kw)
    else:
        name, found = rule.callee, []

        def fn(*args, **kw):   # looked up on the first call: registering needs no MLX
            if not found:
                found.append(resolve(name))
            return found[0](*args, **kw)

    def run(args, attrs, out_types):
        ins = [_shape_of(a) for a in args]
        passed, pos, kw = rule.arguments(args, attrs, ins, out_types)
        out = fn(*passed, *[_eager_value(v) for v in pos], **{k: _eager_value(v) for k, v in kw.items()})
        return list(out) if isinstance(out, tuple) else [out]
    return run


def _shape_of(a):
    if not hasattr(a, "shape") or not hasattr(a, "dtype"):
        return a
    return Shape(a.shape, mx.issubdtype(a.dtype, mx.floating))


def literal(v: Any) -> str:
    """Python source for a keyword value (never a model's name: values here are numbers, shapes,
    enum values and MLX names)."""
    if isinstance(v, Expr):
        return str(v)
    if v is Ellipsis:
        return "..."
    if isinstance(v, bool) or v is None:
        return repr(v)
    if isinstance(v, enum.Enum):
        return literal(v.value)
    if isinstance(v, int):
        return repr(int(v))
    if isinstance(v, float):
        if math.isnan(v):
            return "math.nan"
        if math.isinf(v):
            return "math.inf" if v > 0 else "-math.inf"
        return repr(float(v))
    if isinstance(v, str):
        return repr(v)
    if isinstance(v, slice):
        parts = [v.start, v.stop] + ([v.step] if v.step is not None else [])
        return "slice(None)" if parts == [None, None] else f"slice({', '.join(literal(x) for x in parts)})"
    if isinstance(v, tuple):
        inner = ", ".join(literal(x) for x in v)
        return f"({inner},)" if len(v) == 1 else f"({inner})"
    if isinstance(v, list):
        return "[" + ", ".join(literal(x) for x in v) + "]"
    if hasattr(v, "item") and getattr(v, "ndim", 1) == 0:   # numpy scalar
        return literal(v.item())
    raise TypeError(f"no MLX source literal for {type(v).__name__}")
