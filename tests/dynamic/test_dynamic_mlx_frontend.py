"""Symbolic sizes through the MLX frontend: `mlx.nn` models compiled once with `dynamic=`, called at
several lengths on `reference` and `mlx`, compared with MLX eager."""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

mx = pytest.importorskip("mlx.core")
nn = pytest.importorskip("mlx.nn")
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "mlx_frontend"))

import xcomp  # noqa: E402
from xcomp.backends import TARGETS, get_target  # noqa: E402
from xcomp.errors import XcompError  # noqa: E402
from xcomp.ir.types import DType  # noqa: E402
from xcomp.tolerances import tolerance  # noqa: E402
from mlx_models import MLP  # noqa: E402

TARGETS_HERE = [t for t in ("reference", "mlx") if t in TARGETS and get_target(t).unavailable_reason() is None]


def _close(got, want):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape
    rtol, atol = tolerance(DType.F32)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol * 10)


def _run_lengths(model, dynamic, shapes, target):
    compiled = xcomp.compile(model, target=target, dynamic=dynamic)
    for i, shape in enumerate(shapes):
        x = mx.random.normal(shape, key=mx.random.key(i))
        _close(compiled(x), model(x))
    return compiled


@pytest.mark.parametrize("target", TARGETS_HERE)
def test_mlp_one_capture_for_every_batch_and_length(target):
    mx.random.seed(0)
    compiled = _run_lengths(MLP(), {"x": {0: "B", 1: "S"}}, [(2, 8, 16), (3, 5, 16), (1, 1, 16), (4, 33, 16)], target)
    assert (compiled.stats.captures, compiled.stats.builds, compiled.stats.calls) == (1, 1, 4)
    assert tuple(compiled.program().main.args[0].type.shape) == ("B", "S", 16)


@pytest.mark.parametrize("target", TARGETS_HERE)
def test_llama_block_dynamic_sequence(target):
    pytest.importorskip("mlx_lm")
    from mlx_models import LlamaBlock
    mx.random.seed(0)
    block = LlamaBlock()
    compiled = _run_lengths(block, {0: {1: "S"}}, [(2, 8, 64), (2, 3, 64), (2, 17, 64), (2, 1, 64), (2, 40, 64)], target)
    assert compiled.stats.captures == 1 and compiled.stats.builds == 1
    assert tuple(compiled.program().main.args[0].type.shape) == (2, "S", 64)


def _shape_math(x, w):
    y = x.reshape(x.shape[0], x.shape[1], 4, 16)
    return mx.softmax(x @ w, axis=-1) + mx.arange(x.shape[1]).reshape(1, -1, 1), y.mean(axis=1), x[:, 1:]


def test_shapes_arguments_and_counts_become_size_expressions():
    x, w = mx.random.normal((2, 8, 64)), mx.random.normal((64, 64))
    program = xcomp.capture(_shape_math, (x, w), dynamic={"x": {0: "B", 1: "S"}})
    text = str(program)
    assert '"xc.arange"() {dtype = i32, end = "S"' in text
    assert '"xc.size"() {value = "S"}' in text  # the mean's divisor (NumberOfElements)
    assert [tuple(t.shape) for t in program.main.result_types] == [("B", "S", 64), ("B", 4, 16), ("B", "S-1", 64)]
    compiled = xcomp.compile(_shape_math, target="mlx", dynamic={"x": {0: "B", 1: "S"}})
    for shape in [(2, 8, 64), (3, 5, 64)]:
        x = mx.random.normal(shape)
        for g, e in zip(compiled(x, w), _shape_math(x, w)):
            _close(g, e)
    assert compiled.stats.captures == 1


def test_dynamic_true_keeps_the_feature_dim_static():
    mx.random.seed(0)
    compiled = _run_lengths(MLP(), True, [(3, 4, 16), (2, 9, 16)], "reference")
    dims = compiled.program().main.args[0].type.shape
    assert isinstance(dims[0], str) and isinstance(dims[1], str) and dims[2] == 16
    assert compiled.stats.captures == 1


def _branches_on_shape(x):
    return x * 2 if x.shape[1] > 8 else x - 1


def test_a_python_branch_on_a_shape_is_refused():
    with pytest.raises(XcompError, match="graph changes with the sizes"):
        xcomp.capture(_branches_on_shape, (mx.ones((2, 8)),), dynamic={"x": {1: "S"}})


def _constant_from_shape(x):
    return x * mx.array(np.full((4,), 1.0 / x.shape[1], np.float32))


def test_a_constant_computed_from_a_shape_is_refused():
    with pytest.raises(XcompError, match="changes with the input sizes"):
        xcomp.capture(_constant_from_shape, (mx.ones((2, 8, 4)),), dynamic={"x": {1: "S"}})


def test_automatic_dynamic_recaptures_once():
    mx.random.seed(0)
    compiled = _run_lengths(MLP(), None, [(2, 4, 16), (2, 6, 16), (2, 9, 16), (2, 3, 16)], "mlx")
    assert compiled.stats.captures == 2
    assert isinstance(compiled.program().main.args[0].type.shape[1], str)


class _CausalAttention(nn.Module):
    """nn.MultiHeadAttention under a causal mask built from the length (an Arange primitive)."""

    def __init__(self):
        super().__init__()
        self.m = nn.MultiHeadAttention(16, 2)

    def __call__(self, x):
        return self.m(x, x, x, mask=nn.MultiHeadAttention.create_additive_causal_mask(x.shape[1]))


class _RopeAttention(nn.Module):
    """Token embedding, a reshape to heads from the input's sizes, RoPE and fused causal attention."""

    def __init__(self):
        super().__init__()
        self.rope, self.emb = nn.RoPE(8), nn.Embedding(40, 16)

    def __call__(self, tok):
        h = self.emb(tok).reshape(tok.shape[0], tok.shape[1], 2, 8).transpose(0, 2, 1, 3)
        return mx.fast.scaled_dot_product_attention(self.rope(h), self.rope(h), h, scale=0.3, mask="causal")


@pytest.mark.parametrize("target", TARGETS_HERE)
@pytest.mark.parametrize("make, inputs, dims", [
    (_CausalAttention, lambda t: mx.random.normal((2, t, 16), key=mx.random.key(t)), {0: {1: "T"}}),
    pytest.param(_RopeAttention, lambda t: mx.random.randint(0, 40, (2, t), key=mx.random.key(t)), {0: {1: "T"}},
                 marks=pytest.mark.slow),   # (13 s; RoPE and sdpa over a symbolic length: the llama block test too)
], ids=["mha_causal_mask", "rope_sdpa_tokens"])
def test_attention_variants_with_a_symbolic_sequence(make, inputs, dims, target):
    mx.random.seed(0)
    model = make()
    compiled = xcomp.compile(model, target=target, dynamic=dims)
    for t in (6, 10, 3):
        x = inputs(t)
        _close(compiled(x), model(x))
    assert compiled.stats.captures == 1


def test_cnn_with_a_symbolic_batch():
    from mlx_models import CNN
    mx.random.seed(0)
    cnn = CNN()
    cnn.eval()
    compiled = _run_lengths(cnn, {0: {0: "B"}}, [(2, 8, 8, 3), (5, 8, 8, 3), (1, 8, 8, 3)], "mlx")
    assert compiled.stats.captures == 1
