"""The pass pipeline inside regions: folding, CSE and fusion per region, nothing hoisted out of a
branch, kernels generated for the groups inside branches and loop bodies (metal, cuda)."""
from __future__ import annotations

import pytest
import torch

import xcomp
from helpers import assert_close
from ts_helpers import TS_TARGETS, script
from xcomp.api import clone
from xcomp.backends.kernels.target import plans, wrap_row_ops


def loop_with_branch(x, w, b):
    for _ in range(4):
        y = torch.relu(x @ w + b) * 2.0 + 1.0
        if y.sum() > 0:
            x = torch.tanh(y) + x * 0.5 + (x * 0.5)
        else:
            x = torch.sigmoid(y) - 1.0
    return x


ARGS = [(torch.randn(2, 8, generator=torch.Generator().manual_seed(s)), torch.randn(8, 8) * 0.3, torch.randn(8) + off)
        for s, off in ((0, 2.0), (1, -9.0))]


@pytest.fixture(scope="module")
def scripted():
    return script(loop_with_branch)


def test_pipeline_keeps_results_on_both_paths(scripted):
    for target in TS_TARGETS:
        compiled = xcomp.compile(scripted, target=target)
        for args in ARGS:
            assert_close(compiled(*args), scripted(*args), scale=10)


def test_fusion_runs_inside_regions_and_nothing_leaves_a_branch(scripted):
    program = xcomp.capture(scripted, ARGS[0])
    opt, _ = xcomp.optimize(program, "mlx")
    loop = next(op for op in opt.main.body.ops if op.name == "xc.loop")
    body = loop.regions[0].block
    branch = next(op for op in body.ops if op.name == "xc.if")
    then_ops = {o.name for top in branch.regions[0].block.ops for o in top.walk()}
    else_ops = {o.name for top in branch.regions[1].block.ops for o in top.walk()}
    assert "xc.fused" in {o.name for o in body.ops}  # the matmul epilogue group in the loop body
    assert "xc.tanh" in then_ops and "xc.tanh" not in else_ops  # branch-local work stays in its branch
    assert "xc.sigmoid" in else_ops and "xc.sigmoid" not in then_ops
    outside = {o.name for o in body.ops if o is not branch for o in o.walk()}
    assert "xc.tanh" not in outside and "xc.sigmoid" not in outside
    # CSE inside the branch: x * 0.5 computed once
    assert sum(1 for top in branch.regions[0].block.ops for o in top.walk() if o.name == "xc.mul") == 1


@pytest.mark.parametrize("dialect", ["metal", "cuda"])
def test_kernels_inside_regions(scripted, dialect):
    opt, _ = xcomp.optimize(xcomp.capture(scripted, ARGS[0]), dialect)
    p = clone(opt)
    wrap_row_ops(p)
    made = plans(p, dialect)
    nested = [(op, pl) for op, pl in made if op.parent is not p.main.body]
    assert len(nested) >= 3  # loop body epilogue, branch condition reduction, each branch's group
    for op, pl in nested:
        assert not isinstance(pl, Exception), f"{op.attrs['kind']}: {pl}"
        assert pl.spec.full_source()


def test_branch_that_only_yields_becomes_where():
    """`if t == eos: break` inside the decoding loop is a select, not a second stop per iteration."""
    from ts_cases import greedy_decode
    f = script(greedy_decode)
    args = (torch.randn(1, 8, generator=torch.Generator().manual_seed(1)), torch.randn(8, 8), 3, 6)
    program = xcomp.capture(f, args)
    assert sum(op.name == "xc.if" for op in program.walk()) == 1
    opt, _ = xcomp.optimize(program, "reference")
    assert not any(op.name == "xc.if" for op in opt.walk())
    assert any(op.name == "xc.where" for op in opt.walk())
    loop = next(op for op in opt.main.body.ops if op.name == "xc.loop")  # constants hoisted out of the body
    assert not [op.name for op in loop.regions[0].block.ops if op.name in ("xc.constant", "xc.dense", "xc.weight")]
    assert xcomp.compile(f, target="reference")(*args) == f(*args)


def test_constant_condition_inlines_the_taken_region():
    import numpy as np
    from xcomp.ir.builder import build_program
    from xcomp.ir.core import Block, Region
    from xcomp.ir.types import DType, tensor

    def body(b, x):
        regions = []
        for fn in ("tanh", "sigmoid"):
            blk = Block([])
            inner = type(b)(blk)
            inner.create("yield", [inner.op(fn, x)])
            regions.append(Region([blk]))
        cond = b.op("constant", value=False, dtype=DType.BOOL)
        return b.create("if", [cond], regions=regions, result_types=[x.type]).result

    program = build_program([tensor((3,), DType.F32)], body)
    x = np.array([0.5, -1.0, 2.0], np.float32)
    want = xcomp.interpret(program, [x])[0]
    opt, _ = xcomp.optimize(program, "reference", passes=["canonicalize", "dce"])
    names = [op.name for op in opt.walk()]
    assert "xc.if" not in names and "xc.sigmoid" in names and "xc.tanh" not in names
    assert_close(xcomp.interpret(opt, [x])[0], want)
    assert_close(want, 1 / (1 + np.exp(-x)))
