"""Pattern driver, pass manager and the cleanup passes: each test checks what a pass removes or
rewrites (structure) and that results are unchanged (numerics)."""
import numpy as np
import pytest

import xcomp
from progs import build, names, run_checked
from xcomp.errors import VerifyError
from xcomp.ir.types import DType
from xcomp.passes import PASSES, Pass, register_pass, run_pipeline
from xcomp.rewrite import Pat, PatternSet, apply_patterns

F32 = DType.F32


def c(b, v, dt=F32):
    return b.op("constant", value=v, dtype=dt)


# -- the driver ------------------------------------------------------------------------------------
def test_commutative_operands_match_either_order():
    p = build([(4,)], lambda b, x: b.op("mul", c(b, 2.0), x))
    seen = []
    rules = PatternSet([(Pat("mul", Pat.var("x"), Pat.splat(2.0)), lambda m: seen.append(m.x) or m.b.op("add", m.x, m.x))])
    assert apply_patterns(p, rules)
    assert seen == [p.main.args[0]] and names(p) == ["add"]


def test_repeated_name_binds_one_value():
    p = build([(4,), (4,)], lambda b, x, y: [b.op("sub", x, y), b.op("sub", x, x)])
    hits = []
    X = Pat.var("x")
    apply_patterns(p, PatternSet([(Pat("sub", X, X), lambda m: hits.append(m.op) and None)]))
    assert len(hits) == 1 and hits[0].operands[0] is hits[0].operands[1]


def test_replacement_of_another_type_is_refused():
    # x * 1 where the 1 broadcasts x up to (3, 4): replacing by x would change the type
    p = build([(4,)], lambda b, x: b.op("mul", x, b.op("dense", value=np.ones((3, 4), np.float32), dtype=F32)))
    assert not apply_patterns(p, PatternSet([(Pat("mul", Pat.var("x"), Pat.const()), lambda m: m.x)]))
    assert names(p) == ["mul"]


# -- the manager -------------------------------------------------------------------------------------
def test_pipeline_reports_each_pass_and_logs(capsys, monkeypatch):
    monkeypatch.setenv("XCOMP_LOGS", "passes,ir")
    p = build([(4,)], lambda b, x: b.op("neg", b.op("neg", x)))
    report = run_pipeline(p, ["canonicalize", "dce"])
    err = capsys.readouterr().err
    assert "pass canonicalize" in err and "pass dce" in err and "IR after dce" in err
    assert [r.name for r in report.records] == ["canonicalize", "dce"]
    assert report.records[0].changed and report.ops_before == 2 and report.ops_after == 0
    assert "1 -> 0" in err  # dce's op-count delta: the inner neg died with the outer one


def test_debug_mode_names_the_pass_that_broke_the_ir():
    @register_pass
    class Breaker(Pass):
        name = "test_breaker"

        def run(self, program):
            program.main.body.ops.pop(0)  # drop the producer of a used value
            return True
    try:
        p = build([(4,)], lambda b, x: b.op("exp", b.op("neg", x)))
        with pytest.raises(VerifyError, match="pass 'test_breaker' broke the IR"):
            run_pipeline(p, ["test_breaker"], debug=True)
    finally:
        del PASSES["test_breaker"]


def test_unknown_pass_is_named():
    with pytest.raises(ValueError, match="nonesuch"):
        run_pipeline(build([(2,)], lambda b, x: x), ["nonesuch"])


def test_optimize_runs_a_target_pipeline_or_an_override():
    p = build([(4,)], lambda b, x: b.op("exp", b.op("add", x, c(b, 0.0))))
    q, report = xcomp.optimize(p, target="reference")
    assert [r.name for r in report.records][-1] == "fuse" and names(q) == ["exp"]
    q2, report2 = xcomp.optimize(p, target="reference", passes=["dce"])
    assert [r.name for r in report2.records] == ["dce"] and names(q2) == ["add", "exp"]
    assert names(p) == ["add", "exp"]  # the input program is left alone


