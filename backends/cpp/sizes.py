"""Symbolic sizes in the C++ lowering: a size the generated code reads at run time.

A program with symbolic sizes (`tensor<?x64xf32, ["S"]>`) is lowered once: every dim of a `Buf`
is an `int` (static: rendered as the literal it always was) or a `Sz`, a canonical size expression
of `xcomp.ir.symbolic` that renders as C++ over the entry point's size variables (`S` -> `xs_S`,
bound from `xc_run_sizes`' `sizes` argument; `(S-1)//2` -> `xc_fdiv(xs_S - 1, 2)`, floor division
as Python's). `Sz` does the arithmetic the rules do on shapes (`+ - * // %`, products, equality
of canonical forms), so a rule written for static shapes renders sizes without knowing which are
symbolic. What a rule cannot do with a symbolic size (an ordering that depends on the binding, an
`int()`) raises `NeedsStaticSizes`: the target then builds that program once per size binding
(`xcomp.specialize.per_size`) and says which op needed it.
"""
from __future__ import annotations

import math
from typing import Iterable

from xcomp.errors import LoweringError
from xcomp.ir import symbolic as sym

PREFIX = "xs_"      # size variables in the source; no other generated name starts with it


class NeedsStaticSizes(LoweringError):
    """A C++ rule needs a size that is symbolic in this program to be a constant."""

    def __init__(self, msg: str, op: str | None = None):
        super().__init__(msg)
        self.op = op


class Sz(str):
    """A symbolic size with the arithmetic of sizes: a `str` holding the canonical text (so the
    functions of `xcomp.ir.symbolic` and code that tells symbolic dims by `isinstance(d, str)` take
    it as a size), which formats as C++ (`str()`, f-strings, templates)."""

    __slots__ = ()

    @property
    def d(self) -> str:
        return str.__str__(self)

    # construction ---------------------------------------------------------------------------
    @staticmethod
    def of(d):
        """An int for a static size (int or constant expression), else a Sz."""
        if isinstance(d, Sz):
            return d
        c = sym.canon(str.__str__(d) if isinstance(d, str) else d)
        return c if isinstance(c, int) else Sz(c)

    # arithmetic -----------------------------------------------------------------------------
    def __add__(self, o):
        return Sz.of(sym.add(self.d, _d(o)))

    __radd__ = __add__

    def __sub__(self, o):
        return Sz.of(sym.sub(self.d, _d(o)))

    def __rsub__(self, o):
        return Sz.of(sym.sub(_d(o), self.d))

    def __mul__(self, o):
        return Sz.of(sym.mul(self.d, _d(o)))

    __rmul__ = __mul__

    def __neg__(self):
        return Sz.of(sym.sub(0, self.d))

    def __floordiv__(self, o):
        return _div(self.d, _d(o))

    def __rfloordiv__(self, o):
        return _div(_d(o), self.d)

    def __mod__(self, o):
        o = _d(o)
        if isinstance(o, int) and o > 0:
            return Sz.of(sym.mod(self.d, o))
        if sym.exact_div(self.d, o) is not None:
            return 0
        raise NeedsStaticSizes(f"{self.d} % {o} over symbolic sizes")

    def __rtruediv__(self, o):
        """`1.0 / n` for a row's mean: a float the kernel expression computes at run time."""
        return CFloat(f"((float)({float(o)!r} / (double)({self})))")

    # comparisons: equal canonical forms are equal sizes; an order only when it holds for every binding
    def __eq__(self, o):
        if isinstance(o, (Sz, str)):
            try:
                return self.d == sym.canon(_d(o))
            except sym.SymbolicError:
                return False
        return False if isinstance(o, int) else NotImplemented

    def __ne__(self, o):
        r = self.__eq__(o)
        return r if r is NotImplemented else not r

    def __hash__(self):
        return hash(self.d)

    def _order(self, o, op: str) -> bool:
        diff = sym.sub(self.d, _d(o))
        if isinstance(diff, int):
            return {"<": diff < 0, "<=": diff <= 0, ">": diff > 0, ">=": diff >= 0}[op]
        if op in (">=", ">") and sym.nonnegative(diff if op == ">=" else sym.sub(diff, 1)):
            return True
        if op in ("<", "<=") and sym.nonnegative(sym.sub(-1, diff) if op == "<" else sym.sub(0, diff)):
            return True
        raise NeedsStaticSizes(f"whether {self.d} {op} {_d(o)} depends on the sizes")

    def __lt__(self, o):
        return self._order(o, "<")

    def __le__(self, o):
        return self._order(o, "<=")

    def __gt__(self, o):
        return self._order(o, ">")

    def __ge__(self, o):
        return self._order(o, ">=")

    def __bool__(self):
        # a symbolic size is not known to be 0: rules emit the general code, whose loops also run 0 times
        return True

    def __int__(self):
        raise NeedsStaticSizes(f"the size {self.d} is symbolic")

    __index__ = __int__

    # rendering -----------------------------------------------------------------------------
    def __str__(self) -> str:
        return cpp(self.d)

    def __format__(self, spec) -> str:
        return cpp(self.d)

    def __repr__(self) -> str:
        return f"Sz({self.d!r})"


