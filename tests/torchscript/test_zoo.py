"""The models of the test suite, scripted and traced, give the same results through TorchScript as
through torch.export (and as PyTorch eager)."""
from __future__ import annotations

import pytest
import torch

import xcomp
from helpers import assert_close
from ts_helpers import run_script, script, trace
from xcomp.zoo import MODELS

# gpt_block uses a generator expression, which torch.jit.script rejects: it is covered traced
SCRIPTABLE = ["mlp", "cnn", "encoder_layer"]
PARAMS = [(n, "scripted") for n in SCRIPTABLE] + [(n, "traced") for n in sorted(MODELS)]


@pytest.mark.parametrize("name,mode", PARAMS)
def test_zoo_torchscript_matches_torch_export(name, mode):
    model, inputs = MODELS[name]()
    module = script(model) if mode == "scripted" else trace(model, inputs)
    via_script = xcomp.compile(module, target="mlx")(*inputs)
    via_export = xcomp.compile(model, target="mlx")(*inputs)
    assert_close(via_script, via_export, scale=10, msg=f"{name} {mode}")
    assert_close(via_script, run_script(module, inputs), scale=10)
