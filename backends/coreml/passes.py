"""`coreml_lift_reshapes`: the coreml pipeline's last pass. Reshapes move below the ops that follow
them, so the flatten/unflatten pairs around matmuls that torch's decompositions and the shared
canonicalization produce (`reshape(x, [M, K]) @ W + b` then `reshape` back) cancel: MIL's `linear`,
`matmul`, elementwise ops and `layer_norm` take N-d inputs, and every reshape is one more MIL op.

Rules (each moves one reshape down one op; types are re-inferred, so a rule that would change a
result's type is refused by the driver):
- `reshape(a) @ reshape(b)` merging only batch dims -> `reshape(a @ b)`;
- `matmul(reshape(x), W)` with a 2-d W and x's last dim kept -> `reshape(matmul(x, W))` (when x's
  trailing dims merge into the contracted dim, x is first reshaped to its leading dims + that dim);
- `f(reshape(x), reshape(y))` for an elementwise f and x, y of one shape -> `reshape(f(x, y))`;
- `f(reshape(x), c)` (either order) where c is 0-d or spans only the kept last dim -> `reshape(f(x, c))`;
- `f(reshape(x))` for a unary elementwise f -> `reshape(f(x))`;
- `layer_norm(reshape(x), ...)` over the kept last dim -> `reshape(layer_norm(x, ...))`;
- `reshape(reshape(x))` -> `reshape(x)`, and a reshape to x's own shape -> x;
- `not(any(not(s == -inf)))` (torch's fully-masked-row guard of softmax) -> `amax(s) == -inf`;
- `logical_and(x, full(true))` -> x (the causal mask of a symbolic-length program).
"""
from __future__ import annotations

import math

from xcomp.ir import symbolic as sym
from xcomp.ir.core import Program
from xcomp.ir.types import TensorType
from xcomp.ops.registry import Trait
from xcomp.passes.manager import Pass, register_pass
from xcomp.rewrite import Pat, PatternSet, apply_patterns, splat_value

X, Y, C, W = Pat.var("x"), Pat.var("y"), Pat.var("c"), Pat.var("w")
RX, RY = Pat("reshape", X, name="rx"), Pat("reshape", Y, name="ry")


def _static(*vals) -> bool:
    """Tensors of known rank: static sizes or symbolic ones (canonical size expressions compare
    equal exactly when the sizes are equal, so the rules hold for programs with symbolic sizes)."""
    return all(isinstance(v.type, TensorType) for v in vals)


def _keeps_last(m) -> bool:
    x, r = m.x.type, m.rx.type
    return _static(m.x, m.rx) and x.rank >= 1 and r.rank >= 1 and x.shape[-1] == r.shape[-1]


def _name(op) -> str:
    return op.name.split(".", 1)[1]


def _back(m, value):
    return m.b.op("reshape", value, shape=tuple(m.op.results[0].type.shape))


def _matmul(m):
    """reshape(x, [M, K]) @ W -> reshape(x', [M, K]) @ W with x' = x's leading dims and K: when
    x's trailing dims merge into K (attention heads), x' = reshape(x, lead + [K]) keeps the batch
    dims, so the reshape can keep moving down."""
    if m.op.attrs["transpose_a"] or m.w.type.rank != 2 or not _static(m.x, m.rx) or m.rx.type.rank != 2:
        return None
    x, (rows, k) = m.x, m.rx.type.shape
    if x.type.rank < 3:
        return None
    if x.type.shape[-1] != k:
        lead = next((x.type.shape[:i] for i in range(x.type.rank - 1, 1, -1)
                     if sym.product(x.type.shape[i:]) == k), None)
        if lead is None or sym.product(lead) != rows:
            return None
        x = m.b.op("reshape", x, shape=tuple(lead) + (k,))
    return _back(m, m.b.op("matmul", x, m.w, transpose_b=m.op.attrs["transpose_b"]))


def _batched_matmul(m):
    """reshape(a) @ reshape(b) that only merge batch dims (the last two kept) -> reshape(a @ b)."""
    a, b, ra, rb = m.x.type, m.y.type, m.rx.type, m.ry.type
    if m.op.attrs["transpose_a"] or m.op.attrs["transpose_b"] or not _static(m.x, m.y, m.rx, m.ry):
        return None
    if a.rank != b.rank or a.rank < 3 or a.shape[:-2] != b.shape[:-2] or ra.rank < 3 \
            or a.shape[-2:] != ra.shape[-2:] or b.shape[-2:] != rb.shape[-2:]:
        return None
    return _back(m, m.b.op("matmul", m.x, m.y))


