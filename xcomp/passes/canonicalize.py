"""Canonicalization: algebraic identities, view chains, no-op ops, broadcast folding, scalar hoisting.

Every rule is a pattern (see `xcomp.rewrite`); the driver refuses a replacement whose type differs
from the op it replaces, so `x * 1` with a broadcasting `1` stays as it is.

- identities: `x*1`, `x/1`, `x+0`, `x-0`, `x**1`, `x*-1 -> -x`, `x-x -> 0` (integers only: for
  floats `inf-inf` is nan), `--x`, `!!x`, `~~x`, `x - -y -> x+y`, `relu(relu x)`, `abs(abs x)`
- view chains: transpose of transpose (composed, dropped when the identity), reshape of reshape,
  squeeze/unsqueeze into reshape chains
- no-ops: casts to the same dtype, reshape/broadcast/expand to the same shape, full slices,
  identity permutations
- broadcast folding: an elementwise op reads `broadcast_to(y)` as `y` when its result is unchanged;
  so does a matmul whose operand is broadcast along batch axes only (matmul broadcasts batch axes
  itself: `x @ expand(W)` from a linear on a 3-d input becomes one `x @ W`, no weight copies)
- view sinking: `ew(reshape(x), scalars)` becomes `reshape(ew(x, scalars))`
- regions (`passes/regions.py`): `xc.if` on a constant condition inlined, `xc.if` that only yields
  becomes `xc.where`
- scalar hoisting: a splat constant (every element equal) feeding an elementwise op becomes a 0-d
  constant that backends pass as an immediate; constants move to the right of commutative ops
"""
from __future__ import annotations

import numpy as np

from xcomp.ir.core import Program, Value
from xcomp.ir.types import TensorType
from xcomp.ops import registry
from xcomp.ops.registry import Trait
from xcomp.passes.manager import Pass, register_pass
from xcomp.rewrite import CONSTANT_OPS, Pat, PatternSet, apply_patterns, constant_value, splat_value

X, Y = Pat.var("x"), Pat.var("y")


def _tensor(v: Value) -> bool:
    return isinstance(v.type, TensorType)


def _is_int(v: Value) -> bool:
    return _tensor(v) and (v.type.dtype.is_int or v.type.dtype.is_bool)


def _is_const(v: Value) -> bool:
    return v.op is not None and v.op.name in CONSTANT_OPS


def full_like(b, t: TensorType, value) -> Value | None:
    """A tensor of type `t` filled with `value`: a 0-d constant, broadcast when `t` has a shape."""
    c = b.op("constant", value=np.asarray(value, t.dtype.np).item(), dtype=t.dtype)
    if t.shape == ():
        return c
    if "xc.broadcast_to" not in registry.REGISTRY or not t.is_static:
        return None
    return b.op("broadcast_to", c, shape=tuple(t.shape))


def _same_type_as_input(m) -> Value | None:
    return m.x if m.x.type == m.op.results[0].type else None


def _rebuild(m, operands) -> Value:
    return m.b.create(m.op.name, operands, m.op.attrs).result


# -- elementwise identities ----------------------------------------------------------------------
IDENTITIES = PatternSet([
    (Pat("mul", X, Pat.splat(1)), lambda m: m.x),
    (Pat("mul", X, Pat.splat(1.0)), lambda m: m.x),
    (Pat("div", X, Pat.splat(1.0)), lambda m: m.x),
    (Pat("add", X, Pat.splat(0)), lambda m: m.x),
    (Pat("add", X, Pat.splat(0.0)), lambda m: m.x),
    (Pat("sub", X, Pat.splat(0)), lambda m: m.x),
    (Pat("sub", X, Pat.splat(0.0)), lambda m: m.x),
    (Pat("pow", X, Pat.splat(1)), lambda m: m.x),
    (Pat("pow", X, Pat.splat(1.0)), lambda m: m.x),
    (Pat("mul", X, Pat.splat(-1.0)), lambda m: m.b.op("neg", m.x)),
    (Pat("sub", X, X, where=_is_int), lambda m: full_like(m.b, m.op.results[0].type, 0)),
    (Pat("sub", X, Pat("neg", Y)), lambda m: m.b.op("add", m.x, m.y)),
    (Pat("add", X, Pat("neg", Y)), lambda m: m.b.op("sub", m.x, m.y)),
    (Pat("neg", Pat("neg", X)), lambda m: m.x),
    (Pat("logical_not", Pat("logical_not", X)), lambda m: m.x),
    (Pat("bitwise_not", Pat("bitwise_not", X)), lambda m: m.x),
    (Pat("relu", Pat("relu", name="x")), lambda m: m.x),
    (Pat("abs", Pat("abs", name="x")), lambda m: m.x),
    (Pat("abs", Pat("neg", X)), lambda m: m.b.op("abs", m.x)),
    (Pat("cast", X), _same_type_as_input),
])


