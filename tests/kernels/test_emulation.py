"""Every generated kernel kind, in both dialects, compiled with g++ over the GPU emulation headers
and run over its whole grid on the CPU (threadgroup memory, barriers and simdgroup/warp reductions
included), against xcomp's reference interpreter."""
from __future__ import annotations

import numpy as np
import pytest

from cases import CASES, F32, fused_op, fused_program, random_inputs
from emulate import CXX, run_plan
from helpers import assert_close
from xcomp.backends.kernels import codegen
from xcomp.interpreter import interpret

pytestmark = pytest.mark.skipif(CXX is None, reason="needs g++ to compile the emulated kernels")

FAST = ["chain_f32", "math_mix", "int_ops", "col_row_scalar", "softmax", "layer_norm",
        "logsumexp_mean"]


def _check(name, dialect, tmp_path, seed=0, variant=None, inputs=None):
    in_types, body, kind = CASES[name]
    program = fused_program(in_types, body, kind)
    kplan = codegen.plan(fused_op(program), dialect, variant)
    inputs = random_inputs(in_types, np.random.default_rng(seed)) if inputs is None else inputs
    got = run_plan(kplan, inputs, [t.dtype for t in in_types], str(tmp_path / f"{name}_{dialect}"))
    want = interpret(program, inputs)
    for i, (g, w) in enumerate(zip(got, want)):
        assert_close(g, np.asarray(w), dtype=str(in_types[0].dtype.np) if in_types[0].dtype.value != "bf16"
                     else "bfloat16", scale=2.0, msg=f"{name}/{dialect} output {i}")


@pytest.mark.parametrize("name", FAST)
def test_metal_kernel_on_cpu(name, tmp_path):
    _check(name, "metal", tmp_path)


@pytest.mark.parametrize("name", ["bias_gelu", "rms_norm_residual", "softmax_bf16"])
def test_cuda_kernel_on_cpu(name, tmp_path):
    _check(name, "cuda", tmp_path, seed=1)


