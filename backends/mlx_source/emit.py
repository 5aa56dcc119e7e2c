"""Writes an optimized program as a readable MLX Python module (`model.py`).

`MLXSourceLowering` is the emitting user of the one lowering driver (`xcomp.backends.lowering`):
values are variable names, every op becomes one line through the MLX lowering table (the same
`MLX_RULES` the `mlx` target evaluates, see `xcomp.backends.mlx.table`), and the region rules write
Python control flow: `xc.if` an `if`/`else`, `xc.loop` a `for` with a `break`, `xc.fused` its body
inline (marked with a comment), `xc.call` the callee inline.

The module imports only `math`, `os` and MLX, holds the MLX helpers it uses (copied from the
table's helper functions), and defines `class Model(nn.Module)` and `load(path=None)`.
"""
from __future__ import annotations

import inspect
import textwrap
from dataclasses import dataclass, field

import numpy as np

from xcomp.backends.lowering import Lowering, call_func
from xcomp.backends.mlx.table import MX_NAMES
from xcomp.backends.mlx_source.names import MODULE_ATTRIBUTES, Namer
from xcomp.backends.mlx_source.regions import emit_fused, emit_if, emit_loop
from xcomp.errors import LoweringError
from xcomp.ir.core import Operation, Program
from xcomp.ir.types import DType, TensorType

LINE_LENGTH = 110   # longer calls are written one argument per line
BIG_CONSTANT = 8    # dense constants with more elements are stored with the weights (short lines)



def _rules():
    from xcomp.backends.mlx.table import MLX_RULES
    from xcomp.backends.mlx.target import load_table
    load_table()
    return MLX_RULES


def mlx_source_supported() -> set[str]:
    """Op names the emitter writes (the MLX lowering table and the region ops)."""
    return set(_rules()) | set(MLXSourceLowering.region_ops)


@dataclass
class Parameter:
    attr: str          # attribute name on Model (sanitized)
    source: str        # the program's weight name (the model's parameter path)
    type: TensorType
    value: np.ndarray


@dataclass
class EmittedModule:
    source: str
    parameters: list[Parameter] = field(default_factory=list)

    def weights(self) -> dict[str, np.ndarray]:
        """The arrays to save in weights.safetensors, by attribute name."""
        return {p.attr: _storable(p.value, p.type) for p in self.parameters}


def _storable(value, t: TensorType) -> np.ndarray:
    """bfloat16 weights are held (and saved) as float32; `load` casts them."""
    a = np.asarray(value)
    want = np.float32 if t.dtype is DType.BF16 else t.dtype.np
    return np.ascontiguousarray(a.astype(want, copy=False)).reshape(t.shape)