# -- views ---------------------------------------------------------------------------------------
def _compose_transpose(m) -> Value:
    inner, outer = m.t.op.attrs["perm"], m.op.attrs["perm"]
    perm = tuple(inner[p] for p in outer)
    if perm == tuple(range(len(perm))):
        return m.x
    return m.b.op("transpose", m.x, perm=perm)


def _identity_perm(m) -> Value | None:
    perm = m.op.attrs["perm"]
    return m.x if tuple(perm) == tuple(range(len(perm))) else None


def _reshape_chain(m) -> Value:
    shape = m.op.results[0].type.shape
    if m.x.type.shape == shape:
        return m.x
    if not all(isinstance(d, int) for d in shape):
        return None
    return m.b.op("reshape", m.x, shape=tuple(shape))


def _full_slice(m) -> Value | None:
    return m.x if m.x.type == m.op.results[0].type and m.op.attrs.get("step", 1) == 1 else None


VIEW_OPS = ("reshape", "squeeze", "unsqueeze", "flatten", "view")
VIEWS = PatternSet([
    (Pat("transpose", Pat("transpose", X, name="t")), _compose_transpose),
    (Pat("transpose", X), _identity_perm),
    (Pat(VIEW_OPS, X), _same_type_as_input),
    (Pat("reshape", Pat(VIEW_OPS, X)), _reshape_chain),
    (Pat(("broadcast_to", "expand"), X), _same_type_as_input),
    (Pat("slice", X), _full_slice),
    (Pat("contiguous", X), _same_type_as_input),
])


# -- broadcast folding and scalar hoisting -------------------------------------------------------
def _unbroadcast(v: Value) -> Value:
    """The source of `v` when it is a broadcast (`broadcast_to`/`expand` of a tensor), else `v`."""
    op = v.op
    if op is not None and op.name in ("xc.broadcast_to", "xc.expand") and _tensor(op.operands[0]):
        return op.operands[0]
    return v


def _hoistable(v: Value) -> Value | None:
    """What an elementwise op can read instead of `v`: a broadcast's source, or a 0-d splat."""
    if _unbroadcast(v) is not v:
        return _unbroadcast(v)
    op = v.op
    if op is not None and op.name == "xc.dense" and np.asarray(op.attrs["value"]).ndim > 0 \
            and splat_value(v) is not None:
        return "splat"
    return None


def _fold_broadcasts(m) -> Value | None:
    operands, changed = [], False
    for v in m.op.operands:
        h = _hoistable(v)
        if h == "splat":
            h = m.b.op("constant", value=splat_value(v), dtype=v.type.dtype)
        if h is not None and _tensor(h):
            operands.append(h)
            changed = True
        else:
            operands.append(v)
    if not changed:
        return None
    try:
        return _rebuild(m, operands)
    except TypeError:
        return None


def _any_hoistable(v: Value) -> bool:
    return any(_hoistable(o) is not None for o in v.op.operands)


def _constant_left(v: Value) -> bool:
    a, b = v.op.operands
    return _is_const(a) and not _is_const(b)


def _reads_broadcast(v: Value) -> bool:
    return any(_unbroadcast(o) is not o for o in v.op.operands)


