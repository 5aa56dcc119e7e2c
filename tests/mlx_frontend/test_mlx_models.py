"""MLX models (`mlx.nn` MLP and CNN, mlx-lm's Llama and Qwen2, a Llama block) through the MLX frontend
on every target that runs here (reference, mlx, mlx-source, cpp; Core ML through its package
evaluator), against MLX eager; kernel source for metal and cuda."""
from __future__ import annotations

import numpy as np
import pytest

mx = pytest.importorskip("mlx.core")
pytest.importorskip("mlx_lm")

import xcomp  # noqa: E402
from helpers import assert_close  # noqa: E402
from mlx.utils import tree_flatten  # noqa: E402
from mlx_frontend.mlx_models import model_set  # noqa: E402

from xcomp.backends import TARGETS  # noqa: E402

MODELS = model_set()
EAGER_TARGETS = [t for t in ("reference", "mlx", "mlx-source") if t in TARGETS]  # mlx-source: generated MLX code


@pytest.mark.parametrize("target", EAGER_TARGETS)
@pytest.mark.parametrize("name", list(MODELS))
def test_model_against_mlx_eager(name, target):
    model, inputs = MODELS[name]
    expected = model(*inputs)
    got = xcomp.compile(model, target=target)(*inputs)
    assert isinstance(got, mx.array) and got.dtype == expected.dtype
    assert_close(got, expected, dtype="float32", scale=10, msg=f"{name} on {target}")


def test_quantized_llama():
    """mlx-lm's Llama with nn.quantize (4-bit QuantizedLinear and QuantizedEmbedding, whose
    dequantization runs on uint32 shifts that must wrap as in MLX)."""
    import mlx.nn as nn
    from mlx_frontend.mlx_models import llama_model
    model = llama_model()
    nn.quantize(model, group_size=32, bits=4)
    mx.eval(model.parameters())
    tokens = MODELS["llama"][1][0]
    for target in ("reference", "mlx"):
        assert_close(xcomp.compile(model, target=target)(tokens), model(tokens), dtype="float32", scale=10)


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


def _runnable(target: str) -> bool:
    from xcomp.backends import TARGETS, get_target
    return target in TARGETS and get_target(target).unavailable_reason() is None


@pytest.mark.skipif(not _runnable("cpp"), reason="the cpp target is not registered or has no compiler here")
@pytest.mark.parametrize("name", ["cnn", "llama_block", "qwen2"])
def test_cpp_against_mlx_eager(name):
    model, inputs = MODELS[name]
    got = xcomp.compile(model, target="cpp")(*inputs)
    assert isinstance(got, mx.array)
    assert_close(got, model(*inputs), dtype="float32", scale=10, msg=f"{name} on cpp")


def _coreml_package():
    from xcomp.backends import TARGETS
    if "coreml" not in TARGETS:
        pytest.skip("no coreml target in this xcomp")
    pytest.importorskip("coremltools")
    from xcomp.backends.coreml import evaluate
    return evaluate


@pytest.mark.parametrize("name,precision", [("mlp", "float32"), ("llama_block", "float32"),
                                            ("qwen2", "float32"), ("llama_block", "float16")])
def test_coreml_package_against_mlx_eager(name, precision):
    """The saved .mlpackage, reloaded and evaluated by the package evaluator (Core ML itself predicts
    only on macOS), against MLX eager."""
    evaluate = _coreml_package()
    model, inputs = MODELS[name]
    program = xcomp.capture(model, inputs)
    got = evaluate.run_program(program, [np.array(a) for a in inputs], compute_precision=precision)[0]
    assert_close(got, model(*inputs), dtype=precision, scale=10, msg=f"{name} on coreml {precision}")


def test_llama_mlxfn_to_coreml_package(tmp_path):
    """MLX to Core ML end to end: mlx-lm's Llama exported with mx.export_function to a .mlxfn file,
    converted to an .mlpackage (what `xcomp convert llama.mlxfn --to coreml` does), evaluated."""
    evaluate = _coreml_package()
    model, (tokens,) = MODELS["llama"]
    fn_path = str(tmp_path / "llama.mlxfn")
    mx.export_function(fn_path, lambda t: model(t), tokens)
    pkg = xcomp.export(fn_path, target="coreml", path=str(tmp_path / "llama.mlpackage"), compute_precision="float32")
    outs, _ = evaluate.evaluate_package(pkg, [np.array(tokens)])
    assert_close(outs[0], model(tokens), dtype="float32", scale=10)


def test_cnn_with_max_pool_exceeds_core_ml_rank():
    """Known limit: MLX's MaxPool2d is a rank-6 as_strided window view, above Core ML's rank 5."""
    evaluate = _coreml_package()
    model, inputs = MODELS["cnn"]
    with pytest.raises(xcomp.XcompError, match="rank"):
        evaluate.run_program(xcomp.capture(model, inputs), [np.array(a) for a in inputs],
                             compute_precision="float32")
