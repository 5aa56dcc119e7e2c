"""Decompositions, freezing, fusion planning, kernels per call, memory planning, explain()."""
import numpy as np
import pytest

import xcomp
from progs import Primitives, build, names, run_checked, weight
from xcomp.ir.types import DType
from xcomp.ops.registry import REGISTRY, Trait
from xcomp.ops.structural import FusionKind
from xcomp.passes.decompose import DECOMPOSITIONS
from xcomp.passes.fuse import fusion_groups, kernels_per_call
from xcomp.passes.memory import plan_memory

F32 = DType.F32
CLEAN = ["decompose", "canonicalize", "cse", "dce"]

COMPOSITES = {  # op -> (operand shapes, attrs)
    "softmax": ([(3, 5)], dict(axis=-1)),
    "log_softmax": ([(3, 5)], dict(axis=0)),
    "logsumexp": ([(3, 5)], dict(axes=(1,))),
    "var": ([(3, 5)], dict(axes=(1,), keepdim=True)),
    "layer_norm": ([(3, 5), (5,), (5,)], dict(normalized_ndim=1)),
    "rms_norm": ([(3, 5), (5,)], dict(normalized_ndim=1)),
    "group_norm": ([(2, 4, 3), (4,), (4,)], dict(groups=2)),
    "batch_norm": ([(2, 4, 3), (4,), (4,), (4,), (4,)], {}),
    "gelu": ([(3, 5)], {}),
    "silu": ([(3, 5)], {}),
    "sdpa": ([(2, 4, 6, 8), (2, 4, 7, 8), (2, 4, 7, 8)], dict(is_causal=False)),
}


def test_every_composite_op_has_a_decomposition():
    composite = {n for n, d in REGISTRY.items() if d.has(Trait.COMPOSITE)}
    assert composite <= set(DECOMPOSITIONS), composite - set(DECOMPOSITIONS)


@pytest.mark.parametrize("op", sorted(set(COMPOSITES) - {"batch_norm"}))
def test_decomposition_into_primitives(op):
    shapes, attrs = COMPOSITES[op]
    q = run_checked(build(shapes, lambda b, *xs: b.op(op, *xs, **attrs)), CLEAN, Primitives(), scale=10)
    assert not {"xc." + n for n in names(q)} & set(DECOMPOSITIONS)


def test_batch_norm_decomposition():  # the variance operand must be positive: exp(v)
    p = build([(2, 4, 3), (4,)], lambda b, x, v: b.op("batch_norm", x, v, b.op("exp", v), v, v))
    q = run_checked(p, CLEAN, Primitives())
    assert "batch_norm" not in names(q)


def test_decomposition_only_where_the_target_lacks_the_op():
    p = build([(3, 5)], lambda b, x: b.op("softmax", x, axis=-1))
    q, _ = xcomp.optimize(p, target="reference")
    assert "softmax" in names(q)


@pytest.mark.parametrize("op", ["softmax", "log_softmax", "logsumexp", "var", "layer_norm", "rms_norm"])
def test_decomposed_row_ops_become_one_reduction_group(op):
    shapes, attrs = COMPOSITES[op]
    q = run_checked(build(shapes, lambda b, *xs: b.op(op, *xs, **attrs)), CLEAN + ["fuse"], Primitives())
    groups = fusion_groups(q)
    assert [g.kind for g in groups] == [FusionKind.REDUCTION] and kernels_per_call(q) == 1


def test_elementwise_chain_with_broadcasting_is_one_group():
    def f(b, x, y, z):
        h = b.op("tanh", b.op("add", b.op("mul", x, y), z))
        return b.op("sigmoid", b.op("sub", h, b.op("constant", value=0.5, dtype=F32)))
    q = run_checked(build([(4, 8), (8,), (4, 1)], f), ["fuse"])
    assert [str(g) for g in fusion_groups(q)] == ["elementwise[mul, add, tanh, sub, sigmoid]"]
    fused = q.main.body.ops[0]
    assert len(fused.operands) == 3 and fused.regions[0].block.args[1].type == fused.operands[1].type
    assert kernels_per_call(q) == 1


def test_matmul_epilogue_bias_activation_residual():
    def f(b, x, w, bias):
        y = b.op("add", b.op("matmul", x, w), bias)
        return b.op("add", b.op("relu", y), x)
    q = run_checked(build([(4, 8), (8, 8), (8,)], f), ["fuse"])
    assert [str(g) for g in fusion_groups(q)] == ["matmul_epilogue[matmul, add, relu, add]"]


def test_residual_add_behind_a_reshape_joins_the_matmul_epilogue():
    """(B*T, C) matmul output viewed as (B, T, C) plus a (B, T, C) residual: canonicalize moves the
    add into the matmul's iteration space (the residual's reshape is a free view), so it fuses."""
    def f(b, x, w, bias, residual):
        y = b.op("reshape", b.op("add", b.op("matmul", x, w), bias), shape=(2, 3, 8))
        z = b.op("add", y, b.op("reshape", x, shape=(2, 3, 8)))  # both sides reshaped from (6, 8)
        return b.op("add", z, residual)
    q = run_checked(build([(6, 8), (8, 8), (8,), (2, 3, 8)], f), ["canonicalize", "cse", "dce", "fuse"])
    assert [str(g) for g in fusion_groups(q)] == ["matmul_epilogue[matmul, add, add, add]"]
    assert kernels_per_call(q) == 1


def test_reshape_sinking_leaves_broadcast_peers_alone():
    def f(b, x, w, bias3):
        return b.op("add", b.op("reshape", b.op("matmul", x, w), shape=(2, 3, 8)), bias3)
    q = run_checked(build([(6, 8), (8, 8), (3, 8)], f), ["canonicalize"])
    assert names(q) == ["matmul", "reshape", "add"]  # a (3, 8) bias broadcasts: no rewrite


