"""Reads the MLIR text that `xcomp.ir.printer` writes back into a Program.

Every problem, syntactic or semantic (unknown op, bad attribute, wrong result type, undefined
value), is a `ParseError` carrying `line:col`.
"""
from __future__ import annotations

import json
import re
import struct

import numpy as np

from xcomp.errors import ParseError
from xcomp.ir.core import Block, Func, Location, Operation, Program, Region, SymbolRef, Value
from xcomp.ir.types import DType, ListType, NoneType, ScalarType, TensorType, Type
from xcomp.ops import registry
from xcomp.ops.registry import AttrKind

_DTYPES = {d.value: d for d in DType}
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_.$\-]*")
_NUMBER = re.compile(r"[-+]?(0x[0-9A-Fa-f]+|[0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)?)")
_VALUE = re.compile(r"%[A-Za-z0-9_]+(#[0-9]+)?")
_SPACE = re.compile(r"(?:[ \t\r\n]+|//[^\n]*)*")   # blanks and // comments
_JSON_DENSE = re.compile(r"[-+0-9.eE\[\], \n]*|[truefals\[\], \n]*")   # dense<...> elements JSON reads as is
_EXP_PLUS = re.compile(r"([eE])\+")
_PLAIN_STRING = re.compile(r'"([^"\\\x00-\x1f]*)"')   # a string literal JSON reads as its own text
_MAX_DEPTH = 200


class _Hex(int):
    """A hex literal inside dense<...>: a bit pattern for float element types."""


class _Scope:
    """Value names visible at a point; isolated regions start a fresh scope."""

    def __init__(self, parent: "_Scope | None" = None):
        self.parent = parent
        self.values: dict[str, Value] = {}

    def lookup(self, name: str) -> Value | None:
        s = self
        while s is not None:
            if name in s.values:
                return s.values[name]
            s = s.parent
        return None


