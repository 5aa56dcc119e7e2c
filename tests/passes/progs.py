"""Building small programs for pass tests, and running a pipeline with numerics checked."""
from __future__ import annotations

import numpy as np

import xcomp
from helpers import assert_close
from xcomp.api import clone
from xcomp.ir.builder import Builder
from xcomp.ir.core import Block, Func, Program
from xcomp.ir.types import DType, tensor
from xcomp.passes import run_pipeline
from xcomp.passes.decompose import primitive_ops


class Primitives:
    """A target whose table lacks every composite (so `decompose` applies them all)."""

    name = "primitives"
    max_kernel_buffers = 31

    def supported(self):
        return primitive_ops()


def build(shapes, fn, dtype=DType.F32, weights=None) -> Program:
    """A program of inputs with `shapes`; `fn(b, *args)` returns the outputs (a Value or list)."""
    block = Block([tensor(s, dtype) for s in shapes])
    b = Builder(block)
    p = Program({"main": Func("main", block)}, dict(weights or {}))
    b.program = p
    outs = fn(b, *block.args)
    b.create("return", outs if isinstance(outs, (list, tuple)) else [outs])
    xcomp.verify(p)
    return p


def weight(b, name: str):
    """An `xc.weight` op for `b.program.weights[name]`."""
    w = b.program.weights[name]
    return b.create("weight", [], {"name": name},
                    result_types=[tensor(w.shape, DType.from_numpy(w.dtype))]).result


def inputs_for(p: Program, seed: int = 0):
    rng = np.random.default_rng(seed)
    out = []
    for a in p.main.args:
        t = a.type
        if t.dtype.is_float:
            out.append(rng.standard_normal(t.shape).astype(t.dtype.np))
        elif t.dtype.is_bool:
            out.append(rng.random(t.shape) > 0.5)
        else:
            out.append(rng.integers(-5, 6, t.shape).astype(t.dtype.np))
    return out


def run_checked(p: Program, passes, target=None, scale=1.0) -> Program:
    """Run `passes` on a copy (verifying after each) and check the results did not change."""
    xs = inputs_for(p)
    expected = xcomp.interpret(p, xs)
    q = clone(p)
    run_pipeline(q, passes, debug=True, target=target)
    got = xcomp.interpret(q, xs)
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert_close(g, e, scale=scale)
    return q


def names(p: Program) -> list[str]:
    """Compute op names of `@main` at any depth, structural ops left out."""
    return [op.name.removeprefix("xc.") for op in p.walk() if not op.opdef.is_structural]