class CFloat:
    """A float literal of a kernel expression that is computed at run time (codegen renders
    `c_expr` where it would print the number)."""

    def __init__(self, c_expr: str):
        self.c_expr = c_expr

    def __float__(self):
        raise NeedsStaticSizes(f"the float {self.c_expr} depends on symbolic sizes")


def _d(o):
    if isinstance(o, Sz):
        return o.d
    if isinstance(o, str):
        return str.__str__(o)
    if isinstance(o, bool) or not isinstance(o, (int, str)):
        if type(o).__name__ in ("int64", "int32"):
            return int(o)
        raise NeedsStaticSizes(f"size arithmetic with {o!r}")
    return o


def _div(a, b):
    if isinstance(b, int) and b > 0:
        return Sz.of(sym.floordiv(a, b))
    q = sym.exact_div(a, b) if b != 0 else None
    if q is None:
        raise NeedsStaticSizes(f"{a} // {b} over symbolic sizes")
    return Sz.of(q)


def dim(d):
    """An IR dim (int or size text) as a lowering dim (int or Sz)."""
    return d if isinstance(d, int) else Sz.of(d)


_HOST_FNS = {"max": "std::max<int64_t>({}, {})", "mul": "(({}) * ({}))", "cdiv": "((({}) + ({}) - 1) / ({1}))"}


def spell(d):
    """A size as the lowering renders it (the `sv` of the kernel generator: an int, a size text, or a
    host function `(fn, *args)` of sizes such as `("max", "S-1", 0)`)."""
    if isinstance(d, tuple):
        if d[0] not in _HOST_FNS:
            raise NeedsStaticSizes(f"the size function {d[0]} has no C++ spelling")
        args = [str(spell(a)) for a in d[1:]]
        return _HOST_FNS[d[0]].replace("{1}", "{}").format(*args, *args[1:]) if d[0] == "cdiv" \
            else _HOST_FNS[d[0]].format(*args)
    return d if isinstance(d, int) else Sz.of(d)


def dims(shape: Iterable) -> tuple:
    return tuple(dim(d) for d in shape)


def ir_dims(shape: Iterable) -> tuple:
    """Lowering dims back as IR dims (for types built inside the lowering)."""
    return tuple(d.d if isinstance(d, Sz) else int(d) for d in shape)


def prod(shape: Iterable):
    """The product of dims (an int when every dim is static)."""
    return math.prod(shape, start=1)


def is_symbolic(v) -> bool:
    return isinstance(v, Sz)


def at_least(n, k: int) -> bool:
    """`n >= k` for a heuristic choice: a symbolic size counts as large (the code is correct for
    every size; only the choice of loop shape assumes it)."""
    return n >= k if isinstance(n, int) else True


