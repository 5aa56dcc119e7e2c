"""Guards: the conditions a program with symbolic sizes assumes, checked on every call.

A program whose input types have named sizes (`tensor<?x?x64xf32, ["B", "S"]>`) runs for every
binding of those names that satisfies its guards (`Program.guards`). Guards come from the frontend
(torch.export's range constraints and `_assert_scalar` checks) and from op type inference (a reshape
with `-1` over `8*S` elements into rows of 16 needs `S%2 == 0`; a slice `[:S]` of a 512-row table
needs `S <= 512`). They print in the module header of the IR text and are saved with it:

    module attributes {xc.guards = ["S%2 == 0", "S >= 1"]} {

Before a call, `bind(program, shapes)` binds each name from the input shapes (every occurrence of a
name must agree: that is the "dims equal" guard) and `check(program, env)` raises `GuardError` naming
each failed guard with the values. `xcomp.compile` raises that error to the caller: a guard that fails
means the program was never valid for those sizes (the eager model would fail or take another path),
never that a recompile would help.

What a backend must read to run symbolic programs: `bind` for the values of the names at a call,
`Program.guards` (already checked by the caller), and `xcomp.ir.symbolic.evaluate` for sizes in
types and in attributes of kind `DIMS`/`SYM` (`concrete_op` does both for one op).
"""
from __future__ import annotations

import contextlib
import contextvars
import operator
import re
from dataclasses import dataclass
from typing import Mapping, Sequence

from xcomp.errors import XcompError
from xcomp.ir import symbolic as sym
from xcomp.ir.symbolic import Dim


class GuardError(XcompError):
    """The inputs of a call break a condition the compiled program assumes about its sizes."""


_OPS = {"==": operator.eq, "!=": operator.ne, ">=": operator.ge, "<=": operator.le,
        ">": operator.gt, "<": operator.lt}
_SPLIT = re.compile(r"\s(==|!=|>=|<=|>|<)\s")


@dataclass(frozen=True)
class Guard:
    """`lhs op rhs` over sizes (canonical), e.g. `S%2 == 0`, `S >= 1`, `S <= 512`."""

    lhs: Dim
    op: str
    rhs: Dim

    def __post_init__(self):
        if self.op not in _OPS:
            raise ValueError(f"unknown guard relation '{self.op}'")
        object.__setattr__(self, "lhs", sym.canon(self.lhs))
        object.__setattr__(self, "rhs", sym.canon(self.rhs))

    def __str__(self) -> str:
        return f"{self.lhs} {self.op} {self.rhs}"

    @staticmethod
    def parse(text: str) -> "Guard":
        parts = _SPLIT.split(text.strip())
        if len(parts) != 3:
            raise ValueError(f"malformed guard '{text}' (want 'lhs op rhs')")
        return Guard(parts[0], parts[1], parts[2])

    def holds(self, env: Mapping[str, int]) -> bool:
        return _OPS[self.op](sym.evaluate(self.lhs, env), sym.evaluate(self.rhs, env))

    def decided(self) -> bool | None:
        """True/False when the guard holds/fails for every binding, None when it depends."""
        diff = sym.sub(self.lhs, self.rhs)
        if isinstance(diff, int):
            return _OPS[self.op](diff, 0)
        if self.op in ("==", ">=", "<=") and diff == 0:
            return True
        if (self.op == ">=" and sym.nonnegative(diff)) or (self.op == "<=" and sym.nonnegative(sym.sub(0, diff))):
            return True
        if (self.op == ">" and sym.nonnegative(sym.sub(diff, 1))) or \
                (self.op == "<" and sym.nonnegative(sym.sub(-1, diff))):
            return True
        return None

    def names(self) -> set[str]:
        return sym.names(self.lhs) | sym.names(self.rhs)


# -- collecting guards while ops are built --------------------------------------------------------
_collector: contextvars.ContextVar[list | None] = contextvars.ContextVar("xcomp_guards", default=None)


@contextlib.contextmanager
def collect():
    """Collect the guards that op type inference requires while the block runs (a list)."""
    found: list[Guard] = []
    token = _collector.set(found)
    try:
        yield found
    finally:
        _collector.reset(token)


def require(lhs: Dim, op: str, rhs: Dim, what: str = "") -> None:
    """Record that `lhs op rhs` must hold. Raises ValueError when it can never hold; does nothing
    when it always holds or when no capture is collecting (re-inference of a built program)."""
    g = Guard(lhs, op, rhs)
    d = g.decided()
    if d is False:
        raise ValueError(f"{what + ': ' if what else ''}{g} never holds")
    if d is None:
        found = _collector.get()
        if found is not None and g not in found:
            found.append(g)


def merge(existing: Sequence[Guard], new: Sequence[Guard]) -> list[Guard]:
    """Guards in a stable order, without duplicates or always-true ones."""
    out: list[Guard] = []
    for g in list(existing) + list(new):
        if g not in out and g.decided() is not True and not _implied(g, out):
            out.append(g)
    return out


def _implied(g: Guard, known: Sequence[Guard]) -> bool:
    """Whether a lower bound `x >= c` follows from a known `x >= c'` with c' >= c."""
    if g.op != ">=" or not isinstance(g.rhs, int):
        return False
    return any(k.op == ">=" and k.lhs == g.lhs and isinstance(k.rhs, int) and k.rhs >= g.rhs for k in known)


