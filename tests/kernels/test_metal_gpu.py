"""The real Metal tests: every case as a generated Metal kernel against MLX eager on the Apple GPU."""
from __future__ import annotations

import numpy as np
import pytest

from cases import CASES, fused_program, random_inputs
from helpers import assert_close

mx = pytest.importorskip("mlx.core")
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not mx.metal.is_available(),
                                                  reason="needs an Apple GPU (MLX reports no Metal device here)")]


@pytest.mark.parametrize("name", sorted(CASES))
def test_metal_kernel_matches_mlx_eager(name):
    from xcomp.api import optimize
    from xcomp.backends import get_target
    from xcomp.backends.mlx.dtypes import mx_dtype
    from xcomp.backends.mlx.target import MLXEvaluator
    in_types, body, kind = CASES[name]
    program = fused_program(in_types, body, kind)
    inputs = random_inputs(in_types, np.random.default_rng())
    args = [mx.array(a).astype(mx_dtype(t.dtype)) for a, t in zip(inputs, in_types)]
    opt, _ = optimize(program, "metal")
    got = get_target("metal").build(opt)(args)
    want = MLXEvaluator(program).run(args)
    dt = in_types[0].dtype
    for g, w in zip(got, want):
        assert_close(g, w, dtype="bfloat16" if dt.value == "bf16" else str(dt.np), scale=2.0)
