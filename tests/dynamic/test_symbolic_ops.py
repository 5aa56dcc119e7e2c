"""Type inference with symbolic sizes (op definitions), the guards it records, the IR text round
trip of symbolic programs, and the reference interpreter run at several sizes against numpy."""
import numpy as np
import pytest

import xcomp
from xcomp import GuardError
from xcomp.guards import bind, check
from xcomp.interpreter import interpret
from xcomp.ir.builder import build_program
from xcomp.ir.types import DType, TensorType
from xcomp.passes.memory import plan_memory

from helpers import assert_close

F32 = DType.F32


def t(*shape):
    return TensorType(shape, F32)


def run_at(p, arrays):
    """Bind and check the guards as xcomp.compile does, then run the reference interpreter."""
    check(p, bind(p, [a.shape for a in arrays]))
    return interpret(p, arrays)


def roundtrip(p):
    text = str(p)
    q = xcomp.parse(text, p.weights)
    assert str(q) == text and q.guards == p.guards
    xcomp.verify(q)
    _xdsl_parses(text)
    return q


def _xdsl_parses(text: str):
    """An independent MLIR parser reads the symbolic types and the guards' module attribute."""
    try:
        from xdsl.context import Context
        from xdsl.dialects.builtin import Builtin
        from xdsl.dialects.func import Func as FuncDialect
        from xdsl.parser import Parser
    except ImportError:
        return
    ctx = Context(allow_unregistered=True)
    ctx.load_dialect(Builtin)
    ctx.load_dialect(FuncDialect)
    module = Parser(ctx, text).parse_module()
    if "xc.guards" in text:
        assert "xc.guards" in module.attributes


def test_reshape_minus_one_over_symbolic_sizes_needs_divisibility():
    p = build_program([t("B", "S", 8)], lambda b, x: b.op("reshape", x, shape=("B", -1, 16)))
    out = p.main.outputs[0].type
    assert out.shape == ("B", "(S//2)", 16)
    assert [str(g) for g in p.guards] == ["(S%2) == 0"]
    q = roundtrip(p)
    for s in (2, 6, 10):
        x = np.random.rand(3, s, 8).astype(np.float32)
        assert_close(run_at(q, [x])[0], x.reshape(3, -1, 16))
    with pytest.raises(GuardError, match=r"\(S%2\) == 0"):
        run_at(q, [np.zeros((3, 7, 8), np.float32)])


def test_concat_sums_and_matmul_equates_sizes():
    def body(b, x, y, w):
        c = b.op("concat", x, y, axis=0)              # (S+T) x K
        return b.op("matmul", c, w)                     # K must equal the weight's rows
    p = build_program([t("S", "K"), t("T", "K"), t(4, 5)], body)
    assert p.main.outputs[0].type.shape == ("S+T", 5)
    assert [str(g) for g in p.guards] == ["K == 4"]
    q = roundtrip(p)
    x, y, w = (np.random.rand(*s).astype(np.float32) for s in ((3, 4), (6, 4), (4, 5)))
    assert_close(run_at(q, [x, y, w])[0], np.concatenate([x, y]) @ w)
    with pytest.raises(GuardError):
        run_at(q, [np.zeros((3, 5), np.float32), np.zeros((6, 5), np.float32), w])


def test_slice_of_a_static_table_by_a_symbolic_length_is_guarded():
    def body(b, x, table):
        rows = b.op("slice", table, axis=0, start=0, end="S", step=1)
        return b.op("add", x, rows)
    p = build_program([t("S", 8), t(16, 8)], body)
    assert [str(g) for g in p.guards] == ["16 >= S"]
    q = roundtrip(p)
    table = np.random.rand(16, 8).astype(np.float32)
    for s in (1, 5, 16):
        x = np.random.rand(s, 8).astype(np.float32)
        assert_close(run_at(q, [x, table])[0], x + table[:s])
    with pytest.raises(GuardError):
        run_at(q, [np.zeros((17, 8), np.float32), table])


def test_affine_conv_and_pool_sizes():
    def body(b, x, w):
        y = b.op("conv", x, w, stride=(2,), padding=(1,))
        return b.op("max_pool", y, kernel=(2,), stride=(2,))
    p = build_program([t("N", 3, "L"), t(4, 3, 3)], body)
    assert p.main.outputs[0].type.shape == ("N", 4, "((L+1)//4)")
    q = roundtrip(p)
    import torch
    w = np.random.rand(4, 3, 3).astype(np.float32)
    for n, length in ((1, 5), (2, 9), (3, 16)):
        x = np.random.rand(n, 3, length).astype(np.float32)
        ref = torch.nn.functional.max_pool1d(torch.nn.functional.conv1d(torch.tensor(x), torch.tensor(w), stride=2,
                                                                          padding=1), 2, 2)
        assert_close(run_at(q, [x, w])[0], ref.numpy())