def pinned(found: Sequence[Guard]) -> dict[str, tuple[int, Guard]]:
    """Size names the guards fix to one value (`S == 16`, `2*S == 32`): name -> (value, guard).
    A frontend given `dynamic=True` captures such dims static."""
    out: dict[str, tuple[int, Guard]] = {}
    for g in found:
        if g.op != "==":
            continue
        diff = sym.sub(g.lhs, g.rhs)
        free = sym.names(diff)
        if len(free) != 1:
            continue
        name = next(iter(free))
        lin = sym.linear_in(diff, name)
        if lin and isinstance(lin[1], int) and lin[0] and (-lin[1]) % lin[0] == 0:
            out.setdefault(name, ((-lin[1]) // lin[0], g))
    return out


# -- binding and checking at call time ------------------------------------------------------------
def symbolic_args(program) -> bool:
    """Whether `@main` of the program has any symbolic input size."""
    return any(isinstance(d, str) for a in program.main.args for d in getattr(a.type, "shape", ()))


def bind_types(types: Sequence, shapes: Sequence[Sequence[int]], names: Sequence[str] = ()) -> dict[str, int]:
    """Values of the size names from actual input shapes; GuardError when they disagree (two
    inputs giving one name different sizes) or a static size differs."""
    env: dict[str, int] = {}
    pending = []
    for i, (t, shape) in enumerate(zip(types, shapes)):
        dims = getattr(t, "shape", None)
        if dims is None:
            continue
        label = names[i] if i < len(names) else f"input {i}"
        if len(shape) != len(dims):
            raise GuardError(f"{label} has rank {len(shape)}, the program takes rank {len(dims)}")
        for axis, (d, n) in enumerate(zip(dims, shape)):
            n = int(n)
            if isinstance(d, int):
                if d != n:
                    raise GuardError(f"{label} has size {n} in dim {axis}; the program was compiled for {d}")
            elif sym.is_name(d):
                if d in env and env[d] != n:
                    raise GuardError(f"{label} dim {axis} is {n} but size '{d}' is {env[d]} from another "
                                     f"input (the program assumes they are equal)")
                env[d] = n
            else:
                pending.append((label, axis, d, n))
    for _ in range(len(pending) + 1):  # solve dims linear in one unbound name, then check the rest
        progress = False
        for item in list(pending):
            label, axis, d, n = item
            free = sym.names(d) - set(env)
            if len(free) == 1:
                name = free.pop()
                lin = sym.linear_in(sym.substitute(d, env), name)
                if lin and (n - sym.evaluate(lin[1], env)) % lin[0] == 0:
                    env[name] = (n - sym.evaluate(lin[1], env)) // lin[0]
                    progress = True
    for label, axis, d, n in pending:
        if sym.names(d) - set(env):
            raise GuardError(f"{label} dim {axis} has size {d}, which the input sizes do not determine")
        if sym.evaluate(d, env) != n:
            raise GuardError(f"{label} has size {n} in dim {axis}, the program needs {d} = "
                             f"{sym.evaluate(d, env)}")
    return env


def bind(program, shapes: Sequence[Sequence[int]]) -> dict[str, int]:
    """`bind_types` for the inputs of `program`'s `@main`."""
    main = program.main
    return bind_types([a.type for a in main.args], shapes, list(main.arg_names))


def check(program, env: Mapping[str, int]) -> None:
    """Raise GuardError naming every guard of `program` that fails for `env`."""
    failed = [g for g in getattr(program, "guards", ()) if not g.holds(env)]
    if failed:
        values = ", ".join(f"{k}={v}" for k, v in sorted(env.items()))
        raise GuardError(f"the inputs ({values}) break the program's guard(s): "
                         + "; ".join(str(g) for g in failed))


# -- sizes in one op at a binding -----------------------------------------------------------------
def concrete_type(t, env: Mapping[str, int]):
    """`t` with its symbolic dims evaluated (non-tensor types unchanged)."""
    shape = getattr(t, "shape", None)
    if shape is None or all(isinstance(d, int) for d in shape):
        return t
    return t.with_shape(tuple(sym.evaluate(d, env) for d in shape))


def concrete_attrs(opdef, attrs: dict, env: Mapping[str, int]) -> dict:
    """`attrs` with the sizes in DIMS/SYM attributes evaluated."""
    from xcomp.ops.registry import AttrKind
    out = attrs
    for k, spec in opdef.attrs.items():
        v = attrs.get(k)
        if spec.kind is AttrKind.DIMS and v is not None and any(isinstance(d, str) for d in v):
            out = dict(out) if out is attrs else out
            out[k] = tuple(sym.evaluate(d, env) for d in v)
        elif spec.kind is AttrKind.SYM and isinstance(v, str):
            out = dict(out) if out is attrs else out
            out[k] = sym.evaluate(v, env)
    return out


def concrete_op(op, env: Mapping[str, int]) -> tuple[dict, list]:
    """(attrs, result types) of `op` with every size evaluated at `env`."""
    return concrete_attrs(op.opdef, op.attrs, env), [concrete_type(r.type, env) for r in op.results]
