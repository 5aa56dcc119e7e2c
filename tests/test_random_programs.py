"""Random programs (hypothesis): random DAGs of supported ops over random shapes with broadcasting.

The full pipeline, for a target with every composite (reference) and one with only primitives
(decompositions applied), must verify and keep the reference interpreter's results within
tolerance. The count of programs run is printed in the test summary.
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import xcomp
from helpers import assert_close
from passes.progs import Primitives
from xcomp.api import clone
from xcomp.ir.builder import Builder
from xcomp.ir.core import Block, Func, Program
from xcomp.ir.types import DType, TensorType, tensor
from xcomp.passes import run_pipeline
from xcomp.passes.manager import DEFAULT_PIPELINE

F32 = DType.F32
RAN = {"programs": 0}
UNARY = ["neg", "abs", "relu", "tanh", "sigmoid", "sin", "square", "gelu", "silu"]
BINARY = ["add", "sub", "mul", "maximum", "minimum"]


@pytest.fixture(scope="module", autouse=True)
def _summary():
    yield
    from conftest import record_stat
    record_stat("random programs run through the full pipeline (2 targets each)", RAN["programs"])


@st.composite
def programs(draw):
    base = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=3)))

    def bshape():  # a shape that broadcasts to `base`
        keep = draw(st.integers(0, len(base)))
        return tuple(d if draw(st.booleans()) else 1 for d in base[len(base) - keep:])

    n_in = draw(st.integers(1, 3))
    block = Block([tensor(base, F32)] + [tensor(bshape(), F32) for _ in range(n_in - 1)])
    b = Builder(block)
    vals = list(block.args)
    for _ in range(draw(st.integers(1, 12))):
        kind = draw(st.sampled_from(["unary", "binary", "binary", "reduce", "row", "const", "view"]))
        x = draw(st.sampled_from(vals))
        r = x.type.rank
        if kind == "unary":
            v = b.op(draw(st.sampled_from(UNARY)), x)
        elif kind == "binary":
            y = draw(st.sampled_from(vals))
            try:
                v = b.op(draw(st.sampled_from(BINARY)), x, y)
            except TypeError:  # shapes that do not broadcast
                continue
        elif kind == "const":
            c = b.op("constant", value=draw(st.sampled_from([0.0, 1.0, 0.5, -1.0])), dtype=F32)
            v = b.op(draw(st.sampled_from(["add", "mul", "sub"])), x, c)
        elif kind == "reduce" and r:
            axes = (draw(st.integers(0, r - 1)),)
            v = b.op(draw(st.sampled_from(["sum", "amax", "mean", "logsumexp"])), x, axes=axes,
                     keepdim=draw(st.booleans()))
        elif kind == "row" and r:
            op = draw(st.sampled_from(["softmax", "log_softmax", "layer_norm", "rms_norm"]))
            v = b.op(op, x, axis=-1) if "softmax" in op else b.op(op, x, normalized_ndim=1)
        elif kind == "view" and r >= 2:
            v = b.op("transpose", x, perm=tuple(reversed(range(r))))
        else:
            continue
        vals.append(v)
    outs = draw(st.lists(st.sampled_from(vals[n_in:] or vals), min_size=1, max_size=2, unique=True))
    b.create("return", outs)
    return Program({"main": Func("main", block)})


@settings(deadline=None, max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(programs(), st.integers(0, 2**16))
def test_pipeline_keeps_reference_results(program, seed):
    xcomp.verify(program)
    rng = np.random.default_rng(seed)
    xs = [rng.standard_normal(a.type.shape).astype(np.float32) for a in program.main.args]
    expected = xcomp.interpret(program, xs)
    for target in (None, Primitives()):
        q = clone(program)
        run_pipeline(q, list(DEFAULT_PIPELINE), debug=True, target=target)
        xcomp.verify(q)
        for got, want in zip(xcomp.interpret(q, xs), expected):
            assert_close(got, want, scale=10)
    RAN["programs"] += 1