def test_arange_full_and_broadcast_follow_the_size():
    def body(b, x):
        pos = b.op("cast", b.op("arange", start=0, end="S", step=1, dtype=DType.I64), dtype=F32)
        ones = b.op("full", shape=("S", 4), value=1.0, dtype=F32)
        return b.op("add", b.op("mul", x, ones), b.op("reshape", pos, shape=("S", 1)))
    p = build_program([t("S", 4)], body)
    q = roundtrip(p)
    for s in (1, 3, 12):
        x = np.random.rand(s, 4).astype(np.float32)
        assert_close(run_at(q, [x])[0], x + np.arange(s, dtype=np.float32)[:, None])


def test_save_load_keeps_symbolic_types_and_guards(tmp_path):
    p = build_program([t("B", "S", 8)], lambda b, x: b.op("reshape", x, shape=("B", -1, 16)))
    xcomp.save(p, str(tmp_path))
    q = xcomp.load(str(tmp_path))
    assert str(q) == str(p) and q.guards == p.guards


def test_passes_keep_symbolic_programs_and_fuse_equal_sizes():
    def body(b, x, y):
        s = b.op("add", b.op("exp", x), b.op("reshape", y, shape=("S", 4)))  # (S*4) -> (S, 4)
        return b.op("mul", s, s)
    p = build_program([t("S", 4), t("4*S")], body)
    opt, _ = xcomp.optimize(p, "reference")
    from xcomp.passes.fuse import fusion_groups
    assert len(fusion_groups(opt)) == 1                       # one group across the equal sizes
    x, y = np.random.rand(5, 4).astype(np.float32), np.random.rand(20).astype(np.float32)
    v = np.exp(x) + y.reshape(5, 4)
    assert_close(run_at(opt, [x, y])[0], v * v)


def test_memory_plan_reuses_buffers_of_equal_symbolic_size():
    def body(b, x):
        a = b.op("exp", x)
        c = b.op("neg", a)
        d = b.op("exp", c)
        return b.op("neg", d)
    p = build_program([t("S", 8)], body)
    plan = plan_memory(p)
    assert len(plan.intervals) == 3 and len(plan.buffers) == 2
    assert plan.buffer_sizes == ["32*S", "32*S"] and plan.bytes_at({"S": 10}) == 2 * 320


def test_fold_and_cse_over_size_expressions():
    def body(b, x):
        s = b.op("size", value="S")
        two = b.op("constant", value=2, dtype=DType.I64)
        n = b.op("add", b.op("mul", s, two), b.op("size", value="S"))      # 3*S, from two size ops
        again = b.op("mul", b.op("size", value="S"), b.op("constant", value=3, dtype=DType.I64))
        total = b.op("add", n, again)                                        # 6*S
        return b.op("mul", x, b.op("cast", total, dtype=F32))
    p = build_program([t("S", 2)], body)
    opt, _ = xcomp.optimize(p, "reference", passes=["fold_constants", "cse", "dce"])
    sizes = [op for op in opt.walk() if op.name == "xc.size"]
    assert [op.attrs["value"] for op in sizes] == ["6*S"]
    assert not any(op.name in ("xc.add", "xc.mul") and op.results[0].type.shape == () for op in opt.walk())
    mlx = pytest.importorskip("mlx.core")
    compiled = xcomp.compile(opt, target="mlx")                              # decomposed there
    for s in (1, 4, 9):
        x = np.random.rand(s, 2).astype(np.float32)
        assert_close(run_at(opt, [x])[0], x * 6 * s)
        assert_close(np.array(compiled(mlx.array(x))), x * 6 * s)
    assert (compiled.stats.captures, compiled.stats.builds) == (1, 1)    # a symbolic Program compiles once


def test_kernel_source_of_a_specialised_program_has_kernels():
    """metal/cuda: a symbolic program gets kernels that read their sizes at run time (one source for
    every size); a program specialised to one binding is static and gets constant-size kernels."""
    from xcomp.backends.kernels.target import source
    from xcomp.specialize import specialize

    def body(b, x):
        return b.op("softmax", b.op("mul", x, b.op("constant", value=2.0, dtype=F32)), axis=1)
    p = build_program([t("S", 64)], body)
    opt, _ = xcomp.optimize(p, "metal")
    symbolic = source(opt, "metal")
    # rows of a static 64: the symbolic row count is only in the grid, computed per call
    assert "// kernel xc_" in symbolic and "grid (mul(S, " in symbolic and "runs as MLX built-ins" not in symbolic
    static = specialize(opt, {"S": 8})
    assert static.main.args[0].type == t(8, 64) and not static.guards
    xcomp.verify(static)
    assert "// kernel xc_" in source(static, "metal") and "runs as MLX built-ins" not in source(static, "metal")