class Parser:
    """Recursive-descent parser over the raw text, tracking positions for errors."""

    def __init__(self, text: str, source_name: str = "<text>"):
        if not isinstance(text, str):
            raise ParseError(f"expected IR text (str), got {type(text).__name__}", 1, 1, source_name)
        self.text = text
        self.pos = 0
        self.source_name = source_name
        self.depth = 0

    # -- low level -------------------------------------------------------------------------
    def where(self, pos: int | None = None) -> tuple[int, int]:
        pos = self.pos if pos is None else pos
        line = self.text.count("\n", 0, pos) + 1
        col = pos - (self.text.rfind("\n", 0, pos) + 1) + 1
        return line, col

    def error(self, msg: str, pos: int | None = None) -> ParseError:
        line, col = self.where(pos)
        return ParseError(msg, line, col, self.source_name)

    def skip(self):
        self.pos = _SPACE.match(self.text, self.pos).end()   # one regex call: it runs before every token

    def peek(self, s: str) -> bool:
        self.skip()
        return self.text.startswith(s, self.pos)

    def accept(self, s: str) -> bool:
        if self.peek(s):
            self.pos += len(s)
            return True
        return False

    def expect(self, s: str):
        if not self.accept(s):
            found = self.text[self.pos:self.pos + 12] or "end of input"
            raise self.error(f"expected '{s}', found '{found}'")

    def match(self, regex: re.Pattern, what: str) -> str:
        self.skip()
        m = regex.match(self.text, self.pos)
        if not m:
            found = self.text[self.pos:self.pos + 12] or "end of input"
            raise self.error(f"expected {what}, found '{found}'")
        self.pos = m.end()
        return m.group(0)

    def string(self) -> str:
        self.skip()
        start = self.pos
        if not self.text.startswith('"', self.pos):
            raise self.error("expected a string literal")
        plain = _PLAIN_STRING.match(self.text, self.pos)   # no escapes: the text itself, in one call
        if plain:
            self.pos = plain.end()
            return plain.group(1)
        i = self.pos + 1
        while i < len(self.text) and self.text[i] != '"':
            i += 2 if self.text[i] == "\\" else 1
        if i >= len(self.text):
            raise self.error("unterminated string literal", start)
        try:
            value = json.loads(self.text[self.pos:i + 1])
        except ValueError:
            raise self.error("bad escape in string literal", start) from None
        self.pos = i + 1
        return value

    def nested(self):
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise self.error("nesting too deep")

    # -- types -----------------------------------------------------------------------------
    def type(self) -> Type:
        self.skip()
        start = self.pos
        if self.accept("tensor<"):
            return self.tensor_type(start)
        if self.accept("!xc.list<"):
            self.nested()
            el = self.type()
            self.depth -= 1
            self.expect(">")
            return ListType(el)
        word = self.match(_IDENT, "a type")
        if word == "none":
            return NoneType()
        if word in _DTYPES:
            return ScalarType(_DTYPES[word])
        raise self.error(f"unknown type '{word}'", start)

    def tensor_type(self, start: int) -> TensorType:
        m = re.compile(r"((?:[0-9]+|\?)x)*").match(self.text, self.pos)
        dims_text = m.group(0)
        self.pos = m.end()
        word = self.match(_IDENT, "an element type")
        if word not in _DTYPES:
            raise self.error(f"unknown element type '{word}'", start)
        dims = [d for d in dims_text.split("x") if d]
        syms: list[str] = []
        if self.accept(","):
            self.expect("[")
            while not self.accept("]"):
                syms.append(self.string())
                if not self.peek("]"):
                    self.expect(",")
        self.expect(">")
        if sum(d == "?" for d in dims) != len(syms):
            raise self.error("each '?' dim needs one symbol name in the encoding", start)
        it = iter(syms)
        shape = tuple(next(it) if d == "?" else int(d) for d in dims)
        return TensorType(shape, _DTYPES[word])

    def type_list(self) -> list[Type]:
        self.expect("(")
        out = []
        while not self.accept(")"):
            out.append(self.type())
            if not self.peek(")"):
                self.expect(",")
        return out

    # -- attributes ------------------------------------------------------------------------
    def attr_value(self):
        self.skip()
        start = self.pos
        if self.peek('"'):
            return self.string()
        if self.accept("["):
            self.nested()
            items = []
            while not self.accept("]"):
                items.append(self.attr_value())
                if not self.peek("]"):
                    self.expect(",")
            self.depth -= 1
            return items
        if self.accept("@"):
            return SymbolRef(self.match(_IDENT, "a symbol name"))
        if self.accept("dense<"):
            return self.dense(start)
        if self.text.startswith(("true", "false"), self.pos) and not _IDENT.match(
                self.text, self.pos + (4 if self.text.startswith("true", self.pos) else 5)):
            v = self.text.startswith("true", self.pos)
            self.pos += 4 if v else 5
            return v
        if re.match(r"[-+0-9]", self.text[self.pos:self.pos + 1]):
            return self.number(typed=True)
        word = self.match(_IDENT, "an attribute value")
        if word in _DTYPES:
            return _DTYPES[word]
        raise self.error(f"unknown attribute value '{word}'", start)

    def number(self, typed: bool):
        start = self.pos
        tok = self.match(_NUMBER, "a number")
        is_hex = "0x" in tok.lower()
        is_float = not is_hex and any(c in tok for c in ".eE")
        ty = None
        if typed and self.peek(":") and not self.peek("::"):
            save = self.pos
            self.expect(":")
            self.skip()
            m = _IDENT.match(self.text, self.pos)
            if m and m.group(0) in _DTYPES:
                self.pos = m.end()
                ty = _DTYPES[m.group(0)]
            else:
                self.pos = save
        if is_hex:
            bits = int(tok, 16)
            if ty is not None and ty.is_float:
                if bits >= 1 << 64:
                    raise self.error("float bit pattern too wide", start)
                return struct.unpack("<d", struct.pack("<Q", bits))[0]
            return bits
        if ty is not None and ty.is_float or is_float:
            return float(tok)
        return int(tok)

    def dense(self, start: int) -> np.ndarray:
        raw = self._json_dense()
        if raw is None:
            raw = self.dense_elems()
        self.expect(">")
        self.expect(":")
        ty = self.type()
        if not isinstance(ty, TensorType) or not ty.is_static:
            raise self.error("dense<...> needs a static tensor type", start)
        try:
            dt = ty.dtype.np
            flat = np.asarray(raw, dtype=object).reshape(-1) if raw != [] else np.zeros(0, object)

            def conv(x):
                if isinstance(x, _Hex):
                    if not ty.dtype.is_float:
                        return int(x)
                    return np.asarray(int(x), dtype=f"u{dt.itemsize}").view(dt).item()
                return x
            arr = np.array([conv(x) for x in flat], dtype=dt).reshape(ty.shape)
        except (ValueError, TypeError, OverflowError):
            raise self.error(f"dense elements do not fit {ty}", start) from None
        return arr

    def _json_dense(self):
        """The elements of a dense<...> of plain decimal numbers or booleans, read by json in one
        call (a 1024-element mask would otherwise take a few thousand token reads); None when the
        text holds anything else (hex bit patterns, a syntax error), left to `dense_elems`."""
        self.skip()
        end = self.text.find(">", self.pos)
        chunk = self.text[self.pos:end]
        if end < 0 or not chunk.startswith("[") or not _JSON_DENSE.fullmatch(chunk):
            return None
        try:
            raw = json.loads(_EXP_PLUS.sub(r"\1", chunk))   # 1e+20 as JSON's 1e20
        except (ValueError, RecursionError):
            return None
        self.pos = end
        return raw

    def dense_elems(self):
        if self.accept("["):
            self.nested()
            items = []
            while not self.accept("]"):
                items.append(self.dense_elems())
                if not self.peek("]"):
                    self.expect(",")
            self.depth -= 1
            return items
        if self.accept("true"):
            return True
        if self.accept("false"):
            return False
        self.skip()
        if self.text.startswith(("0x", "0X"), self.pos):
            return _Hex(self.number(typed=False))
        return self.number(typed=False)

    def attr_dict(self) -> dict:
        out = {}
        self.expect("{")
        while not self.accept("}"):
            key_pos = self.pos
            key = self.match(_IDENT, "an attribute name")
            if key in out:
                raise self.error(f"duplicate attribute '{key}'", key_pos)
            self.expect("=")
            out[key] = (self.attr_value(), key_pos)
            if not self.peek("}"):
                self.expect(",")
        return out

    def coerce(self, opdef, raw: dict, pos: int) -> dict:
        out = {}
        for key, (v, kpos) in raw.items():
            spec = opdef.attrs.get(key)
            if spec is None:
                raise self.error(f"{opdef.name} has no attribute '{key}'", kpos)
            try:
                out[key] = _coerce(spec, v)
            except (TypeError, ValueError) as e:
                raise self.error(f"{opdef.name}: attribute '{key}': {e}", kpos) from None
        try:
            return opdef.normalize_attrs(out)
        except TypeError as e:
            raise self.error(str(e), pos) from None

    # -- ops, blocks, functions ------------------------------------------------------------
    def value_use(self, scope: _Scope) -> Value:
        start = self.pos
        name = self.match(_VALUE, "a value (%name)")
        v = scope.lookup(name)
        if v is None:
            raise self.error(f"use of undefined value {name}", start)
        return v

    def define_value(self, scope: _Scope, name: str, v: Value, pos: int):
        if name in scope.values:
            raise self.error(f"value {name} defined twice", pos)
        scope.values[name] = v

    def operation(self, block: Block, scope: _Scope):
        self.skip()
        start = self.pos
        res_name, n_res = None, 0
        if self.peek("%"):
            res_name = self.match(re.compile(r"%[A-Za-z0-9_]+"), "a result name")
            n_res = 1
            if self.accept(":"):
                n_res = int(self.match(re.compile(r"[0-9]+"), "a result count"))
                if n_res < 1 or n_res > 4096:
                    raise self.error("bad result count", start)
            self.expect("=")
        self.skip()
        op_pos = self.pos
        name = self.string()
        try:
            opdef = registry.get(name)
        except KeyError:
            raise self.error(f"unknown op '{name}'", op_pos) from None
        self.expect("(")
        operands = []
        while not self.accept(")"):
            operands.append(self.value_use(scope))
            if not self.peek(")"):
                self.expect(",")
        regions = []
        if self.peek("({"):
            self.expect("(")
            while True:
                regions.append(self.region(scope, opdef))
                if not self.accept(","):
                    break
            self.expect(")")
        raw = self.attr_dict() if self.peek("{") else {}
        attrs = self.coerce(opdef, raw, op_pos)
        self.expect(":")
        in_types = self.type_list()
        self.expect("->")
        out_types = self.type_list() if self.peek("(") else [self.type()]
        loc = self.location()
        if len(in_types) != len(operands) or any(t != v.type for t, v in zip(in_types, operands)):
            raise self.error(f"{name}: operand types {[str(t) for t in in_types]} do not match the "
                             f"operands' types {[str(v.type) for v in operands]}", op_pos)
        if len(out_types) != n_res:
            raise self.error(f"{name}: {n_res} result name(s) but {len(out_types)} result type(s)", start)
        op = Operation(opdef, operands, attrs, out_types, regions, loc)
        from xcomp.ir.verifier import check_op
        problem = check_op(op, self.weight_types)
        if problem:
            raise self.error(problem, op_pos)
        block.append(op)
        if res_name is not None:
            if n_res == 1:
                self.define_value(scope, res_name, op.results[0], start)
            else:
                for i, r in enumerate(op.results):
                    self.define_value(scope, f"{res_name}#{i}", r, start)
        return op

    def location(self) -> Location | None:
        if not self.accept("loc("):
            return None
        f = self.string()
        self.expect(":")
        line = int(self.match(re.compile(r"[0-9]+"), "a line number"))
        self.expect(":")
        self.match(re.compile(r"[0-9]+"), "a column number")
        self.expect(")")
        return Location(f, line)

    def region(self, scope: _Scope, opdef) -> Region:
        self.nested()
        self.expect("{")
        inner = _Scope(None if opdef.has(registry.Trait.ISOLATED) else scope)
        block = Block()
        if self.accept("^"):
            self.match(_IDENT, "a block label")
            if self.accept("("):
                while not self.accept(")"):
                    pos = self.pos
                    name = self.match(re.compile(r"%[A-Za-z0-9_]+"), "a block argument")
                    self.expect(":")
                    self.define_value(inner, name, block.add_arg(self.type()), pos)
                    if not self.peek(")"):
                        self.expect(",")
            self.expect(":")
        while not self.accept("}"):
            if self.pos >= len(self.text):
                raise self.error("unterminated region")
            self.operation(block, inner)
        self.depth -= 1
        return Region([block])

    def func(self, program: Program):
        self.expect("func.func")
        self.expect("@")
        pos = self.pos
        name = self.match(_IDENT, "a function name")
        if name in program.funcs:
            raise self.error(f"function @{name} defined twice", pos)
        scope = _Scope()
        body = Block()
        self.expect("(")
        while not self.accept(")"):
            p = self.pos
            vname = self.match(re.compile(r"%[A-Za-z0-9_]+"), "an argument name")
            self.expect(":")
            self.define_value(scope, vname, body.add_arg(self.type()), p)
            if not self.peek(")"):
                self.expect(",")
        self.expect("->")
        result_types = self.type_list()
        self.expect("{")
        func = Func(name, body)
        program.funcs[name] = func
        while not self.peek("func.return"):
            if self.pos >= len(self.text) or self.peek("}"):
                raise self.error(f"function @{name} does not end with func.return")
            self.operation(body, scope)
        ret_pos = self.pos
        self.expect("func.return")
        outs = []
        if self.peek("%"):
            outs.append(self.value_use(scope))
            while self.accept(","):
                outs.append(self.value_use(scope))
            self.expect(":")
            types = [self.type()]
            while self.accept(","):
                types.append(self.type())
            if types != [v.type for v in outs]:
                raise self.error("func.return types do not match its operands", ret_pos)
        if [v.type for v in outs] != result_types:
            raise self.error(f"@{name} returns {[str(v.type) for v in outs]} but is declared to "
                             f"return {[str(t) for t in result_types]}", ret_pos)
        body.append(Operation(registry.get("return"), outs, {}, []))
        self.expect("}")

    def module_attributes(self, program: Program):
        """`attributes {xc.guards = ["S%2 == 0", ...]}`: the program's guards."""
        from xcomp.guards import Guard
        self.expect("{")
        while not self.accept("}"):
            pos = self.pos
            key = self.match(_IDENT, "a module attribute name")
            self.expect("=")
            value = self.attr_value()
            if key != "xc.guards" or not isinstance(value, list) or not all(isinstance(g, str) for g in value):
                raise self.error(f"unknown module attribute '{key}' (xcomp knows xc.guards = [strings])", pos)
            try:
                program.guards = [Guard.parse(g) for g in value]
            except ValueError as e:
                raise self.error(str(e), pos) from None
            if not self.peek("}"):
                self.expect(",")

    def program(self, weights: dict | None = None) -> Program:
        program = Program(weights=dict(weights or {}))
        self.weight_types = None if weights is None else {
            k: (tuple(np.shape(v)), DType.from_numpy(np.asarray(v).dtype)) for k, v in program.weights.items()}
        wrapped = self.accept("module")
        if wrapped:
            if self.accept("attributes"):
                self.module_attributes(program)
            self.expect("{")
        while self.peek("func.func"):
            self.func(program)
        if wrapped:
            self.expect("}")
        self.skip()
        if self.pos != len(self.text):
            raise self.error("unexpected text after the program")
        if "main" not in program.funcs:
            raise self.error("the program has no @main function")
        from xcomp.ir.verifier import verify_calls
        problem = verify_calls(program)
        if problem:
            raise self.error(problem)
        return program


def _coerce(spec, v):
    k = spec.kind
    if k is AttrKind.ENUM:
        if not isinstance(v, str):
            raise TypeError(f"expected a string naming a {spec.enum.__name__}")
        return spec.enum(v)
    if k is AttrKind.FLOAT and isinstance(v, int) and not isinstance(v, bool):
        return float(v)
    if k is AttrKind.FLOATS and isinstance(v, list):
        return tuple(float(x) if isinstance(x, int) and not isinstance(x, bool) else x for x in v)
    if k in (AttrKind.INTS, AttrKind.DIMS) and isinstance(v, list):
        return tuple(v)
    return v


def parse(text: str, weights: dict | None = None, source_name: str = "<text>") -> Program:
    """Parse IR text into a Program. Every failure is an `xcomp.ParseError` with `line:col`.

    `weights` (name -> array) are attached to the program; when given, `xc.weight` ops are checked
    against them.
    """
    p = Parser(text, source_name)
    try:
        return p.program(weights)
    except ParseError:
        raise
    except (ValueError, TypeError, KeyError, OverflowError, IndexError, RecursionError) as e:
        raise p.error(f"malformed IR: {e}") from None