def _fold_matmul_broadcasts(m) -> Value | None:
    """`matmul` on broadcast sources; kept only when the result type is unchanged, which holds
    exactly when nothing but batch axes was broadcast (the driver refuses other types)."""
    try:
        return _rebuild(m, [_unbroadcast(v) for v in m.op.operands])
    except TypeError:   # a broadcast of a matrix axis: the sources do not multiply
        return None


BROADCASTS = PatternSet([
    (Pat(Trait.ELEMENTWISE, where=_any_hoistable), _fold_broadcasts),
    (Pat("matmul", where=_reads_broadcast), _fold_matmul_broadcasts),
    (Pat(Trait.COMMUTATIVE, where=lambda v: len(v.op.operands) == 2 and _constant_left(v)),
     lambda m: _rebuild(m, list(reversed(m.op.operands)))),
])

def _reshaped_operand(v: Value) -> bool:
    """An elementwise op reading one reshape of a tensor, with every other operand 0-d."""
    ops = v.op.operands
    shaped = [o for o in ops if _tensor(o) and o.type.rank > 0]
    return (len(shaped) == 1 and shaped[0].op is not None and shaped[0].op.name == "xc.reshape"
            and all(_tensor(o) for o in ops) and len(v.op.results) == 1)


def _sink_reshape(m) -> Value | None:
    """ew(reshape(x), scalars) -> reshape(ew(x, scalars)): views move after elementwise work, so
    elementwise chains stay in one iteration space with the matmul or reduction before them."""
    r = next(o for o in m.op.operands if _tensor(o) and o.type.rank > 0)
    src = r.op.operands[0]
    inner = m.b.create(m.op.name, [src if o is r else o for o in m.op.operands], m.op.attrs).result
    return m.b.op("reshape", inner, shape=tuple(m.op.results[0].type.shape))


def _expanding_views(v: Value) -> list[Value]:
    """Operands that are rank-raising reshapes (e.g. a matmul's (B*T, C) viewed as (B, T, C))."""
    return [o for o in v.op.operands if o.type.rank > 0 and o.op is not None and o.op.name == "xc.reshape"
            and o.op.operands[0].type.rank < o.type.rank]


def _expanding_reshape_with_peers(v: Value) -> bool:
    """An elementwise op over rank-raising reshapes of one source shape, tensors of exactly the
    result's shape, and 0-d scalars."""
    ops, out = v.op.operands, v.op.results[0].type
    if len(v.op.results) != 1 or not all(_tensor(o) for o in ops) or not out.is_static:
        return False
    views = _expanding_views(v)
    if not views or len({o.op.operands[0].type.shape for o in views}) != 1:
        return False
    return all(o.type.rank == 0 or o.type.shape == out.shape for o in ops)


def _sink_expanding_reshape(m) -> Value | None:
    """ew(reshape(x), y) -> reshape(ew(x, reshape(y))): the elementwise work moves into x's
    (lower-rank) iteration space, so it fuses with the matmul or reduction that produced x; the
    peers' reshapes are free views of contiguous data."""
    views = _expanding_views(m.op.results[0])
    shape = tuple(views[0].op.operands[0].type.shape)

    def lowered(o):
        if o in views:
            return o.op.operands[0]
        return o if o.type.rank == 0 else m.b.op("reshape", o, shape=shape)
    inner = m.b.create(m.op.name, [lowered(o) for o in m.op.operands], m.op.attrs).result
    return m.b.op("reshape", inner, shape=tuple(m.op.results[0].type.shape))


SINK = PatternSet([(Pat(Trait.ELEMENTWISE, where=_reshaped_operand), _sink_reshape),
                   (Pat(Trait.ELEMENTWISE, where=_expanding_reshape_with_peers), _sink_expanding_reshape)])

CANONICAL = IDENTITIES + VIEWS + BROADCASTS + SINK


@register_pass
class Canonicalize(Pass):
    """Rewrite to canonical form with the `CANONICAL` patterns."""

    name = "canonicalize"

    def run(self, program: Program) -> bool:
        from xcomp.passes.regions import simplify_regions  # xc.if with a constant condition, or only yields
        return simplify_regions(program) | apply_patterns(program, CANONICAL)


__all__ = ["CANONICAL", "Canonicalize", "full_like", "constant_value"]
