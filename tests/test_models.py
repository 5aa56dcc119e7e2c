"""Whole models through every CPU target against PyTorch eager."""
import numpy as np
import pytest
import torch

import xcomp
from helpers import assert_close
from xcomp.zoo import MODELS

TARGETS = ["reference", "mlx", "cpp"]


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_matches_eager(name, target):
    model, inputs = MODELS[name]()
    with torch.no_grad():
        expected = model(*inputs)
    fast = xcomp.compile(model, target=target)
    out = fast(*inputs)
    assert isinstance(out, torch.Tensor)
    assert_close(out, expected, scale=10, msg=f"{name} on {target}")
    # a second call with new values reuses the compiled signature
    new = tuple(torch.randn_like(x) for x in inputs)
    with torch.no_grad():
        assert_close(fast(*new), model(*new), scale=10)
    assert len(fast.cache) == 1


@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_ir_round_trips(name):
    model, inputs = MODELS[name]()
    program = xcomp.capture(model, inputs)
    text = str(program)
    again = xcomp.parse(text, program.weights)
    assert str(again) == text
    xcomp.verify(again)


def test_model_new_shape_recompiles():
    model, (x,) = MODELS["mlp"]()
    fast = xcomp.compile(model, target="reference")
    fast(x)
    y = torch.randn(3, x.shape[1])
    with torch.no_grad():
        assert_close(fast(y), model(y))
    assert len(fast.cache) == 2


def test_numpy_in_numpy_out():
    model, (x,) = MODELS["mlp"]()
    out = xcomp.compile(model, target="mlx")(x.numpy())
    assert isinstance(out, np.ndarray)
    with torch.no_grad():
        assert_close(out, model(x))