def _both(m):
    if not _static(m.x, m.y) or m.x.type.shape != m.y.type.shape or m.rx.type.shape != m.ry.type.shape:
        return None
    return _back(m, m.b.op(_name(m.op), m.x, m.y, **m.op.attrs))


def _last_dim_only(m) -> bool:
    c = m.c.type
    return (isinstance(c, TensorType) and c.is_static and c.rank <= m.x.type.rank
            and all(d == 1 for d in c.shape[:-1]) and _keeps_last(m)
            and (c.rank == 0 or c.shape[-1] in (1, m.x.type.shape[-1])))


def _one_side(first: bool):
    def rule(m):
        if m.c.op is not None and m.c.op.name == "xc.reshape" or not _last_dim_only(m):
            return None
        args = (m.x, m.c) if first else (m.c, m.x)
        return _back(m, m.b.op(_name(m.op), *args, **m.op.attrs))
    return rule


def _unary(m):
    if not _static(m.x, m.rx):
        return None
    return _back(m, m.b.op(_name(m.op), m.x, **m.op.attrs))


def _layer_norm(m):
    if m.op.attrs["normalized_ndim"] != 1 or not _keeps_last(m):
        return None
    return _back(m, m.b.op("layer_norm", m.x, *m.op.operands[1:], **m.op.attrs))


def _reshape_of_reshape(m):
    return m.b.op("reshape", m.x, shape=tuple(m.op.results[0].type.shape))


def _same_shape(m):
    return m.x if _static(m.x) and m.x.type == m.op.results[0].type else None


def _all_minus_inf(m):
    """not(any(not(s == -inf))) over some axes (torch's guard for fully masked softmax rows) ->
    amax(s) == -inf: three MIL ops instead of seven (bool reductions need casts in MIL)."""
    a = m.a
    inner = a.op.operands[0] if a.op is not None and a.op.name == "xc.reshape" else a
    if inner.op is None or inner.op.name != "xc.logical_not":
        return None
    eq = inner.op.operands[0].op
    if eq is None or eq.name != "xc.eq":
        return None
    s, c = eq.operands
    if splat_value(c) != -math.inf:
        s, c = c, s
    if splat_value(c) != -math.inf or not _static(s, a):
        return None
    if s.type.shape != a.type.shape:
        s = m.b.op("reshape", s, shape=tuple(a.type.shape))
    top = m.b.op("amax", s, **m.op.operands[0].op.attrs)
    return m.b.op("eq", top, m.b.op("constant", value=-math.inf, dtype=s.type.dtype))


def _and_all_true(m):
    """logical_and(x, full(true)) -> x when x already has the result's type (torch's causal mask
    `ones(t, t).tril()` over a symbolic t: the `full` would be an `mb.fill` at run time)."""
    for keep, other in ((m.x, m.y), (m.y, m.x)):
        op = other.op
        if op is not None and op.name == "xc.full" and op.attrs["value"] is True and keep.type == m.op.results[0].type:
            return keep
    return None


def _binary(v) -> bool:
    return len(v.op.operands) == 2


def _unary_ew(v) -> bool:
    return len(v.op.operands) == 1


LIFT = PatternSet([
    (Pat("reshape", Pat("reshape", X)), _reshape_of_reshape),
    (Pat("reshape", X), _same_shape),
    (Pat("matmul", RX, RY), _batched_matmul),
    (Pat("matmul", RX, W), _matmul),
    (Pat(Trait.ELEMENTWISE, RX, RY, where=_binary), _both),
    (Pat(Trait.ELEMENTWISE, RX, C, where=_binary), _one_side(True)),
    (Pat(Trait.ELEMENTWISE, C, RX, where=_binary), _one_side(False)),
    (Pat(Trait.ELEMENTWISE, RX, where=_unary_ew), _unary),
    (Pat("layer_norm", RX, each=None), _layer_norm),
    (Pat("logical_not", Pat("any", Pat.var("a"))), _all_minus_inf),
    (Pat("logical_and", X, Y), _and_all_true),
])


@register_pass
class LiftReshapes(Pass):
    """Move reshapes below the ops after them so flatten/unflatten pairs cancel (Core ML)."""

    name = "coreml_lift_reshapes"

    def run(self, program: Program) -> bool:
        changed = apply_patterns(program, LIFT)
        if changed:
            from xcomp.passes.dce import DeadCodeElimination
            DeadCodeElimination().run(program)
        return changed
