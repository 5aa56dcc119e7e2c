"""Symbolic sizes from torch.export: SymInts become xcomp size expressions, SymBool checks guards.

torch.export (with dynamic dims) threads sizes through the graph as SymInt-valued nodes
(`aten.sym_size.int`, `operator.mul` on sizes, ...) and keeps the checks it could not decide as
`aten._assert_scalar` nodes. The FX driver gives every node whose value is a SymInt its size
expression (`symbolic_value`: `s0`, `2*s0`, `((s0+1)//2)`, canonical, see `xcomp.ir.symbolic`), so
converters see sizes as ints or expression strings and put them in `DIMS`/`SYM` attributes
(reshape, broadcast_to, full, arange, slice). A SymBool-valued node becomes a `Guard`, and the
assert converters below record it on the program (`xcomp.guards.require`).
"""
from __future__ import annotations

import contextvars

import torch

from xcomp import guards
from xcomp.frontends.aten import aten
from xcomp.guards import Guard
from xcomp.ir import symbolic as sym


RENAMES: contextvars.ContextVar[dict] = contextvars.ContextVar("xcomp_size_names", default={})


def _expr(e):
    """A sympy expression over torch's size symbols -> an xcomp size (int or canonical text)."""
    import sympy
    name = type(e).__name__
    if isinstance(e, sympy.Integer) or (e.is_number and e.is_integer):
        return int(e)
    if isinstance(e, sympy.Symbol):
        return sym.canon(RENAMES.get().get(e.name, e.name))
    if isinstance(e, sympy.Add):
        out = 0
        for a in e.args:
            out = sym.add(out, _expr(a))
        return out
    if isinstance(e, sympy.Mul):
        out = 1
        for a in e.args:
            out = sym.mul(out, _expr(a))
        return out
    if name == "FloorDiv":
        c = _expr(e.args[1])
        if not isinstance(c, int) or c <= 0:
            raise NotImplementedError(f"size expression {e} (floor division by a non-constant)")
        return sym.floordiv(_expr(e.args[0]), c)
    if name in ("Mod", "PythonMod"):
        c = _expr(e.args[1])
        if not isinstance(c, int) or c <= 0:
            raise NotImplementedError(f"size expression {e} (remainder by a non-constant)")
        return sym.mod(_expr(e.args[0]), c)
    if isinstance(e, sympy.Pow) and e.args[1].is_Integer and int(e.args[1]) >= 0:
        out = 1
        for _ in range(int(e.args[1])):
            out = sym.mul(out, _expr(e.args[0]))
        return out
    raise NotImplementedError(f"size expression {e} ({name}) has no xcomp form")


_RELATIONS = {"Equality": "==", "Unequality": "!=", "GreaterThan": ">=", "StrictGreaterThan": ">",
              "LessThan": "<=", "StrictLessThan": "<"}


def _condition(e) -> Guard | bool:
    import sympy
    if e is sympy.true or e is True:
        return True
    if e is sympy.false or e is False:
        return False
    op = _RELATIONS.get(type(e).__name__)
    if op is None:
        raise NotImplementedError(f"size condition {e} ({type(e).__name__}) has no xcomp form")
    return Guard(_expr(e.args[0]), op, _expr(e.args[1]))


def symbolic_value(v):
    """The xcomp value of a SymInt (a size), SymBool (a Guard or bool) or plain int."""
    if isinstance(v, torch.SymInt):
        return int(v) if v.node.is_constant() else _expr(v.node.expr)
    if isinstance(v, torch.SymBool):
        return bool(v) if v.node.is_constant() else _condition(v.node.expr)
    if isinstance(v, torch.SymFloat):
        raise NotImplementedError(f"symbolic float {v}")
    return v


UNKNOWN = "_unknown"  # a size torch states in a form xcomp does not express (e.g. `s0//(s0//2)`)


def meta_size(v):
    """A size from torch's meta (a FakeTensor's shape): as `symbolic_value`, or `UNKNOWN` where
    torch's expression has no xcomp form (xcomp's own inference of that size is then trusted)."""
    try:
        return symbolic_value(v)
    except NotImplementedError:
        return UNKNOWN


def same_sizes(ours, torchs) -> bool:
    """Whether a converter's shape agrees with torch's, where torch's sizes are expressible."""
    return len(ours) == len(torchs) and all(t == UNKNOWN or o == t for o, t in zip(ours, torchs))


def is_symbolic_scalar(val) -> bool:
    """Whether a node's value is a SymInt/SymBool/SymFloat (a size computation, not a tensor op)."""
    return isinstance(val, (torch.SymInt, torch.SymBool, torch.SymFloat))


def sizes(vs) -> tuple:
    """A shape argument as sizes: ints, or expression strings for symbolic sizes."""
    if isinstance(vs, (int, str, torch.SymInt)):
        vs = [vs]
    return tuple(symbolic_value(v) if not isinstance(v, str) else v for v in vs)


def symbolic_slice_bounds(axis: int, n, start, end, step) -> tuple:
    """(axis, start, end, step) of x[start:end:step] where the size or a bound is symbolic.

    torch clamps bounds into [0, n]; symbolically xcomp keeps them as given (negative ints count
    from the end) and the slice op's type inference records `0 <= start <= end <= n` as guards.
    """
    INT_MAX = 2 ** 63 - 1

    def bound(v, default):
        if v is None or (isinstance(v, int) and v >= INT_MAX):
            return default
        v = symbolic_value(v)
        return sym.add(v, n) if isinstance(v, int) and v < 0 else v
    step = int(symbolic_value(step))
    if step < 1:
        raise ValueError(f"slice step must be positive, got {step}")
    return axis, bound(start, 0), bound(end, n), step


def range_guards(ep) -> list[Guard]:
    """Guards from an ExportedProgram's range constraints on its input sizes.

    torch's bounds are kept as they are: a `Dim.AUTO` size is assumed >= 2 (torch specialises 0 and
    1 and may have decided on that assumption), a `Dim(min=1)` size holds from 1.
    """
    out: list[Guard] = []
    for s, vr in ep.range_constraints.items():
        try:
            d = _expr(s)
        except NotImplementedError:
            continue
        if isinstance(d, int):
            continue
        lo = int(vr.lower) if getattr(vr.lower, "is_Integer", False) else 0
        if lo > 0:
            out.append(Guard(d, ">=", lo))
        if getattr(vr.upper, "is_Integer", False) and int(vr.upper) < 2 ** 62:
            out.append(Guard(d, "<=", int(vr.upper)))
    return out


def _record(cond, what: str):
    if isinstance(cond, Guard):
        guards.require(cond.lhs, cond.op, cond.rhs, what)
    elif cond is False:
        raise ValueError(f"{what}: the condition never holds")
    elif cond is not True:
        raise NotImplementedError(f"{what} on a tensor value (data-dependent)")


@aten("aten._assert_scalar.default")
def assert_scalar(cx, cond, msg=""):
    _record(cond, f"torch check '{msg}'")
    return None


@aten("aten.sym_constrain_range_for_size.default", "aten.sym_constrain_range.default")
def constrain_range(cx, size, min=None, max=None):
    if isinstance(size, str):
        if min is not None:
            guards.require(size, ">=", int(min), "torch size range")
        if max is not None:
            guards.require(size, "<=", int(max), "torch size range")
    return None
