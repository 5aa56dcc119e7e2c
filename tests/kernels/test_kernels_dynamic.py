"""Kernels of groups with symbolic dims: one generated source per group (per size class at most),
compiled once with g++ over the GPU emulation headers and run at several sizes, its sizes bound per
call, against xcomp's reference interpreter (tolerances from xcomp/tolerances.py). GPT-block-style
groups: the causal mask, masked softmax rows over a symbolic length, layer norm rows with a residual,
a bias-GELU epilogue, and norms / means over a symbolic row length."""
from __future__ import annotations

import numpy as np
import pytest

from cases import DYNAMIC, DYNAMIC_SIZES, RED, dynamic_inputs, fused_op, fused_program
from cases import residual_layer_norm as _residual_layer_norm
from emulate import CXX, build, execute
from helpers import assert_close
from xcomp.backends.kernels import codegen
from xcomp.interpreter import interpret
from xcomp.ir.types import tensor

pytestmark = pytest.mark.skipif(CXX is None, reason="needs g++ to compile the emulated kernels")

def _run_dynamic(name, dialect, tmp_path, sizes=DYNAMIC_SIZES):
    """Each size class's source built once and run at every binding of `sizes`; returns the
    number of distinct sources and of g++ builds."""
    in_types, body, kind = DYNAMIC[name]
    program = fused_program(in_types, body, kind)
    op = fused_op(program)
    rng = np.random.default_rng(0)
    built: dict = {}
    for env in sizes:
        cls = codegen.size_class(op, dialect, env)
        kplan = codegen.plan(op, dialect, size_class=cls)
        assert kplan.partials is None and kplan.prelude is None
        spec = kplan.spec
        assert all(str(v) not in ("B", "S") for v in spec.source.split()), "size names reach the source"
        if spec.name not in built:
            built[spec.name] = build(spec, [t.dtype for t in in_types], str(tmp_path / spec.name))
        xs = dynamic_inputs(name, in_types, env, rng)
        got = execute(built[spec.name], spec, [xs[i] for i in kplan.input_map],
                      [in_types[i].dtype for i in kplan.input_map], str(tmp_path / spec.name / "run"), env)
        want = interpret(program, xs)
        for i, (g, w) in enumerate(zip(got, want)):
            assert_close(g, np.asarray(w), scale=2.0, msg=f"{name}/{dialect} at {env}, output {i}")
    return len(built)


FAST = [pytest.param("masked_softmax", "cuda", marks=pytest.mark.slow), ("masked_softmax", "metal"), ("residual_layer_norm", "cuda"),
        ("causal_mask", "metal"), ("bias_gelu", "cuda"), ("layer_norm_over_seq", "metal"),
        ("var_mean_over_seq", "cuda")]


@pytest.mark.parametrize("name,dialect", FAST)
def test_one_source_at_every_size(name, dialect, tmp_path):
    """At most one source per size class (two for rows over a symbolic length: the length a
    multiple of the vector width or not), each compiled once, correct at every size."""
    n = _run_dynamic(name, dialect, tmp_path)
    assert n <= 2, n


@pytest.mark.slow
@pytest.mark.parametrize("dialect", ["metal", "cuda"])
@pytest.mark.parametrize("name", sorted(DYNAMIC))
def test_every_dynamic_case(name, dialect, tmp_path):
    _run_dynamic(name, dialect, tmp_path)


@pytest.mark.parametrize("dialect", ["metal", "cuda"])
def test_static_groups_keep_constant_sizes(dialect):
    """A static group reads no sizes (no `sizes` input, constants folded); a symbolic row count
    over a static row length changes only the grid: the same body as the static group's."""
    static = fused_op(fused_program([tensor((6, 32))] * 2 + [tensor((32,))] * 2, _residual_layer_norm, RED))
    spec = codegen.plan(static, dialect).spec
    assert spec.sizes == [] and "sizes" not in spec.input_names and "xs0" not in spec.source
    rows = fused_op(fused_program(*DYNAMIC["residual_layer_norm"][:3]))
    dyn = codegen.plan(rows, dialect).spec
    assert codegen.size_class_of(rows, dialect) is None and dyn.sizes == []
    assert dyn.source.replace("(run-time) rows", "6 rows") == spec.source
    assert dyn.bind({"B": 2, "S": 3}).grid == spec.grid


def test_size_classes_and_launch():
    """Rows over a symbolic length: the vector width only where the length divides by it, the
    threads per row chosen per call; elementwise (CUDA): vectors per thread for large tensors."""
    op = fused_op(fused_program(*DYNAMIC["masked_softmax"][:3]))
    assert codegen.size_class(op, "cuda", {"B": 1, "S": 16}) == (("vec", True),)
    assert codegen.size_class(op, "cuda", {"B": 1, "S": 7}) == (("vec", False),)
    a = codegen.plan(op, "cuda", size_class=(("vec", True),)).spec
    b = codegen.plan(op, "cuda", size_class=(("vec", False),)).spec
    assert a.name != b.name and "of 4 each" in a.source and "of 1 each" in b.source
    for S, threads in ((7, 32), (2048, 64), (40000, 1024)):
        launch = a.bind({"B": 2, "S": S})
        assert launch.threadgroup == (threads, 1, 1) and launch.grid == (2 * 4 * S * threads, 1, 1)
        assert launch.output_shapes == [(2, 4, S, S)] and S in launch.sizes
    ew = fused_op(fused_program(*DYNAMIC["bias_gelu"][:3]))
    assert codegen.size_class(ew, "cuda", {"B": 1, "S": 8}) == (("large", False),)
    assert codegen.size_class(ew, "cuda", {"S": 1 << 14}) == (("large", True),)
    assert codegen.size_class_of(ew, "metal") is None   # Metal: one vector per thread at any size
    big = codegen.plan(ew, "cuda", size_class=(("large", True),)).spec
    assert "each 4 x 4" in big.source and big.bind({"S": 1 << 14}).grid[0] == (1 << 14) * 128 // 16


def test_variants_per_size_class():
    """The tuner's candidates for a symbolic group: the elementwise variants as for static sizes;
    rows over a static length keep their thread and register variants (no split rows: those need
    static sizes); rows over a symbolic length have one form (threads chosen per call)."""
    ew = fused_op(fused_program(*DYNAMIC["bias_gelu"][:3]))
    assert len(codegen.variants(ew, "cuda", (("large", False),))) >= 4
    ln = fused_op(fused_program(*DYNAMIC["residual_layer_norm"][:3]))
    params = codegen.variant_params(ln)
    assert len(params) >= 3 and not any("split" in v for v in params)
    sm = fused_op(fused_program(*DYNAMIC["masked_softmax"][:3]))
    assert codegen.variant_params(sm) == [{}]
    from xcomp.errors import LoweringError
    with pytest.raises(LoweringError, match="static sizes"):
        codegen.plan(sm, "cuda", {"split": 4})