# -- canonicalize --------------------------------------------------------------------------------------
@pytest.mark.parametrize("make", [
    lambda b, x: b.op("mul", x, c(b, 1.0)),
    lambda b, x: b.op("mul", c(b, 1.0), x),
    lambda b, x: b.op("add", x, c(b, 0.0)),
    lambda b, x: b.op("sub", x, c(b, 0.0)),
    lambda b, x: b.op("div", x, c(b, 1.0)),
    lambda b, x: b.op("pow", x, c(b, 1.0)),
    lambda b, x: b.op("neg", b.op("neg", x)),
    lambda b, x: b.op("cast", x, dtype=F32),
    lambda b, x: b.op("transpose", b.op("transpose", x, perm=(1, 0)), perm=(1, 0)),
    lambda b, x: b.op("reshape", b.op("reshape", x, shape=(12,)), shape=(3, 4)),
    lambda b, x: b.op("broadcast_to", x, shape=(3, 4)),
    lambda b, x: b.op("slice", x, axis=0, start=0, end=3),
], ids=["x*1", "1*x", "x+0", "x-0", "x/1", "x**1", "--x", "cast", "transpose2", "reshape2", "bcast", "slice"])
def test_canonicalize_removes_identities(make):
    q = run_checked(build([(3, 4)], make), ["canonicalize", "dce"])
    assert names(q) == []


def test_canonicalize_integer_x_minus_x_but_not_float():
    q = run_checked(build([(3, 4)], lambda b, x: b.op("sub", x, x), dtype=DType.I32), ["canonicalize", "dce"])
    assert "sub" not in names(q)
    q = run_checked(build([(3, 4)], lambda b, x: b.op("sub", x, x)), ["canonicalize", "dce"])
    assert names(q) == ["sub"]  # inf - inf is nan for floats


def test_canonicalize_composes_transposes_and_folds_broadcasts():
    def f(b, x, y):
        t = b.op("transpose", b.op("transpose", x, perm=(1, 2, 0)), perm=(1, 2, 0))
        return b.op("add", t, b.op("broadcast_to", y, shape=(4, 2, 3)))
    q = run_checked(build([(2, 3, 4), (3,)], f), ["canonicalize", "dce"])
    assert names(q) == ["transpose", "add"]
    assert q.main.body.ops[0].attrs["perm"] == (2, 0, 1)


def test_canonicalize_folds_batch_broadcasts_into_matmul():
    # a linear on a 3-d input as torch.export writes it: x @ expand(W^T) -> x @ W^T
    def f(b, x, w):
        return b.op("matmul", x, b.op("broadcast_to", b.op("transpose", w, perm=(1, 0)), shape=(16, 8, 12)))
    q = run_checked(build([(16, 2, 8), (12, 8)], f), ["canonicalize", "dce"])
    assert names(q) == ["transpose", "matmul"]
    mm = [o for o in q.walk() if o.name == "xc.matmul"][0]
    assert mm.operands[1].type.shape == (8, 12) and mm.results[0].type.shape == (16, 2, 12)


@pytest.mark.parametrize("src, shape", [((1, 12), (8, 12)),     # contraction axis broadcast
                                        ((8, 1), (8, 12)),      # column axis broadcast
                                        ((8, 12), (4, 16, 8, 12))])  # batch beyond the other operand's
def test_canonicalize_keeps_matmul_broadcasts_that_matter(src, shape):
    f = lambda b, x, w: b.op("matmul", x, b.op("broadcast_to", w, shape=shape))
    q = run_checked(build([(16, 2, 8), src], f), ["canonicalize", "dce"])
    assert names(q) == ["broadcast_to", "matmul"]


def test_canonicalize_hoists_splat_constants_to_scalars():
    p = build([(3, 4)], lambda b, x: b.op("mul", b.op("dense", value=np.full((3, 4), 2.5, np.float32), dtype=F32), x))
    q = run_checked(p, ["canonicalize", "dce"])
    mul = [o for o in q.walk() if o.name == "xc.mul"][0]
    assert mul.operands[0] is q.main.args[0] and mul.operands[1].type.shape == ()