class MLXSourceLowering(Lowering):
    """Lowers a program into the lines of `Model.__call__`."""

    def __init__(self, program: Program):
        from xcomp.backends.mlx.table import HELPERS
        self.rules = _rules()
        self.helper_names = set(HELPERS)
        self.names = Namer(self.helper_names)          # local variables and arguments
        self.attributes = Namer(MODULE_ATTRIBUTES)     # attributes of Model (parameters)
        self.lines: list[str] = []
        self.depth = 2
        self.params: list[Parameter] = []
        self.used_helpers: dict[str, object] = {}
        self.counts: dict[str, int] = {}
        super().__init__(program)

    # capability ---------------------------------------------------------------------------------
    def handles(self, name: str) -> bool:
        return name in self.rules or name in self.region_ops or name == "xc.weight"

    # output ---------------------------------------------------------------------------------------
    def line(self, text: str) -> None:
        self.lines.append("    " * self.depth + text)

    def fresh(self, hint: str) -> str:
        return self.names(hint, "v")

    def _result_name(self, op: Operation, i: int) -> str:
        hint = op.results[i].hint or op.name.removeprefix("xc.")
        return self.fresh(f"{hint}_out" if hint in self.helper_names else hint)

    # hooks ----------------------------------------------------------------------------------------
    def weight(self, name: str, type) -> str:
        attr = self.attributes(name, "w")
        self.params.append(Parameter(attr, name, type, self.program.weights[name]))
        return f"self.{attr}"

    def apply(self, op: Operation, args: list) -> list:
        outs = [r.type for r in op.results]
        if op.name == "xc.dense" and int(np.asarray(op.attrs["value"]).size) > BIG_CONSTANT:
            return [self._stored_constant(op)]
        ins = [_shape(v.type) for v in op.operands]
        rule = self.rules[op.name].select(op.attrs, ins, outs)
        passed, pos, kw = rule.arguments(args, op.attrs, ins, outs)
        head, parts = self._call(rule, passed, pos, kw)
        cast = f".astype(mx.{MX_NAMES[op.results[0].type.dtype]})" if _needs_cast(rule, op) else ""
        expr = (f"{head}{', '.join(parts)})" if parts is not None else head) + cast
        if op.opdef.is_structural and not op.operands and len(op.results) == 1:
            return [expr]   # constants and host values are written where they are used
        names = [self._result_name(op, i) for i in range(len(op.results))]
        lhs = f"{', '.join(names)} = " if names else ""
        if parts and len("    " * self.depth + lhs + expr) > LINE_LENGTH:
            self.line(f"{lhs}{head}")          # one argument per line, as black writes long calls
            for p in parts:
                key, _, value = p.partition("=[")
                items = _split_top(value[:-1]) if value.endswith("]") and key.isidentifier() else []
                if len("    " * (self.depth + 1) + p) > LINE_LENGTH and len(items) > 1:
                    self.line(f"    {key}=[")
                    for item in items:
                        self.line(f"        {item},")
                    self.line("    ],")
                else:
                    self.line(f"    {p},")
            self.line(f"){cast}")
        else:
            self.line(lhs + expr)
        return names

    def _stored_constant(self, op: Operation) -> str:
        t = op.results[0].type
        attr = self.attributes("const", "c")
        value = np.asarray(op.attrs["value"]).astype(np.float32 if t.dtype is DType.BF16 else t.dtype.np)
        self.params.append(Parameter(attr, f"<constant {attr}>", t, value))
        return f"self.{attr}"

    def _call(self, rule, passed: list, pos: list, kw: dict) -> tuple[str, list[str] | None]:
        """(`callee(` , argument texts), or (whole expression, None) for indexing."""
        from xcomp.backends.mlx.table import literal
        args = [_operand(a) for a in passed] + [literal(v) for v in pos]
        if rule.callee == "[]":
            return f"{args[0]}[{_index(kw['index'])}]", None
        keywords = [f"{k}={literal(v)}" for k, v in kw.items()]
        if callable(rule.callee):
            self._use_helper(rule.callee)
        name = rule.callee_name
        if name.startswith("."):
            return f"{args[0]}{name}(", args[1:] + keywords
        return f"{name}(", args + keywords

    def _use_helper(self, fn) -> None:
        """Record `fn` and every helper function it calls."""
        from xcomp.backends.mlx.table import helper_closure
        try:
            self.used_helpers.update(helper_closure(fn))
        except ValueError as e:
            raise LoweringError(str(e)) from None

    def helpers_source(self) -> str:
        return "\n\n".join(_function_source(fn) for _, fn in sorted(self.used_helpers.items()))


def _function_source(fn) -> str:
    """A helper's source without its decorators (which register it in xcomp)."""
    lines = textwrap.dedent(inspect.getsource(fn)).rstrip().splitlines()
    while lines and lines[0].startswith("@"):
        lines.pop(0)
    return "\n".join(lines) + "\n"


def _split_top(text: str) -> list[str]:
    """`a, (b, c), [d]` split at its top-level commas."""
    items, depth, start = [], 0, 0
    for i, c in enumerate(text):
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif c == "," and depth == 0:
            items.append(text[start:i].strip())
            start = i + 1
    items.append(text[start:].strip())
    return [x for x in items if x]


def _needs_cast(rule, op: Operation) -> bool:
    """Whether MLX's result may have another dtype than the IR's (`Rule.cast`)."""
    if not rule.cast or len(op.results) != 1 or not isinstance(op.results[0].type, TensorType):
        return False
    if rule.cast == "always":
        return True
    first = op.operands[0].type if op.operands else None
    return not isinstance(first, TensorType) or first.dtype != op.results[0].type.dtype


def _shape(t):
    from xcomp.backends.mlx.table import Shape
    return Shape(t.shape, t.dtype.is_float) if isinstance(t, TensorType) else None


def _operand(a) -> str:
    if a is None:
        return "None"
    if isinstance(a, (list, tuple)):
        return "[" + ", ".join(_operand(x) for x in a) + "]"
    if isinstance(a, str):
        return a
    raise TypeError(f"unexpected operand {a!r}")


