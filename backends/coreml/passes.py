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
- `where(amax(s) == -inf, 0, softmax(s))` -> `softmax(s)` when no row of s can be all -inf while
  the inputs are finite: scores from a matmul (scaled by finite constants, reshaped, transposed),
  masked by a constant that keeps at least one position of every row. Rows of -inf then come only
  from infinite inputs or overflow, where torch gives 0 and this gives NaN (coremltools' own
  converter drops the guard always).
"""
from __future__ import annotations

import math

import numpy as np

from xcomp.ir import symbolic as sym
from xcomp.ir.core import Program
from xcomp.ir.types import TensorType
from xcomp.ops.registry import Trait
from xcomp.passes.manager import Pass, register_pass
from xcomp.rewrite import Pat, PatternSet, apply_patterns, constant_value, splat_value

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


_FINITE_THROUGH = ("xc.reshape", "xc.transpose", "xc.slice", "xc.cast")


def _finite_const(v) -> bool:
    c = constant_value(v)
    return c is not None and c.dtype.kind == "f" and bool(np.all(np.isfinite(c)))


def _finite_scores(v, depth: int = 0) -> bool:
    """Every element of `v` is finite when the program's inputs are (overflow aside): a matmul,
    through reshapes/transposes/slices and arithmetic with finite constants."""
    op = v.op
    if op is None or depth > 16:
        return False
    if op.name == "xc.matmul":
        return True
    if op.name in _FINITE_THROUGH:
        return _finite_scores(op.operands[0], depth + 1)
    if op.name in ("xc.mul", "xc.add", "xc.sub", "xc.div"):
        a, b = op.operands
        if _finite_const(b) and (op.name != "xc.div" or bool(np.all(constant_value(b) != 0))):
            return _finite_scores(a, depth + 1)
        return op.name != "xc.div" and _finite_const(a) and _finite_scores(b, depth + 1)
    return False


def _rows_keep_one(v, axis: int) -> bool:
    """Every row of `v` along `axis` holds a finite value when the inputs are finite: finite
    scores, or finite scores masked by a constant (`where(keep, s, -inf)`, `s + mask`) that keeps
    at least one position of each row."""
    if _finite_scores(v):
        return True
    op, shape = v.op, v.type.shape
    if op is None or not all(isinstance(d, int) for d in shape):
        return False
    if op.name == "xc.where":
        keep, s, fill = op.operands
        k = constant_value(keep)
        return (k is not None and splat_value(fill) == -math.inf and _finite_scores(s)
                and bool(np.all(np.any(np.broadcast_to(k.astype(bool), shape), axis=axis))))
    if op.name == "xc.add":
        for s, mask in (op.operands, op.operands[::-1]):
            m = constant_value(mask)
            if m is not None and m.dtype.kind == "f" and _finite_scores(s) and not np.any(np.isnan(m)) \
                    and not np.any(m == math.inf):
                return bool(np.all(np.any(np.isfinite(np.broadcast_to(m, shape)), axis=axis)))
    return False


def _strip_reshapes(v):
    while v.op is not None and v.op.name == "xc.reshape":
        v = v.op.operands[0]
    return v


def _unguarded_softmax(m):
    """where(amax(a) == -inf, 0, softmax(s)) -> softmax(s) when a is s (or the same reshape of one
    value) and no row of s can be all -inf (`_rows_keep_one`)."""
    s, a, top, zero = m.s, m.a, m.top, m.zero
    filled = zero.op is not None and zero.op.name == "xc.full" and zero.op.attrs["value"] == 0   # symbolic sizes
    if not (filled or splat_value(zero) == 0) or splat_value(m.ninf) != -math.inf or not _static(s, a):
        return None
    if a is not s and (a.type.shape != s.type.shape or _strip_reshapes(a) is not _strip_reshapes(s)):
        return None
    axis = m.sm.op.attrs["axis"] % s.type.rank
    if tuple(a % s.type.rank for a in top.op.attrs["axes"]) != (axis,):
        return None
    return m.sm if _rows_keep_one(s, axis) else None


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
    (Pat("where", Pat("eq", Pat("amax", Pat.var("a"), name="top"), Pat.var("ninf")), Pat.var("zero"),
         Pat("softmax", Pat.var("s"), name="sm")), _unguarded_softmax),
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


# -- iOS 18: attention as one `scaled_dot_product_attention` -----------------------------------------
def _swaps_last_two(op) -> bool:
    perm, n = list(op.attrs["perm"]), len(op.attrs["perm"])
    return n >= 2 and perm == list(range(n - 2)) + [n - 1, n - 2]


def _scores(s, builder=None):
    """(q, k, scale) of scores `s` = (q @ k^T) [* c]; None for anything else. With a `builder`,
    a k^T not marked `transpose_b` is transposed back (MIL merges the two transposes)."""
    scale, op = 1.0, s.op
    if op is not None and op.name == "xc.mul":
        a, b = op.operands
        c, t = (splat_value(b), a) if splat_value(b) is not None else (splat_value(a), b)
        if c is None or not math.isfinite(c) or c == 0:
            return None
        scale, op = float(c), t.op
    if op is None or op.name != "xc.matmul" or op.attrs["transpose_a"]:
        return None
    q, kt = op.operands
    if op.attrs["transpose_b"]:
        return q, kt, scale
    if kt.op is not None and kt.op.name == "xc.transpose" and _swaps_last_two(kt.op):
        return q, kt.op.operands[0], scale
    if builder is None or not _static(kt) or kt.type.rank < 2:
        return q, kt, scale   # a k^T (callers that build nothing only test the form)
    n = kt.type.rank
    return q, builder.op("transpose", kt, perm=tuple(range(n - 2)) + (n - 1, n - 2)), scale


class _Dropped:
    """A mask of the positions to drop (masked_fill's), turned into sdpa's keep mask on demand."""

    def __init__(self, cond):
        self.cond, self.type = cond, cond.type

    def keep(self, b):
        c, op = constant_value(self.cond), self.cond.op
        if c is not None:
            return b.op("dense", value=~c.astype(bool), dtype=self.type.dtype)
        if op is not None and (op.name == "xc.logical_not" or op.name == "xc.bitwise_not" and self.type.dtype.is_bool):
            return op.operands[0]   # masked_fill(~keep, -inf)
        return b.op("logical_not", self.cond)


def _mask(m):
    """(scores, mask for sdpa or None) of softmax's operand: `where(keep, s, -inf)`,
    `where(drop, -inf, s)` (masked_fill), `s + float mask`, or `s`."""
    s, op = m.s, m.s.op
    if op is not None and op.name == "xc.where":
        cond, a, b = op.operands
        if splat_value(b) == -math.inf and _static(a) and a.type == s.type:
            return a, cond
        if splat_value(a) == -math.inf and _static(b) and b.type == s.type:
            return b, _Dropped(cond)
    if op is not None and op.name == "xc.add":
        for a, c in (op.operands, op.operands[::-1]):
            if _scores(a) is not None and a.type == s.type and c.type.dtype == s.type.dtype:
                return a, c
    return s, None


def _to_sdpa(m):
    """softmax(scores [masked], last axis) @ v -> xc.sdpa(q, k, v[, mask]) when the shapes fit
    MIL's op (rank >= 3, one batch shape for q, k and v, a mask over every key)."""
    if m.op.attrs["transpose_a"] or m.op.attrs["transpose_b"] or m.p.op.attrs["axis"] % m.s.type.rank != m.s.type.rank - 1:
        return None
    s, mask = _mask(m)
    found = _scores(s)
    if found is None:
        return None
    q, kt, _ = found
    v = m.v
    if not _static(q, kt, v) or q.type.rank < 3 or not (q.type.rank == kt.type.rank == v.type.rank) \
            or not (q.type.shape[:-2] == kt.type.shape[:-2] == v.type.shape[:-2]) \
            or not (q.type.dtype == kt.type.dtype == v.type.dtype) or not q.type.dtype.is_float:
        return None
    if mask is not None and (mask.type.rank == 0 or mask.type.shape[-1] != v.type.shape[-2]):
        return None
    q, k, scale = _scores(s, m.b)
    if isinstance(mask, _Dropped):
        mask = mask.keep(m.b)
    return m.b.op("sdpa", q, k, v, *([mask] if mask is not None else []), scale=scale)


ATTENTION = PatternSet([
    (Pat("matmul", Pat("softmax", Pat.var("s"), name="p"), Pat.var("v")), _to_sdpa),
])


def raise_attention(program: Program) -> Program:
    """A copy of `program` whose attention patterns are `xc.sdpa` ops (for MIL's iOS 18 op)."""
    from xcomp.api import clone
    out = clone(program)
    if apply_patterns(out, ATTENTION):
        from xcomp.passes.dce import DeadCodeElimination
        DeadCodeElimination().run(out)
    return out
