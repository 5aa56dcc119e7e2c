"""MLX models (`mlx.nn` MLP and CNN, mlx-lm's Llama and Qwen2, a Llama block) through the MLX frontend
on every target that runs here, against MLX eager; kernel source for metal and cuda."""
from __future__ import annotations

import numpy as np
import pytest

mx = pytest.importorskip("mlx.core")
pytest.importorskip("mlx_lm")

import xcomp  # noqa: E402
from helpers import assert_close  # noqa: E402
from mlx.utils import tree_flatten  # noqa: E402
from mlx_frontend.mlx_models import model_set  # noqa: E402

MODELS = model_set()


@pytest.mark.parametrize("target", ["reference", "mlx"])
@pytest.mark.parametrize("name", list(MODELS))
def test_model_against_mlx_eager(name, target):
    model, inputs = MODELS[name]
    expected = model(*inputs)
    got = xcomp.compile(model, target=target)(*inputs)
    assert isinstance(got, mx.array) and got.dtype == expected.dtype
    assert_close(got, expected, dtype="float32", scale=10, msg=f"{name} on {target}")


@pytest.mark.parametrize("name", list(MODELS))
def test_weights_are_named_parameters_and_module_restored(name):
    model, inputs = MODELS[name]
    before = {k: np.array(v) for k, v in tree_flatten(model.parameters())}
    program = xcomp.capture(model, inputs)
    assert set(before) <= set(program.weights)  # every parameter is a weight named by its path
    for k, v in before.items():
        np.testing.assert_array_equal(program.weights[k], v)
    after = dict(tree_flatten(model.parameters()))
    assert all(isinstance(after[k], mx.array) for k in before)
    assert_close(model(*inputs), xcomp.compile(model, target="reference")(*inputs), dtype="float32", scale=10)


@pytest.mark.parametrize("dialect", ["metal", "cuda"])
@pytest.mark.parametrize("name", ["llama_block", "cnn"])
def test_kernel_source(name, dialect):
    """Every fused group of the optimized model has a generated kernel (or a stated MLX fallback)."""
    from xcomp.backends.kernels.target import plans, source
    from xcomp.passes.fuse import fusion_groups
    model, inputs = MODELS[name]
    optimized, _ = xcomp.optimize(xcomp.capture(model, inputs), target=dialect)
    text = source(optimized, dialect)
    kernels = [p for _, p in plans(optimized, dialect) if not isinstance(p, Exception)]
    assert fusion_groups(optimized) and kernels
    assert text.count("// kernel ") + text.count("runs as MLX built-ins") >= len(fusion_groups(optimized))
    assert "self_attn" not in text and "layer." not in text  # model names never reach the source
