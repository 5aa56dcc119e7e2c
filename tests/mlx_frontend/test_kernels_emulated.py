"""Every generated Metal and CUDA kernel of the Llama block captured from MLX, compiled with g++ over
the GPU emulation headers (tests/kernels) and run on the CPU, against the reference interpreter of
its fused group (no GPU here: this checks the emitted source numerically). CUDA is in the slow tier:
the same kernel generator in its other dialect, which tests/kernels emulates in the default tier."""
from __future__ import annotations

import copy

import numpy as np
import pytest

pytest.importorskip("mlx.core")
pytest.importorskip("mlx_lm")

import xcomp  # noqa: E402
from helpers import assert_close  # noqa: E402
from kernels.cases import random_inputs  # noqa: E402
from kernels.emulate import CXX, run_plan  # noqa: E402
from mlx_frontend.mlx_models import LlamaBlock  # noqa: E402
from xcomp.backends.kernels.target import plans, wrap_row_ops  # noqa: E402
from xcomp.errors import LoweringError  # noqa: E402
from xcomp.interpreter import interpret  # noqa: E402
from xcomp.ir.builder import Builder  # noqa: E402
from xcomp.ir.core import Block, Func, Program  # noqa: E402

pytestmark = pytest.mark.skipif(CXX is None, reason="needs g++ to compile the emulated kernels")


def standalone(op) -> Program:
    """A program whose main runs a copy of the fused op `op` on its own arguments."""
    in_types = [v.type for v in op.operands]
    main = Block(list(in_types))
    b = Builder(main)
    region = copy.deepcopy(op.regions[0], {id(op): None})
    new = b.create("fused", main.args, dict(op.attrs), [region], [r.type for r in op.results])
    b.create("return", new.results)
    return Program({"main": Func("main", main, [f"x{i}" for i in range(len(in_types))])})


@pytest.mark.parametrize("dialect", ["metal", pytest.param("cuda", marks=pytest.mark.slow)])
def test_llama_block_kernels_on_cpu(dialect, tmp_path):
    import mlx.core as mx
    mx.random.seed(0)
    block = LlamaBlock(hidden_size=32, num_attention_heads=4, num_key_value_heads=2, intermediate_size=48)
    x = mx.random.normal((1, 8, 32))
    optimized, _ = xcomp.optimize(xcomp.capture(block, [x]), target=dialect)
    wrap_row_ops(optimized)
    rng = np.random.default_rng(0)
    ran = 0
    for i, (op, kplan) in enumerate(plans(optimized, dialect)):
        if isinstance(kplan, LoweringError) or kplan.prelude is not None:
            continue  # runs as MLX built-ins (or after an MLX prelude), not as a generated kernel alone
        program = standalone(op)
        in_types = [v.type for v in op.operands]
        inputs = random_inputs(in_types, rng)
        got = run_plan(kplan, inputs, [t.dtype for t in in_types], str(tmp_path / f"k{i}"))
        want = interpret(program, inputs)
        for g, w in zip(got, want):
            assert_close(g, np.asarray(w), dtype="float32", scale=10, msg=f"{dialect} kernel {kplan.spec.name}")
        ran += 1
    print(f"{ran} {dialect} kernels emulated")
    assert ran >= 3
