"""Freezing for inference: weights are constants, so work on weights alone happens at compile time.

Patterns, in order:
- batch norm after a convolution (`batch_norm(conv(x, W[, b]), mean, var[, g[, beta]])`) or after
  a linear layer (`matmul(x, W, transpose_b)` with an optional bias add, 2-D) folds into the conv's
  or linear's weight and bias: W' = W * s, b' = (b - mean) * s + beta with s = g / sqrt(var + eps).
  The pattern writes that arithmetic as ops over the weights; the next rule evaluates it;
- pre-layout: `matmul(x, W, transpose_b=True)` with a 2-D weight becomes `matmul(x, W^T)` over a
  pre-transposed weight, unless the target says `weight_layout = "nk"` (it prefers torch's layout);
- weight folding: a pure op whose operands are all weights or constants is evaluated with its
  reference and becomes a new weight (when the result is no larger than its largest input, or at
  most `FOLD_LIMIT` elements), so the program never grows. Weights left unused are dropped by DCE.
"""
from __future__ import annotations

import numpy as np

from xcomp.interpreter import weight_value
from xcomp.ir.core import Program, Value
from xcomp.ir.types import DType
from xcomp.passes.fold import evaluate, foldable_op
from xcomp.passes.manager import Pass, register_pass
from xcomp.rewrite import CONSTANT_OPS, Pat, PatternSet, apply_patterns, constant_value

PARAM = ("xc.weight",) + CONSTANT_OPS


def _param(v: Value) -> bool:
    return v.op is not None and v.op.name in PARAM


def single_use(v: Value) -> bool:
    """True when exactly one operand slot in `v`'s block (regions included) reads `v`."""
    owner = v.op.parent if v.op is not None else v.owner
    return sum(o.operands.count(v) for top in owner.ops for o in top.walk()) == 1


def _bn_scale_shift(b, bn):
    """(s, t) with batch_norm(y) == y * s + t per channel, as ops over the bn's parameters."""
    _, mean, var, *params = bn.operands
    dt = var.type.dtype
    s = b.op("rsqrt", b.op("add", var, b.op("constant", value=float(bn.attrs["eps"]), dtype=dt)))
    if params:
        s = b.op("mul", s, params[0])
    t = b.op("neg", b.op("mul", mean, s))
    if len(params) > 1:
        t = b.op("add", t, params[1])
    return s, t


def _conv_bn(m):
    conv = m.y.op
    if not all(_param(v) for v in m.op.operands[1:]) or not single_use(m.y) or conv.attrs["transposed"]:
        return None
    b, (x, w, *bias) = m.b, conv.operands
    s, t = _bn_scale_shift(b, m.op)
    w2 = b.op("mul", w, b.op("reshape", s, shape=(-1,) + (1,) * (w.type.rank - 1)))
    bias2 = b.op("add", b.op("mul", bias[0], s), t) if bias else t
    return b.create("conv", [x, w2, bias2], conv.attrs).result


def _linear_bn(m):
    mm = m.mm.op
    if (m.op.results[0].type.rank != 2 or not mm.attrs["transpose_b"] or mm.attrs["transpose_a"]
            or not all(_param(v) for v in m.op.operands[1:]) or not single_use(m.y)):
        return None
    bias = [v for v in m.y.op.operands if v is not m.mm] if m.y is not m.mm else []
    if bias and (not _param(bias[0]) or not single_use(m.mm) or bias[0].type.rank != 1):
        return None
    b, (x, w) = m.b, mm.operands
    s, t = _bn_scale_shift(b, m.op)
    w2 = b.op("mul", w, b.op("reshape", s, shape=(-1, 1)))
    shift = b.op("add", b.op("mul", bias[0], s), t) if bias else t
    return b.op("add", b.op("matmul", x, w2, transpose_b=True), shift)


W = Pat("weight", name="w")
X = Pat.var("x")
def _bn_rules() -> PatternSet:
    """batch_norm whose first operand is a conv, a linear, or a linear plus bias (variadic bn)."""
    def with_first(first: Pat, fn):
        def rewrite(m):
            for binds in first.match(m.op.operands[0], {}):
                m.binds.update(binds)
                return fn(m)
            return None
        return (Pat("batch_norm", where=lambda v: any(True for _ in first.match(v.op.operands[0], {}))),
                rewrite)
    mm = Pat("matmul", X, W, name="mm")
    return PatternSet([
        with_first(Pat("conv", name="y"), _conv_bn),
        with_first(Pat("add", mm, Pat(PARAM), name="y"), _linear_bn),
        with_first(Pat("matmul", X, W, name="mm"), _linear_bn_plain),
    ])


def _linear_bn_plain(m):
    m.binds["y"] = m.mm
    return _linear_bn(m)


def _pretranspose(m):
    w = m.w
    if w.type.rank != 2:
        return None
    wt = m.b.op("transpose", w, perm=(1, 0))
    return m.b.op("matmul", m.x, wt, transpose_a=m.op.attrs["transpose_a"])


PRELAYOUT = PatternSet([
    (Pat("matmul", X, W, attrs={"transpose_b": True}), _pretranspose),
])


def _weight_folding(program: Program) -> PatternSet:
    def foldable(v: Value) -> bool:
        op = v.op
        return (foldable_op(op) and len(op.results) == 1
                and any(o.op is not None and o.op.name == "xc.weight" for o in op.operands))

    def value(v: Value) -> np.ndarray:
        if v.op.name == "xc.weight":
            return weight_value(program, v.op.attrs["name"], v.type)
        return constant_value(v)

    def fold(m):
        op = m.op
        t = op.results[0].type
        out = evaluate(op, [value(v) for v in op.operands])
        if out is None:
            return None
        base = next(o.op.attrs["name"] for o in op.operands if o.op.name == "xc.weight")
        name = _fresh(program, f"{base}.{op.name.removeprefix('xc.')}")
        program.weights[name] = out.astype(np.float32 if t.dtype is DType.BF16 else t.dtype.np)
        if t.dtype is DType.BF16:
            program.weight_dtypes[name] = DType.BF16
        return m.b.create("weight", [], {"name": name}, result_types=[t]).result

    return PatternSet([(Pat(where=foldable, each=Pat(PARAM)), fold)])


def _fresh(program: Program, name: str) -> str:
    out, i = name, 1
    while out in program.weights:
        out, i = f"{name}{i}", i + 1
    return out


@register_pass
class Freeze(Pass):
    """Fold batch norms into convs/linears, pre-lay-out weights, and evaluate weight-only work."""

    name = "freeze"

    def run(self, program: Program) -> bool:
        folding = _weight_folding(program)
        changed = apply_patterns(program, _bn_rules())
        changed |= apply_patterns(program, folding)
        if getattr(self.target, "weight_layout", "kn") == "kn":
            changed |= apply_patterns(program, PRELAYOUT)
            changed |= apply_patterns(program, folding)
        if changed:
            from xcomp.passes.dce import DeadCodeElimination
            DeadCodeElimination().run(program)
        return changed