def test_elementwise_prologue_of_a_matmul_is_not_fused_into_it():
    q = run_checked(build([(4, 8), (8, 8)], lambda b, x, w: b.op("matmul", b.op("exp", x), w)), ["fuse"])
    assert fusion_groups(q) == [] and kernels_per_call(q) == 2


def test_groups_never_form_a_cycle_through_an_unfused_op():
    # exp -> transpose (a view, not fused) -> add(exp, .): fusing exp with add would need the transpose inside
    def f(b, x):
        e = b.op("exp", x)
        return b.op("add", e, b.op("transpose", b.op("sum", e, axes=(1,), keepdim=True), perm=(1, 0)))
    q = run_checked(build([(4, 4)], f), ["fuse"])
    xcomp.verify(q)


def test_buffer_limit_splits_wide_groups():
    n = 40
    def f(b, *xs):
        acc = xs[0]
        for x in xs[1:]:
            acc = b.op("add", acc, x)
        return acc
    q = run_checked(build([(4,)] * n, f), ["fuse"])
    groups = [op for op in q.walk() if op.name == "xc.fused"]
    assert len(groups) >= 2
    assert all(len(g.operands) + len(g.results) <= 31 for g in groups)


def test_fuse_keeps_outputs_used_outside_and_returns():
    def f(b, x):
        e = b.op("exp", x)
        return e, b.op("neg", e)
    q = run_checked(build([(4,)], f), ["fuse"])
    (fused,) = [op for op in q.walk() if op.name == "xc.fused"]
    assert len(fused.results) == 2


def test_kernels_per_call_counts_launches():
    def f(b, x, w):
        y = b.op("reshape", b.op("matmul", x, w), shape=(32,))
        return b.op("exp", y)
    p = build([(4, 8), (8, 8)], f)
    assert kernels_per_call(p) == 2  # the reshape is a view


# -- freezing -----------------------------------------------------------------------------------
def _conv_bn_program():
    rng = np.random.default_rng(0)
    w = {"w": rng.standard_normal((6, 3, 3, 3)).astype(np.float32), "b": rng.standard_normal(6).astype(np.float32),
         "mean": rng.standard_normal(6).astype(np.float32), "var": rng.random(6).astype(np.float32) + 0.5,
         "g": rng.standard_normal(6).astype(np.float32), "beta": rng.standard_normal(6).astype(np.float32)}
    def f(b, x):
        y = b.op("conv", x, weight(b, "w"), weight(b, "b"), padding=(1,))
        return b.op("batch_norm", y, *(weight(b, k) for k in ("mean", "var", "g", "beta")), eps=1e-5)
    return build([(2, 3, 8, 8)], f, weights=w)


def test_freeze_folds_batch_norm_into_conv():
    q = run_checked(_conv_bn_program(), ["freeze", "dce"])
    assert names(q) == ["conv"] and len(q.weights) == 2


def test_freeze_folds_batch_norm_into_linear_and_pretransposes():
    rng = np.random.default_rng(1)
    w = {"w": rng.standard_normal((6, 5)).astype(np.float32), "b": rng.standard_normal(6).astype(np.float32),
         "mean": rng.standard_normal(6).astype(np.float32), "var": rng.random(6).astype(np.float32) + 0.5}
    def f(b, x):
        y = b.op("add", b.op("matmul", x, weight(b, "w"), transpose_b=True), weight(b, "b"))
        return b.op("batch_norm", y, weight(b, "mean"), weight(b, "var"))
    q = run_checked(build([(4, 5)], f, weights=w), ["freeze", "dce"])
    assert names(q) == ["matmul", "add"]
    mm = [o for o in q.walk() if o.name == "xc.matmul"][0]
    assert not mm.attrs["transpose_b"] and mm.operands[1].type.shape == (5, 6)


# -- memory planning --------------------------------------------------------------------------------
def test_memory_plan_reuses_dead_buffers():
    def f(b, x):
        for _ in range(6):
            x = b.op("matmul", x, x)  # not fusible: every result is an intermediate
        return x
    p = build([(8, 8)], f)
    plan = plan_memory(p)
    assert len(plan.intervals) == 5 and len(plan.buffers) == 2
    assert plan.planned_bytes < plan.naive_bytes
    by_buffer = {}
    for iv in plan.intervals:
        for other in by_buffer.get(plan.buffer_of[iv.value], []):
            assert other.end < iv.start or iv.end < other.start  # no two live values share a buffer
        by_buffer.setdefault(plan.buffer_of[iv.value], []).append(iv)


def test_memory_plan_keeps_views_alive_with_their_source():
    def f(b, x):
        y = b.op("exp", x)
        t = b.op("transpose", y, perm=(1, 0))
        z = b.op("neg", x)
        return b.op("add", t, z)
    plan = plan_memory(build([(4, 4)], f))
    exp_iv = [iv for iv in plan.intervals if iv.value.op.name == "xc.exp"][0]
    assert exp_iv.end == 3  # read through the transpose by the add at step 3


# -- user-facing -------------------------------------------------------------------------------------
def test_explain_and_check_on_a_model():
    torch = pytest.importorskip("torch")
    from xcomp.zoo import MODELS
    model, inputs = MODELS["mlp"]()
    fast = xcomp.compile(model, target="reference", check=True)
    with torch.no_grad():
        fast(*inputs)
    report = fast.explain()
    text = str(report)
    assert "fused groups" in text and "kernels per call" in text and "matmul_epilogue[matmul, add, gelu]" in text
    assert "matmul_epilogue[matmul, add, gelu]" in report.groups and report.kernels_per_call == 3
    assert "mlx" in text  # every target is summarized