def cdiv_expr(a, b) -> str:
    """C++ of `max(1, a // b)` (a grain: elements per task over elements per row)."""
    if isinstance(b, int) and isinstance(a, int):
        return str(max(1, a // max(1, b)))
    return f"std::max<int64_t>(1, (int64_t)({a}) / std::max<int64_t>(1, (int64_t)({b})))"


# -- canonical size expressions as C++ --------------------------------------------------------------
def cpp(d) -> str:
    """C++ (int64) of a canonical size `d`; names become `xs_<name>` variables."""
    if isinstance(d, int):
        return str(d)
    return _poly_cpp(sym._poly(d))


def _poly_cpp(p) -> str:
    parts = []
    for i, (mono, c) in enumerate(p.terms):
        factors = [_atom_cpp(a) for a in mono]
        if not factors:
            text = str(abs(c))
        elif abs(c) == 1:
            text = "*".join(factors)
        else:
            text = "*".join([str(abs(c))] + factors)
        parts.append(("-" if c < 0 else ("+" if i else "")) + text)
    body = "".join(parts) or "0"
    one_call = len(p.terms) == 1 and p.terms[0][1] == 1 and len(p.terms[0][0]) == 1
    simple = body.isidentifier() or body.isdigit() or one_call
    return body if simple else f"({body})"     # an operand of any C++ operator as it stands


def _atom_cpp(a) -> str:
    if not a.op:
        return PREFIX + a.name
    fn = "xc_fdiv" if a.op == "//" else "xc_fmod"
    return f"{fn}({_poly_cpp(a.inner)}, {a.const})"


def names_of(shapes: Iterable[Iterable]) -> list[str]:
    """The size names the dims of `shapes` mention, sorted (the order of the sizes argument)."""
    out: set[str] = set()
    for shape in shapes:
        for d in shape:
            out |= sym.names(d.d if isinstance(d, Sz) else d)
    return sorted(out)


def max1(n):
    """max(n, 1); a symbolic size as it is (an empty tensor's loops never read it)."""
    return n if isinstance(n, Sz) else max(n, 1)


def broadcast_shapes(*shapes) -> tuple:
    """numpy broadcasting of shapes whose dims may be run-time sizes (type inference has checked
    them: dims are equal, or one of them 1)."""
    rank = max((len(s) for s in shapes), default=0)
    out = []
    for d in range(rank):
        got = 1
        for s in shapes:
            v = s[d - rank + len(s)] if d - rank + len(s) >= 0 else 1
            got = v if got == 1 else got
        out.append(got)
    return tuple(out)


# -- index arithmetic over static or run-time sizes (the cpp target's own: dims are ints or Sz) ------
def broadcast_strides(shape: tuple, full: tuple) -> list:
    """Element strides of a row-contiguous `shape` read at each index of `full` (0: broadcast)."""
    aligned = (1,) * (len(full) - len(shape)) + dims(shape)
    out, acc = [0] * len(full), 1
    for i in range(len(full) - 1, -1, -1):
        out[i] = 0 if aligned[i] == 1 and full[i] != 1 else acc
        acc = acc * aligned[i]
    return out


def collapse(sizes: list, strides: list) -> list[tuple]:
    """Drop size-1 dims and merge neighbours that are one run in memory."""
    out: list[tuple] = []
    for s, st in ((s, st) for s, st in zip(sizes, strides) if s != 1):
        if out and out[-1][1] == st * s:
            out[-1] = (out[-1][0] * s, st)
        else:
            out.append((s, st))
    return out


def index_expr(sizes: list, strides: list, var: str) -> str:
    """C++ of the element offset at linear index `var` over `sizes` (row-major)."""
    found = collapse(list(dims(sizes)), list(dims(strides)))
    terms, inner = [], 1
    for i in range(len(found) - 1, -1, -1):
        s, st = found[i]
        c = var if inner == 1 else f"({var} / {inner})"
        if i > 0:
            c = f"({c} % {s})"
        if st != 0:
            terms.append(c if st == 1 else f"{c} * {st}")
        inner = inner * s
    return " + ".join(reversed(terms)) or "0"
