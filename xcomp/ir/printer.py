"""Prints programs as MLIR text in generic op syntax, deterministically.

Values are numbered in order (`%argN` for block arguments, `%N` for results), attributes are sorted
and those equal to their default are left out, result types are always shown. The parser reads
back exactly this.
"""
from __future__ import annotations

import enum
import json
import math
import struct

import numpy as np

from xcomp.ir.core import Block, Func, Operation, Program, SymbolRef, Value
from xcomp.ir.types import DType, TensorType


def format_float(x: float) -> str:
    """An MLIR float literal; non-finite values as f64 bit patterns."""
    x = float(x)
    if not math.isfinite(x):
        return "0x%016X : f64" % struct.unpack("<Q", struct.pack("<d", x))[0]
    s = repr(x)
    if "e" in s and "." not in s:
        m, e = s.split("e")
        s = f"{m}.0e{e}"
    return s


def _dense(v: np.ndarray) -> str:
    if v.dtype == np.bool_ or v.dtype.kind in "iu":   # JSON's text of bools and ints is this syntax: one call
        return f"dense<{json.dumps(v.tolist())}>"

    def elem(x):
        if v.dtype == np.bool_:
            return "true" if x else "false"
        if v.dtype.kind == "f":
            f = float(x)
            if math.isfinite(f):
                return format_float(f)
            bits = np.asarray(x, v.dtype).view(f"u{v.dtype.itemsize}")
            return "0x%0*X" % (2 * v.dtype.itemsize, int(bits))
        return str(int(x))

    def rec(a):
        if a.ndim == 0:
            return elem(a.item())
        return "[" + ", ".join(rec(x) for x in a) + "]"
    return f"dense<{rec(v)}>"


def format_attr(value) -> str:
    """Text of one attribute value."""
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return format_float(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, DType):
        return value.value
    if isinstance(value, enum.Enum):
        return json.dumps(value.value)
    if isinstance(value, SymbolRef):
        return str(value)
    if isinstance(value, np.ndarray):
        return f"{_dense(value)} : {TensorType(value.shape, DType.from_numpy(value.dtype))}"
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(format_attr(x) for x in value) + "]"
    raise TypeError(f"cannot print attribute value {value!r}")


class _Namer:
    def __init__(self):
        self.names: dict[Value, str] = {}
        self.next_result = 0
        self.next_arg = 0
        self.pending: dict[Operation, str] = {}

    def arg(self, v: Value) -> str:
        self.names[v] = f"%arg{self.next_arg}"
        self.next_arg += 1
        return self.names[v]

    def results(self, op: Operation) -> str:
        base = f"%{self.next_result}"
        self.next_result += 1
        if len(op.results) == 1:
            self.names[op.results[0]] = base
        else:
            for i, r in enumerate(op.results):
                self.names[r] = f"{base}#{i}"
        return base if len(op.results) == 1 else f"{base}:{len(op.results)}"

    def __getitem__(self, v: Value) -> str:
        try:
            return self.names[v]
        except KeyError:
            raise ValueError(f"value {v!r} used before it is defined") from None


def _attr_dict(op: Operation) -> str:
    items = []
    for k in sorted(op.attrs):
        v = op.attrs[k]
        spec = op.opdef.attrs.get(k)
        if v is None or (spec is not None and not spec.required and _equal(v, spec.default)):
            continue
        items.append(f"{k} = {format_attr(v)}")
    return (" {" + ", ".join(items) + "}") if items else ""


def _equal(a, b) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return False
    return type(a) is type(b) and a == b


def _op_lines(op: Operation, names: _Namer, indent: str) -> list[str]:
    operands = ", ".join(names[v] for v in op.operands)
    in_types = ", ".join(str(v.type) for v in op.operands)
    lines: list[str] = []
    region_text = ""
    if op.regions:
        parts = []
        for r in op.regions:
            body = _block_lines(r.block, names, indent + "  ", label=True)
            parts.append("{\n" + "\n".join(body) + f"\n{indent}}}")
        region_text = " (" + ", ".join(parts) + ")"
    out_types = [str(r.type) for r in op.results]
    out = out_types[0] if len(out_types) == 1 else "(" + ", ".join(out_types) + ")"
    loc = f" loc({json.dumps(op.loc.file)}:{op.loc.line}:0)" if op.loc else ""
    lhs = ""
    if op.results:
        lhs = names.pending.pop(op) + " = "
    lines.append(f'{indent}{lhs}"{op.name}"({operands}){region_text}{_attr_dict(op)} : ({in_types}) -> {out}{loc}')
    return lines


def _assign(op: Operation, names: _Namer):
    if op.results:
        names.pending[op] = names.results(op)


def _block_lines(block: Block, names: _Namer, indent: str, label: bool) -> list[str]:
    lines = []
    if label and block.args:
        args = ", ".join(f"{names.arg(a)}: {a.type}" for a in block.args)
        lines.append(f"{indent[:-2]}^bb0({args}):")
    for op in block.ops:
        _assign(op, names)
        lines.extend(_op_lines(op, names, indent))
    return lines


def print_func(func: Func, names: _Namer | None = None) -> str:
    names = names or _Namer()
    args = ", ".join(f"{names.arg(a)}: {a.type}" for a in func.args)
    ret = func.body.ops[-1] if func.body.ops else None
    if ret is None or ret.name != "xc.return":
        raise ValueError(f"function @{func.name} does not end with xc.return")
    results = ", ".join(str(v.type) for v in ret.operands)
    lines = [f"  func.func @{func.name}({args}) -> ({results}) {{"]
    for op in func.body.ops[:-1]:
        _assign(op, names)
        lines.extend(_op_lines(op, names, "    "))
    if ret.operands:
        lines.append("    func.return " + ", ".join(names[v] for v in ret.operands) + " : " + results)
    else:
        lines.append("    func.return")
    lines.append("  }")
    return "\n".join(lines)


def print_program(program: Program) -> str:
    """The whole program as MLIR text (`module { func.func ... }`)."""
    names = [n for n in program.funcs if n != "main"] + (["main"] if "main" in program.funcs else [])
    body = "\n".join(print_func(program.funcs[n]) for n in names)
    guards = getattr(program, "guards", None)
    head = "module {" if not guards else \
        "module attributes {xc.guards = [" + ", ".join(json.dumps(str(g)) for g in guards) + "]} {"
    return head + "\n" + body + "\n}\n"
