"""Every generated kernel kind, in both dialects, compiled with g++ over the GPU emulation headers
and run over its whole grid on the CPU (threadgroup memory, barriers and simdgroup/warp reductions
included), against xcomp's reference interpreter."""
from __future__ import annotations

import numpy as np
import pytest

from cases import CASES, fused_op, fused_program, random_inputs
from emulate import CXX, run
from helpers import assert_close
from xcomp.backends.kernels import codegen
from xcomp.interpreter import interpret

pytestmark = pytest.mark.skipif(CXX is None, reason="needs g++ to compile the emulated kernels")

FAST = ["chain_f32", "math_mix", "int_ops", "col_row_scalar", "softmax", "layer_norm",
        "logsumexp_mean"]


def _check(name, dialect, tmp_path, seed=0, variant=None):
    in_types, body, kind = CASES[name]
    program = fused_program(in_types, body, kind)
    spec = codegen.plan(fused_op(program), dialect, variant).spec
    inputs = random_inputs(in_types, np.random.default_rng(seed))
    got = run(spec, inputs, [t.dtype for t in in_types], str(tmp_path / f"{name}_{dialect}"))
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
