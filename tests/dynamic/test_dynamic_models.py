"""Models compiled once with symbolic batch and sequence sizes, called at many lengths: correct on
every call, one capture and one build in total (`compiled.stats`)."""
import pytest
import torch

import xcomp
from xcomp.zoo import cnn, encoder_layer, gpt_block

from helpers import assert_close

LENGTHS = [1, 2, 7, 16, 33, 100, 257, 512]          # 8 sequence lengths, 1 to 512
CASES = [("gpt_block", "reference", {"x": {0: "batch", 1: "seq"}}),
         ("gpt_block", "mlx", {"x": {0: "batch", 1: "seq"}}),
         ("encoder_layer", "mlx", True),
         pytest.param("encoder_layer", "reference", True, marks=pytest.mark.slow)]
MODELS = {"gpt_block": gpt_block, "encoder_layer": encoder_layer}


def _eager(model, x):
    with torch.no_grad():
        return model(x)


@pytest.mark.parametrize("name, target, dynamic", CASES)
def test_one_program_for_every_length(name, target, dynamic):
    pytest.importorskip("mlx.core") if target == "mlx" else None
    model, _ = MODELS[name](batch=2, seq=8, dim=32, heads=4)
    compiled = xcomp.compile(model, target=target, dynamic=dynamic)
    for i, t in enumerate(LENGTHS):
        x = torch.randn(1 + i % 3, t, 32)
        assert_close(compiled(x), _eager(model, x), scale=4.0, msg=f"{name} on {target} at length {t}")
    assert (compiled.stats.captures, compiled.stats.builds) == (1, 1)
    assert compiled.stats.calls == len(LENGTHS) and len(compiled.cache) == 1
    arg = compiled.program().main.args[0].type
    assert isinstance(arg.shape[0], str) and isinstance(arg.shape[1], str) and arg.shape[2] == 32
    if isinstance(dynamic, dict):
        assert arg.shape[:2] == ("batch", "seq")
    for program in (compiled.program(optimized=False), compiled.program()):   # IR text round trip
        again = xcomp.parse(str(program), program.weights)
        assert str(again) == str(program) and again.guards == program.guards
    report = compiled.explain()
    assert "guards:" in str(report) and report.guards == [str(g) for g in compiled.program().guards]


@pytest.mark.parametrize("target", ["reference", pytest.param("mlx", marks=pytest.mark.slow)])
def test_automatic_dynamic_recompiles_a_changed_dim_once(target):
    if target == "mlx":
        pytest.importorskip("mlx.core")
    model, _ = gpt_block(batch=2, seq=8, dim=32, heads=4)
    compiled = xcomp.compile(model, target=target)       # dynamic=None: automatic
    x8 = torch.randn(2, 8, 32)
    assert_close(compiled(x8), _eager(model, x8), scale=4.0)
    assert compiled.program().main.args[0].type.is_static
    for t in (16, 5, 40):
        x = torch.randn(2, t, 32)
        assert_close(compiled(x), _eager(model, x), scale=4.0)
    arg = compiled.program().main.args[0].type
    assert arg.shape[0] == 2 and isinstance(arg.shape[1], str)   # only the dim that changed
    assert (compiled.stats.captures, compiled.stats.builds) == (2, 2)
    x = torch.randn(3, 9, 32)                                    # now the batch changes too
    assert_close(compiled(x), _eager(model, x), scale=4.0)
    assert compiled.stats.captures == 3 and isinstance(compiled.program().main.args[0].type.shape[0], str)


def test_static_mode_compiles_each_shape():
    model, _ = gpt_block(batch=1, seq=4, dim=16, heads=2)
    compiled = xcomp.compile(model, target="reference", dynamic=False)
    for t in (4, 6):
        x = torch.randn(1, t, 16)
        assert_close(compiled(x), _eager(model, x), scale=4.0)
    assert compiled.stats.captures == 2 and compiled.program().main.args[0].type.is_static


def test_cnn_with_symbolic_batch_and_image_size():
    """conv, batch norm, max pool and adaptive pooling over symbolic spatial sizes."""
    model, _ = cnn(batch=2, channels=8, size=16)
    compiled = xcomp.compile(model, target="reference", dynamic=True)
    for shape in ((2, 3, 16, 16), (1, 3, 20, 12), (3, 3, 9, 17)):
        x = torch.randn(*shape)
        assert_close(compiled(x), _eager(model, x), scale=4.0)
    assert (compiled.stats.captures, compiled.stats.builds) == (1, 1)
    dims = compiled.program().main.args[0].type.shape
    assert dims[1] == 3 and all(isinstance(d, str) for d in (dims[0], dims[2], dims[3]))
