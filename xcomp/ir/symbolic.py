"""Symbolic sizes: canonical integer expressions over named dims.

A tensor dim is an `int` or a `str`, the canonical text of an expression over named sizes: sums of
products of names with integer coefficients, plus floor division and remainder by positive
constants (`"B"`, `"2*S"`, `"B*S"`, `"S+1"`, `"(S-1)//2+1"`, `"S%2"`). The canonical form makes equal
sizes compare and hash equal as plain strings: `mul("S", 2) == add("S", "S") == "2*S"`, and an
expression with no name left is an `int` again (`floordiv("2*S", 2) == "S"`, `sub("S", "S") == 0`).

    >>> add("S", 1), mul("B", "S"), floordiv(mul("S", 4), 2), mod(add(mul("S", 2), 3), 2)
    ('S+1', 'B*S', '2*S', 1)

Names are identifiers (`[A-Za-z_][A-Za-z0-9_]*`), so printed sizes are safe in generated source.
Conditions a program assumes about its sizes are `Guard`s (`xcomp.guards`); `evaluate` gives a size
its value for bound names.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Mapping, Union

Dim = Union[int, str]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TOKEN = re.compile(r"\s*(?:(\d+)|([A-Za-z_][A-Za-z0-9_]*)|(//|[-+*%()]))")


class SymbolicError(ValueError):
    """A size expression that is malformed or outside the canonical fragment (e.g. `S // T`)."""


# -- the canonical polynomial -------------------------------------------------------------------
@dataclass(frozen=True)
class _Atom:
    """A name, or `(poly // c)` / `(poly % c)` with c > 0 kept as an opaque factor."""

    name: str = ""
    inner: "_Poly | None" = None
    op: str = ""          # "//" or "%"
    const: int = 0

    def __str__(self) -> str:
        if not self.op:
            return self.name
        inner = str(self.inner)
        simple = len(self.inner.terms) == 1 and self.inner.terms[0][1] == 1
        return f"({inner}{self.op}{self.const})" if simple else f"(({inner}){self.op}{self.const})"

    def evaluate(self, env: Mapping[str, int]) -> int:
        if not self.op:
            try:
                return int(env[self.name])
            except KeyError:
                raise SymbolicError(f"no value bound for size '{self.name}'") from None
        v = self.inner.evaluate(env)
        return v // self.const if self.op == "//" else v % self.const

    def names(self) -> set[str]:
        return {self.name} if not self.op else self.inner.names()


@dataclass(frozen=True)
class _Poly:
    """sum(coeff * prod(atoms)); `terms` sorted, no zero coefficients, () is the constant term."""

    terms: tuple  # ((tuple[_Atom, ...], int), ...)

    @staticmethod
    def make(d: dict) -> "_Poly":
        items = [(m, c) for m, c in d.items() if c != 0]
        items.sort(key=lambda mc: (len(mc[0]) == 0, [str(a) for a in mc[0]]))
        return _Poly(tuple(items))

    @staticmethod
    def const(c: int) -> "_Poly":
        return _Poly.make({(): int(c)})

    @staticmethod
    def atom(a: _Atom) -> "_Poly":
        return _Poly.make({(a,): 1})

    def as_const(self) -> int | None:
        if not self.terms:
            return 0
        if len(self.terms) == 1 and self.terms[0][0] == ():
            return self.terms[0][1]
        return None

    def __add__(self, other: "_Poly") -> "_Poly":
        d = dict(self.terms)
        for m, c in other.terms:
            d[m] = d.get(m, 0) + c
        return _Poly.make(d)

    def scale(self, k: int) -> "_Poly":
        return _Poly.make({m: c * k for m, c in self.terms})

    def __mul__(self, other: "_Poly") -> "_Poly":
        d: dict = {}
        for m1, c1 in self.terms:
            for m2, c2 in other.terms:
                m = tuple(sorted(m1 + m2, key=str))
                d[m] = d.get(m, 0) + c1 * c2
        return _Poly.make(d)

    def split(self, c: int) -> tuple["_Poly", "_Poly"]:
        """(q, r) with self == c*q + r and every coefficient of r in [0, c)."""
        q, r = {}, {}
        for m, k in self.terms:
            q[m], r[m] = divmod(k, c)
        return _Poly.make(q), _Poly.make(r)

    def floordiv(self, c: int) -> "_Poly":
        if c <= 0:
            raise SymbolicError(f"floor division of a size by {c} (only positive constants)")
        q, r = self.split(c)
        rc = r.as_const()
        if rc is not None:
            return q  # 0 <= rc < c
        r, c, _ = r._reduce(c)
        if len(r.terms) == 1 and r.terms[0][1] == 1 and len(r.terms[0][0]) == 1 and r.terms[0][0][0].op == "//":
            inner = r.terms[0][0][0]  # (X // a) // c == X // (a*c)
            return q + inner.inner.floordiv(inner.const * c)
        return q + _Poly.atom(_Atom(inner=r, op="//", const=c))

    def nonnegative(self) -> bool:
        """Whether the value is >= 0 for every binding of the names to sizes (>= 0)."""
        return all(c >= 0 and all(a.op == "%" or not a.op or a.inner.nonnegative() for a in m)
                   for m, c in self.terms)

    def _reduce(self, c: int) -> tuple["_Poly", int, int]:
        """(r', c', g) with self == g*r' and c == g*c' for the largest such g."""
        import math
        g = c
        for _, k in self.terms:
            g = math.gcd(g, k)
        return (self, c, 1) if g == 1 else (_Poly.make({m: k // g for m, k in self.terms}), c // g, g)

    def mod(self, c: int) -> "_Poly":
        if c <= 0:
            raise SymbolicError(f"remainder of a size by {c} (only positive constants)")
        _, r = self.split(c)
        if r.as_const() is not None:
            return r
        r, c, g = r._reduce(c)
        return _Poly.atom(_Atom(inner=r, op="%", const=c)).scale(g)

    def evaluate(self, env: Mapping[str, int]) -> int:
        total = 0
        for m, c in self.terms:
            p = c
            for a in m:
                p *= a.evaluate(env)
            total += p
        return total

    def names(self) -> set[str]:
        out: set[str] = set()
        for m, _ in self.terms:
            for a in m:
                out |= a.names()
        return out

    def __str__(self) -> str:
        if not self.terms:
            return "0"
        parts = []
        for i, (m, c) in enumerate(self.terms):
            body = "*".join(str(a) for a in m)
            if not body:
                text = str(abs(c))
            elif abs(c) == 1:
                text = body
            else:
                text = f"{abs(c)}*{body}"
            sign = "-" if c < 0 else ("+" if i else "")
            parts.append(sign + text)
        return "".join(parts)


# -- parsing ------------------------------------------------------------------------------------
class _Reader:
    def __init__(self, text: str):
        self.text, self.toks, pos = text, [], 0
        while pos < len(text):
            if text[pos:].strip() == "":
                break
            m = _TOKEN.match(text, pos)
            if not m:
                raise SymbolicError(f"bad size expression '{text}' at column {pos + 1}")
            self.toks.append(m.group(1) or m.group(2) or m.group(3))
            pos = m.end()
        self.i = 0

    def peek(self):
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self):
        t = self.peek()
        if t is None:
            raise SymbolicError(f"size expression '{self.text}' ends early")
        self.i += 1
        return t

    def expr(self) -> _Poly:
        p = self.term()
        while self.peek() in ("+", "-"):
            sign = 1 if self.take() == "+" else -1
            p = p + self.term().scale(sign)
        return p

    def term(self) -> _Poly:
        p = self.factor()
        while self.peek() in ("*", "//", "%"):
            op = self.take()
            rhs = self.factor()
            if op == "*":
                p = p * rhs
                continue
            c = rhs.as_const()
            if c is None:
                raise SymbolicError(f"'{self.text}': {op} by a symbolic size is not supported")
            p = p.floordiv(c) if op == "//" else p.mod(c)
        return p

    def factor(self) -> _Poly:
        t = self.take()
        if t == "-":
            return self.factor().scale(-1)
        if t == "(":
            p = self.expr()
            if self.take() != ")":
                raise SymbolicError(f"unbalanced parentheses in '{self.text}'")
            return p
        if t.isdigit():
            return _Poly.const(int(t))
        if _NAME.fullmatch(t):
            return _Poly.atom(_Atom(name=t))
        raise SymbolicError(f"unexpected '{t}' in size expression '{self.text}'")


@functools.lru_cache(maxsize=65536)
def _parse(text: str) -> _Poly:
    r = _Reader(text)
    p = r.expr()
    if r.peek() is not None:
        raise SymbolicError(f"unexpected '{r.peek()}' in size expression '{text}'")
    return p


def _poly(d) -> _Poly:
    if isinstance(d, _Poly):
        return d
    if isinstance(d, bool):
        raise SymbolicError(f"not a size: {d!r}")
    if isinstance(d, int) or type(d).__name__ in ("int64", "int32"):
        return _Poly.const(int(d))
    if isinstance(d, str):
        return _parse(d)
    raise SymbolicError(f"not a size: {d!r}")


def _dim(p: _Poly) -> Dim:
    c = p.as_const()
    return c if c is not None else str(p)


# -- public API ---------------------------------------------------------------------------------
def canon(d) -> Dim:
    """The canonical form of a size: an int, or the canonical text of a symbolic expression."""
    if isinstance(d, int) and not isinstance(d, bool):
        return d
    return _dim(_poly(d))


def is_symbolic(d) -> bool:
    return isinstance(d, str)


def add(a, b) -> Dim:
    if isinstance(a, int) and isinstance(b, int):
        return a + b
    return _dim(_poly(a) + _poly(b))


def sub(a, b) -> Dim:
    if isinstance(a, int) and isinstance(b, int):
        return a - b
    return _dim(_poly(a) + _poly(b).scale(-1))


def mul(a, b) -> Dim:
    if isinstance(a, int) and isinstance(b, int):
        return a * b
    return _dim(_poly(a) * _poly(b))


def product(dims) -> Dim:
    out: Dim = 1
    for d in dims:
        out = mul(out, d)
    return out


def floordiv(a, c: int) -> Dim:
    """a // c for a positive constant c."""
    if isinstance(a, int) and isinstance(c, int) and c > 0:
        return a // c
    if not isinstance(c, int):
        raise SymbolicError(f"floor division of {a} by the symbolic size {c}")
    return _dim(_poly(a).floordiv(c))


