"""Symbolic sizes at run time inside a MIL program.

A program with symbolic dims (`tensor<?x?x64xf32, ["B", "S"]>`) is built once for every size: each
name is read from the shape of an input that has it (`mb.shape` + `mb.gather`, at the top of the
function), and a size expression in an attribute or a result type (`"B*S"`, `"(S//2)"`, `"S+1"`)
becomes int32 arithmetic on those reads (`mb.mul`/`add`/`sub`/`floor_div`/`mod`), built once per
MIL block. `RunSizes.shape` gives a target shape for reshape/fill/tile: a constant where every
dim is known or only one is symbolic (that one as -1, MIL infers it), else one `mb.concat` of the
dims. Rules reach the sizes of the lowering in progress through `run_sizes()`.
"""
from __future__ import annotations

import re

import numpy as np
from coremltools.converters.mil import Builder as mb

from xcomp.errors import LoweringError

_TOKEN = re.compile(r"\s*(?:(\d+)|([A-Za-z_][A-Za-z0-9_]*)|(//|[-+*%()]))")


def _tokens(text: str) -> list[str]:
    out, pos = [], 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise LoweringError(f"coreml: malformed size expression '{text}'")
        out.append(m.group(m.lastindex))
        pos = m.end()
    return out


class RunSizes:
    """The MIL values of a program's symbolic sizes: names bound from inputs, expressions built on demand."""

    def __init__(self):
        self.names: dict[str, object] = {}   # name -> 0-d int32 Var
        self.built: dict[tuple, object] = {}  # (MIL block id, expression or shape) -> int32 Var
        self.operand_types: list = []          # IR types of the operands of the op being lowered

    def bind(self, inputs, types) -> None:
        """Read every named size from the first input (MIL Var) whose IR type has it as a dim."""
        for var, t in zip(inputs, types):
            dims = getattr(t, "shape", ())
            wanted = [(i, d) for i, d in enumerate(dims) if isinstance(d, str) and d.isidentifier()
                      and d not in self.names]
            if not wanted:
                continue
            shape = mb.shape(x=var)
            for axis, name in wanted:
                self.names[name] = mb.gather(x=shape, indices=np.int32(axis), axis=0)

    # scalars ----------------------------------------------------------------------------------
    def scalar(self, dim):
        """A size as a 0-d int32 MIL value (a numpy int32 when it is a constant)."""
        if not isinstance(dim, str):
            return np.int32(dim)
        from coremltools.converters.mil.mil.block import curr_block
        key = (id(curr_block()), dim)
        if key not in self.built:
            self.built[key] = _Reader(self, dim).run()
        return self.built[key]

    def name(self, name: str):
        if name not in self.names:
            raise LoweringError(f"coreml: size '{name}' is not the size of any input dim "
                                "(Core ML reads symbolic sizes from the input shapes)")
        return self.names[name]

    # shapes -----------------------------------------------------------------------------------
    def shape(self, dims, one_unknown_as_minus_one: bool = True):
        """A 1-d int32 target shape: a numpy constant when at most one dim is symbolic (it as -1
        when allowed), else the concat of the dims."""
        dims = list(dims)
        symbolic = [i for i, d in enumerate(dims) if isinstance(d, str)]
        if not symbolic:
            return np.array(dims, np.int32)
        if len(symbolic) == 1 and one_unknown_as_minus_one:
            return np.array([-1 if isinstance(d, str) else d for d in dims], np.int32)
        from coremltools.converters.mil.mil.block import curr_block
        key = (id(curr_block()), tuple(dims))
        if key not in self.built:
            self.built[key] = self._concat(dims)
        return self.built[key]

    def reshape_target(self, dims, source_dims):
        """The shape operand of `mb.reshape` from `source_dims` to `dims`: with equal ranks, symbolic
        dims equal to the source's dim at that position become 0 (copied from the input: the same in
        iOS15-16 and iOS17 reshape when the ranks agree) if that leaves a constant shape (at most one
        symbolic dim, as -1); else `shape`."""
        dims = list(dims)
        if len(dims) == len(source_dims):
            copied = [0 if isinstance(d, str) and d == s else d for d, s in zip(dims, source_dims)]
            if sum(isinstance(d, str) for d in copied) <= 1:   # a constant shape (MIL's type
                return self.shape(copied)                     # inference reads 0 only in constants)
        return self.shape(dims)

    def _vector(self, dim):
        """A symbolic size as a 1-element int32 vector (one per block)."""
        from coremltools.converters.mil.mil.block import curr_block
        key = (id(curr_block()), "[]", dim)
        if key not in self.built:
            self.built[key] = mb.expand_dims(x=self.scalar(dim), axes=[0])
        return self.built[key]

    def _concat(self, dims):
        parts, run = [], []
        for d in dims:
            if isinstance(d, str):
                if run:
                    parts.append(np.array(run, np.int32))
                    run = []
                parts.append(self._vector(d))
            else:
                run.append(int(d))
        if run:
            parts.append(np.array(run, np.int32))
        return mb.concat(values=parts, axis=0)


