"""A capture with symbolic sizes keeps torch.export's graph as exported, like the static one
(frontends/torch_export.py `_needs_decompositions`): `linear` converts whole instead of
view -> addmm -> view chains, so the dynamic GPT block has about the static op count and fuses
the same matmul epilogues; only the causal mask is built per call (arange comparisons)."""
import collections

import pytest
import torch

import xcomp
from xcomp.passes.fuse import kernels_per_call
from xcomp.zoo import encoder_layer, gpt_block

from helpers import assert_close

MASK_OPS = 3          # the causal mask with a symbolic length: arange, full, one fused comparison
LENGTHS = [1, 5, 16, 33]


def _counts(program):
    return collections.Counter(op.name for op in program.funcs["main"].body.ops)


def _compiled(model, x, dynamic):
    compiled = xcomp.compile(model, target="reference", dynamic=dynamic)
    compiled(x)
    return compiled


def _epilogues(program):
    return sum(op.name == "xc.fused" and "MATMUL_EPILOGUE" in str(op.attrs.get("kind"))
               for op in program.funcs["main"].body.ops)


def _eager(model, x):
    with torch.no_grad():
        return model(x)


@pytest.mark.parametrize("dynamic", [True, {"x": {0: "batch", 1: "seq"}}])
def test_dynamic_gpt_block_has_the_static_op_count(dynamic):
    model, (x,) = gpt_block(batch=2, seq=8, dim=32, heads=4)
    static = _compiled(model, x, False).program()
    dyn = _compiled(model, x, dynamic)
    program = dyn.program()
    assert isinstance(program.main.args[0].type.shape[1], str)      # really symbolic
    assert static.op_count() <= program.op_count() <= static.op_count() + MASK_OPS + 6
    counts, static_counts = _counts(program), _counts(static)
    assert counts["xc.reshape"] <= static_counts["xc.reshape"] + 2   # no view -> mm -> view chains
    assert _epilogues(program) == _epilogues(static) == 5             # every linear fuses its bias/residual
    assert kernels_per_call(program) <= kernels_per_call(static) + MASK_OPS


def test_dynamic_encoder_layer_launches_the_static_kernels():
    model, (x,) = encoder_layer(batch=2, seq=8, dim=32, heads=4)
    static = _compiled(model, x, False).program()
    dyn = _compiled(model, x, True)
    program = dyn.program()
    assert kernels_per_call(program) == kernels_per_call(static)
    assert program.op_count() <= static.op_count() + 4               # only views added (symbolic reshapes)


@pytest.mark.parametrize("target", ["reference", "cpp"])
def test_lean_dynamic_gpt_block_matches_eager_at_every_length(target):
    model, _ = gpt_block(batch=2, seq=8, dim=32, heads=4)
    compiled = xcomp.compile(model, target=target, dynamic={"x": {0: "batch", 1: "seq"}})
    torch.manual_seed(1)
    for i, t in enumerate(LENGTHS):
        x = torch.randn(1 + i % 2, t, 32)
        assert_close(compiled(x), _eager(model, x), scale=4.0, msg=f"gpt_block on {target} at length {t}")
    assert (compiled.stats.captures, compiled.stats.builds) == (1, 1)
