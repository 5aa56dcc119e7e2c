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