def test_canonicalize_sinks_reshapes_below_elementwise_ops():
    q = run_checked(build([(3, 4)], lambda b, x: b.op("exp", b.op("reshape", x, shape=(12,)))), ["canonicalize", "dce"])
    assert names(q) == ["exp", "reshape"]


# -- constant folding ---------------------------------------------------------------------------------
def test_fold_constants_through_references():
    def f(b, x):
        k = b.op("exp", b.op("dense", value=np.arange(4, dtype=np.float32), dtype=F32))
        return b.op("add", x, b.op("mul", k, c(b, 2.0)))
    q = run_checked(build([(4,)], f), ["fold_constants", "dce"])
    assert names(q) == ["add"]


def test_fold_constants_never_balloons():
    big = lambda b, x: b.op("add", x, b.op("broadcast_to", c(b, 1.0), shape=(64, 64)))
    q = run_checked(build([(64, 64)], big), ["fold_constants", "dce"])
    assert names(q) == ["broadcast_to", "add"]


def _causal_masked(T):
    """where(j <= i, x, -inf) over (T, T) scores, the mask built from factories as torch.export writes it."""
    def f(b, x):
        i = b.op("reshape", b.op("arange", start=0, end=T, step=1, dtype=DType.I64), shape=(T, 1))
        j = b.op("reshape", b.op("arange", start=0, end=T, step=1, dtype=DType.I64), shape=(1, T))
        keep = b.op("logical_and", b.op("le", j, i), b.op("full", shape=(T, T), value=True, dtype=DType.BOOL))
        return b.op("where", keep, x, b.op("full", shape=(), value=float("-inf"), dtype=F32))
    return build([(2, T, T)], f)


def test_fold_constants_folds_small_factory_subgraphs():
    # a causal mask of 32x32 folds to one constant: no launches per call for it
    q = run_checked(_causal_masked(32), ["fold_constants", "dce"])
    assert names(q) == ["where"]
    dense = [o for o in q.walk() if o.name == "xc.dense"]
    assert len(dense) == 1 and np.array_equal(np.asarray(dense[0].attrs["value"]), np.tril(np.ones((32, 32), bool)))


def test_fold_constants_leaves_large_factories():
    # 64x64 is over the size bound: the (64, 64) ops stay; the position ids and the 0-d -inf fold
    q = run_checked(_causal_masked(64), ["fold_constants", "dce"])
    assert names(q) == ["le", "full", "logical_and", "where"]


# -- cse / dce / inline -----------------------------------------------------------------------------------
def test_cse_merges_equal_and_commuted_ops():
    def f(b, x, y):
        return b.op("mul", b.op("add", x, y), b.op("add", y, x)), b.op("exp", x), b.op("exp", x)
    q = run_checked(build([(4,), (4,)], f), ["cse", "dce"])
    assert names(q) == ["add", "mul", "exp"]


def test_dce_removes_unused_pure_ops():
    def f(b, x):
        b.op("exp", b.op("neg", x))
        return b.op("abs", x)
    q = run_checked(build([(4,)], f), ["dce"])
    assert names(q) == ["abs"]


def test_inline_calls_and_drop_callees():
    text = """module {
  func.func @f(%arg0: tensor<4xf32>) -> (tensor<4xf32>) {
    %0 = "xc.exp"(%arg0) : (tensor<4xf32>) -> tensor<4xf32>
    func.return %0 : tensor<4xf32>
  }
  func.func @main(%arg0: tensor<4xf32>) -> (tensor<4xf32>) {
    %0 = "xc.call"(%arg0) {callee = @f} : (tensor<4xf32>) -> tensor<4xf32>
    %1 = "xc.call"(%0) {callee = @f} : (tensor<4xf32>) -> tensor<4xf32>
    func.return %1 : tensor<4xf32>
  }
}"""
    q = run_checked(xcomp.parse(text), ["inline"])
    assert list(q.funcs) == ["main"] and names(q) == ["exp", "exp"]