@pytest.mark.slow
@pytest.mark.parametrize("dialect", ["metal", "cuda"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_every_case_on_cpu(name, dialect, tmp_path):
    _check(name, dialect, tmp_path, seed=2)


@pytest.mark.parametrize("dialect", ["metal", "cuda"])
def test_rows_too_long_for_registers(dialect, tmp_path, monkeypatch):
    monkeypatch.setattr(codegen, "MAX_CACHED", 2)
    spec = codegen.plan(fused_op(fused_program(*CASES["layer_norm"])), dialect).spec
    assert "kept in registers" not in spec.source
    _check("layer_norm", dialect, tmp_path, seed=3)


@pytest.mark.parametrize("name,dialect", [("exact_bias_silu", "cuda"), ("chain_f16", "cuda"),
                                          ("layer_norm", "cuda"), ("rms_norm_residual", "cuda"),
                                          ("wide_rows", "metal")])
def test_every_tuning_variant_on_cpu(name, dialect, tmp_path):
    """Each variant the tuner may pick (threads, registers or re-reads, unroll) computes the same."""
    op = fused_op(fused_program(*CASES[name][:3]))
    params = codegen.variant_params(op)
    assert len(params) >= 3 and params[0] == {}
    names = set()
    for i, v in enumerate(params):
        names.add(codegen.plan(op, dialect, v).spec.name)
        _check(name, dialect, tmp_path / str(i), seed=4 + i, variant=v)
    assert len(names) >= 2 or dialect == "metal"


# split rows: parts per row dividing each case's row length (small parts, 32 threads)
SPLITS = {"softmax": 4, "softmax_bf16": 4, "softmax_decomposed": 7, "log_softmax": 4, "layer_norm": 4,
          "layer_norm_f16": 4, "rms_norm_residual": 4, "logsumexp_mean": 3, "var_amin_center": 2,
          "wide_rows": 4}
SPLIT_FAST = [("softmax", "metal"), ("layer_norm", "cuda"), ("logsumexp_mean", "cuda"),
              ("rms_norm_residual", "metal"), ("var_amin_center", "cuda"), ("softmax_bf16", "cuda")]


@pytest.mark.parametrize("name,dialect", SPLIT_FAST)
def test_split_rows_on_cpu(name, dialect, tmp_path):
    """Two launches (partials, then combine and epilogue) compute what one row kernel computes."""
    kplan = codegen.plan(fused_op(fused_program(*CASES[name])), dialect, {"split": SPLITS[name], "threads": 32})
    assert kplan.partials is not None and kplan.spec.kind == "row_split"
    _check(name, dialect, tmp_path, seed=5, variant={"split": SPLITS[name], "threads": 32})


@pytest.mark.slow
@pytest.mark.parametrize("dialect", ["metal", "cuda"])
@pytest.mark.parametrize("name", sorted(SPLITS))
def test_every_split_case_on_cpu(name, dialect, tmp_path):
    _check(name, dialect, tmp_path, seed=6, variant={"split": SPLITS[name], "threads": 32})


@pytest.mark.parametrize("dialect", [pytest.param("metal", marks=pytest.mark.slow), "cuda"])   # one dialect by default (~10 s each)
def test_split_rows_edge_values(dialect, tmp_path):
    """Parts that are all -inf (masked spans) or rows of -inf in softmax and logsumexp, and rows far
    from zero in layer norm (the combine is Chan's, not sum of squares minus square of sums)."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((5, 300)).astype(np.float32)
    x[0, :75] = -np.inf          # one whole part masked
    x[1, 75:] = -np.inf          # all but the first part
    x[2, 10:290] = -np.inf
    x[3] *= 40.0                 # parts whose shifts differ widely
    _check("softmax", dialect, tmp_path / "sm", variant={"split": 4, "threads": 32}, inputs=[x])
    y = rng.standard_normal((6, 129)).astype(np.float32)
    y[0] = -np.inf
    y[1, :43] = -np.inf
    _check("logsumexp_mean", dialect, tmp_path / "lse", variant={"split": 3, "threads": 32}, inputs=[y])
    # rows around 300: float32 means lose ~1e-4 in any kernel; the split one must not lose more
    # than the one-row kernel does (a sum-of-squares combine would lose about 1e-2)
    z = (rng.standard_normal((4, 2, 100)) + 300.0).astype(np.float32)
    w, b = rng.standard_normal(100).astype(np.float32), rng.standard_normal(100).astype(np.float32)
    zz = z.astype(np.float64)
    m = zz.mean(-1, keepdims=True)
    exact = (zz - m) / np.sqrt(((zz - m) ** 2).mean(-1, keepdims=True) + 1e-5) * w + b
    op = fused_op(fused_program(*CASES["layer_norm"]))
    err = {}
    for key, variant in (("row", None), ("split", {"split": 4, "threads": 32})):
        got = run_plan(codegen.plan(op, dialect, variant), [z, w, b], [F32] * 3, str(tmp_path / key))[0]
        err[key] = float(np.abs(got - exact).max())
    assert err["split"] <= 2 * err["row"] + 1e-5, err


def test_split_variants_for_long_rows_only():
    """The tuner gets split plans for rows of at least SPLIT_MIN_LEN (several part counts), not for
    short rows; reductions without a split form are left out, not miscompiled."""
    from cases import RED
    from xcomp.backends.kernels import split
    from xcomp.errors import LoweringError
    from xcomp.ir.types import tensor
    long_op = fused_op(fused_program([tensor((512, 32768))], lambda b, x: b.op("softmax", x, axis=-1), RED))
    assert [v["split"] for v in codegen.variant_params(long_op) if "split" in v] == [4, 8, 16]
    kinds = [p.spec.kind for p in codegen.variants(long_op, "cuda")]
    assert kinds[0] == "row" and kinds.count("row_split") == 3
    assert not [v for v in codegen.variant_params(fused_op(fused_program(*CASES["softmax"]))) if "split" in v]
    assert split.split_counts(8, 32768) == [32]

    def odd(b, x):   # sum(x * max(x)): depends on a reduction in no recognised form
        return b.op("sum", b.op("mul", x, b.op("amax", x, axes=(-1,), keepdim=True)), axes=(-1,))
    op = fused_op(fused_program([tensor((4, 16384))], odd, RED))
    with pytest.raises(LoweringError, match="no split-row form"):
        codegen.plan(op, "cuda", {"split": 4})
    assert all(p.partials is None for p in codegen.variants(op, "cuda"))