class _Reader:
    """Builds the MIL int32 arithmetic of one canonical size expression (`xcomp.ir.symbolic`):
    expr := term (('+'|'-') term)*; term := factor (('*'|'//'|'%') factor)*;
    factor := int | name | '(' expr ')' | '-' factor."""

    def __init__(self, sizes: RunSizes, text: str):
        self.sizes, self.text, self.toks, self.i = sizes, text, _tokens(text), 0

    def run(self):
        v = self.expr()
        if self.i != len(self.toks):
            raise LoweringError(f"coreml: malformed size expression '{self.text}'")
        return v

    def _peek(self):
        return self.toks[self.i] if self.i < len(self.toks) else None

    def _take(self):
        t = self._peek()
        if t is None:
            raise LoweringError(f"coreml: malformed size expression '{self.text}'")
        self.i += 1
        return t

    def expr(self):
        v = self.term()
        while self._peek() in ("+", "-"):
            op = self._take()
            v = _binary(op, v, self.term())
        return v

    def term(self):
        v = self.factor()
        while self._peek() in ("*", "//", "%"):
            op = self._take()
            v = _binary(op, v, self.factor())
        return v

    def factor(self):
        t = self._take()
        if t == "(":
            v = self.expr()
            if self._take() != ")":
                raise LoweringError(f"coreml: malformed size expression '{self.text}'")
            return v
        if t == "-":
            return _binary("*", self.factor(), np.int32(-1))
        if t.isdigit():
            return np.int32(int(t))
        if t.isidentifier():
            return self.sizes.name(t)
        raise LoweringError(f"coreml: malformed size expression '{self.text}'")


_MIL_BINARY = {"+": mb.add, "-": mb.sub, "*": mb.mul, "//": mb.floor_div, "%": mb.mod}


def _binary(op: str, a, b):
    """`a op b` on int32 sizes; folded here when both are constants."""
    if isinstance(a, np.integer) and isinstance(b, np.integer):
        fold = {"+": a + b, "-": a - b, "*": a * b, "//": a // b if b else 0, "%": a % b if b else 0}[op]
        return np.int32(fold)
    if op == "*" and isinstance(b, np.integer) and b == 1:
        return a
    return _MIL_BINARY[op](x=a, y=b)


def run_sizes() -> RunSizes:
    """The `RunSizes` of the Core ML lowering in progress."""
    from xcomp.backends.lowering import Lowering
    lowering = Lowering.current()
    sizes = getattr(lowering, "run_sizes", None)
    if sizes is None:
        raise LoweringError("coreml: symbolic sizes outside a Core ML lowering")
    return sizes


def has_symbolic(dims) -> bool:
    return any(isinstance(d, str) for d in dims)