def mod(a, c: int) -> Dim:
    """a % c for a positive constant c."""
    if isinstance(a, int) and isinstance(c, int) and c > 0:
        return a % c
    if not isinstance(c, int):
        raise SymbolicError(f"remainder of {a} by the symbolic size {c}")
    return _dim(_poly(a).mod(c))


def exact_div(a, b) -> Dim | None:
    """a / b when b divides a for every value of the names (a monomial divisor), else None."""
    pa, pb = _poly(a), _poly(b)
    cb = pb.as_const()
    if cb is not None:
        if cb == 0 or any(c % cb for _, c in pa.terms):
            return None
        return _dim(_Poly.make({m: c // cb for m, c in pa.terms}))
    if len(pb.terms) != 1:
        return None
    (mb, cb), = pb.terms
    out = {}
    for m, c in pa.terms:
        rest = list(m)
        for atom in mb:
            if atom not in rest:
                return None
            rest.remove(atom)
        if c % cb:
            return None
        out[tuple(rest)] = out.get(tuple(rest), 0) + c // cb
    return _dim(_Poly.make(out))


def divide(a, b) -> tuple[Dim, Dim, int] | None:
    """(q, r, c) with a / b == q exactly when `r % c == 0` (c == 1: always), for a divisor `b` that
    is a constant or one term (`16*B`); None when b does not divide a that way."""
    exact = exact_div(a, b)
    if exact is not None:
        return exact, 0, 1
    pb = _poly(b)
    if len(pb.terms) != 1 or pb.terms[0][1] <= 0:
        return None
    (mb, cb), = pb.terms
    rest = exact_div(a, _dim(_Poly.make({mb: 1}))) if mb else a
    if rest is None:
        return None
    r, c, _ = _poly(rest)._reduce(cb)
    return floordiv(rest, cb), _dim(r), c


def nonnegative(d) -> bool:
    """Whether size expression `d` is >= 0 whatever sizes (>= 0) its names take."""
    return d >= 0 if isinstance(d, int) else _poly(d).nonnegative()


def names(d) -> set[str]:
    """The size names `d` mentions."""
    return set() if isinstance(d, int) else _poly(d).names()


def evaluate(d, env: Mapping[str, int]) -> int:
    """The value of size `d` with names bound by `env`; SymbolicError names an unbound one."""
    if isinstance(d, int):
        return d
    return _poly(d).evaluate(env)


def substitute(d, mapping: Mapping[str, Dim]) -> Dim:
    """`d` with names replaced by sizes (ints or expressions); names not in `mapping` stay."""
    if isinstance(d, int):
        return d
    p = _poly(d)
    if not p.names() & set(mapping):
        return d
    return canon(_subst_text(p, mapping))


def _subst_text(p: _Poly, mapping) -> str:
    parts = []
    for m, c in p.terms:
        factors = [str(c)] + [_atom_text(a, mapping) for a in m]
        parts.append("*".join(factors))
    return "+".join(parts) if parts else "0"


def _atom_text(a: _Atom, mapping) -> str:
    if not a.op:
        return f"({canon(mapping[a.name])})" if a.name in mapping else a.name
    return f"(({_subst_text(a.inner, mapping)}){a.op}{a.const})"


def is_name(d) -> bool:
    """Whether `d` is a single bare name (a size an input can bind directly)."""
    return isinstance(d, str) and _NAME.fullmatch(d) is not None


def linear_in(d, name: str) -> tuple[int, Dim] | None:
    """(k, rest) with d == k*name + rest and `name` not in rest, when d is linear in `name`."""
    p = _poly(d)
    k, rest = 0, {}
    for m, c in p.terms:
        if any(a.op and name in a.names() for a in m):
            return None
        hits = sum(1 for a in m if a.name == name and not a.op)
        if hits > 1:
            return None
        if hits == 1:
            if len(m) != 1:
                return None
            k += c
        else:
            rest[m] = c
    return (k, _dim(_Poly.make(rest))) if k else None