def _index(index: tuple) -> str:
    """An indexing tuple in subscript syntax: `:, 0:4, ::-1`."""
    from xcomp.backends.mlx.table import literal

    def one(s):
        if isinstance(s, slice):
            parts = ["" if s.start is None else literal(s.start), "" if s.stop is None else literal(s.stop)]
            if s.step is not None:
                parts.append(literal(s.step))
            return ":".join(parts)
        return literal(s)
    return ", ".join(one(s) for s in index) if index else "()"


MLXSourceLowering.region_ops = {"xc.if": emit_if, "xc.loop": emit_loop, "xc.fused": emit_fused,
                                "xc.call": call_func}


def emit_module(program: Program, origin: str = "") -> EmittedModule:
    """The program as the text of `model.py` (deterministic: same program, same bytes)."""
    lw = MLXSourceLowering(program)
    main = program.main
    arguments = program.metadata.get("xcomp.source", {}).get("arguments") or [
        {"name": n or f"x{i}", "tensor": True} for i, n in enumerate(main.arg_names or [""] * len(main.args))]
    params, checks, arg_names = [], [], []
    for a in arguments:
        name = lw.names(str(a["name"]), "x")
        if a["tensor"]:
            arg_names.append(name)
            params.append(name)
        else:   # a host scalar the program was converted with: a constant of this module
            from xcomp.backends.mlx.table import literal
            value = literal(a["value"])
            params.append(f"{name}={value}")
            checks += [f"        if {name} != {value}:",
                       f'            raise ValueError("converted with {name}={_comment(value)}; convert again for other values")']
    outs = lw.run(arg_names)
    body = checks + lw.lines
    body.append("        return " + (", ".join(outs) if len(outs) != 1 else outs[0]) if outs else "        return None")
    return EmittedModule(_module_text(lw, main, params, body, origin), lw.params)


def _type_text(t) -> str:
    if isinstance(t, TensorType):
        return "x".join(str(d) for d in t.shape) + (":" if t.shape else "") + MX_NAMES[t.dtype]
    return str(t)


def _comment(text: str) -> str:
    """Free text (which may come from a model or a path) as one safe comment line."""
    return "".join(c if c.isprintable() else "?" for c in text)


def _module_text(lw: MLXSourceLowering, main, params: list[str], body: list[str], origin: str) -> str:
    tensors = iter(main.args)
    inputs = ", ".join(p if "=" in p else f"{p} {_type_text(next(tensors).type)}" for p in params)
    head = [
        "# Generated by xcomp (mlx-source backend). Do not edit; regenerate with `xcomp convert`.",
        f"# Converted from: {_comment(origin) or 'an xcomp program'}",
        f"# Inputs: {_comment(inputs) or '(none)'}",
        f"# Outputs: {_comment(', '.join(_type_text(t) for t in main.result_types)) or '(none)'}",
        "# Runs with MLX alone: `from model import load; y = load()(x)`.",
        '"""A model converted to MLX by xcomp: `Model` computes it, `load()` returns it with its weights."""',
        "import math",
        "import os",
        "",
        "import mlx.core as mx",
        "import mlx.nn as nn",
        "",
    ]
    helpers = lw.helpers_source()
    init = ["    def __init__(self):", "        super().__init__()"]
    casts = []
    for p in lw.params:
        shape = tuple(int(d) for d in p.type.shape)
        stored = "float32" if p.type.dtype is DType.BF16 else MX_NAMES[p.type.dtype]
        init.append(f"        self.{p.attr} = mx.zeros({shape!r}, dtype=mx.{stored})  # {_comment(p.source)}")
        if p.type.dtype is DType.BF16:
            casts.append(f"    model.{p.attr} = model.{p.attr}.astype(mx.bfloat16)")
    call = [f"    def __call__(self{''.join(', ' + p for p in params)}):"] + body
    load = [
        "def load(path=None) -> Model:",
        '    """The model with its weights: weights.safetensors beside this file, or `path`."""',
        "    if path is None:",
        '        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "weights.safetensors")',
        "    model = Model()",
        "    if model.parameters():",
        "        model.load_weights(path)",
        *casts,
        "    mx.eval(model.parameters())",
        "    return model",
    ]
    parts = ["\n".join(head)]
    if helpers:
        parts.append("\n" + helpers)
    parts.append("\nclass Model(nn.Module):\n"
                 '    """The converted program: call it with the inputs listed above, in order."""\n\n'
                 + "\n".join(init if len(init) > 2 else init + []) + "\n\n" + "\n".join(call) + "\n")
    parts.append("\n" + "\n".join(load) + "\n")
    return "\n".join(parts)
