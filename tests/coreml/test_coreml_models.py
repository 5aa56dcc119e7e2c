"""Models through the coreml target, checked on the saved package (package evaluator) against eager.

The zoo models in float32 and float16 (tolerances from xcomp/tolerances.py), the five models
coremltools' own converter fails on, and a test that it still fails on them (so the claim stays
true). On macOS the same packages also run through `MLModel.predict`.
"""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("coremltools")
os.environ.setdefault("TQDM_DISABLE", "1")

import xcomp  # noqa: E402
from xcomp.backends.coreml.evaluate import evaluate_package  # noqa: E402

import models as M  # noqa: E402  (tests/coreml/models.py)
from helpers import assert_close  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
ON_MAC = sys.platform == "darwin"


def _numpy(inputs):
    return [x.numpy() if isinstance(x, torch.Tensor) else x for x in inputs]


def _eager(model, inputs):
    with torch.no_grad():
        out = model(*inputs)
    return out.numpy() if isinstance(out, torch.Tensor) else out[0].numpy()


def _predict(path, arrays):
    """Core ML's own predictions of a saved package (macOS only)."""
    import json
    import coremltools as ct
    from xcomp.backends.coreml.evaluate import from_package_outputs, to_package_inputs
    from xcomp.backends.coreml.target import METADATA_KEY
    model = ct.models.MLModel(path)
    signature = json.loads(model.user_defined_metadata[METADATA_KEY])
    outs = model.predict(to_package_inputs(signature, arrays))
    return from_package_outputs(signature, [outs[o["name"]] for o in signature["outputs"]])


def _check_package(path, inputs, want, precision):
    """The package evaluator's result against eager; on macOS, Core ML's predictions too."""
    arrays = [x for x in _numpy(inputs) if isinstance(x, np.ndarray)]
    outs, ev = evaluate_package(path, arrays)
    dtype = "float16" if precision == "float16" else None
    assert_close(outs[0], want, dtype=dtype, msg=f"{path}")
    assert sum(ev.oracles["coremltools"].values()) > 0
    if ON_MAC:
        assert_close(_predict(path, arrays)[0], want, dtype=dtype, msg=f"{path} (MLModel.predict)")
    return ev


@pytest.mark.parametrize("precision", ["float32", "float16"])
@pytest.mark.parametrize("name", ["mlp", "cnn", "encoder_layer", "gpt_block"])
def test_zoo_model_package_matches_eager(name, precision, tmp_path):
    from xcomp.zoo import MODELS
    model, inputs = MODELS[name]()
    path = xcomp.export(model, inputs, target="coreml", path=str(tmp_path / f"{name}.mlpackage"),
                        compute_precision=precision)
    _check_package(path, inputs, _eager(model, inputs), precision)


def _xcomp_package(name, tmp_path, precision="float32"):
    """(package path, numpy inputs for it, eager output) for one of the five models."""
    if name == "alias_where":
        from xcomp.frontends.torch_export import from_exported
        model, inputs, ep = M.alias_where()
        program = from_exported(ep).program
        path = xcomp.export(program, inputs, target="coreml", path=str(tmp_path / "m.mlpackage"),
                            compute_precision=precision)
        return path, inputs, _eager(model, inputs)
    model, inputs = getattr(M, name)()
    if name == "scripted_loop":
        pytest.importorskip("xcomp.frontends.torchscript")
    path = xcomp.export(model, inputs, target="coreml", path=str(tmp_path / "m.mlpackage"),
                        compute_precision=precision)
    return path, inputs, _eager(model, inputs)


@pytest.mark.parametrize("name", M.CT_FAILS)
def test_models_coremltools_fails_on_convert_with_xcomp(name, tmp_path):
    if name == "bert":
        pytest.importorskip("transformers")
    path, inputs, want = _xcomp_package(name, tmp_path)
    _check_package(path, inputs, want, "float32")


def _ct_own_path(name):
    """coremltools' own conversion of the model, the way the issue tried it."""
    import coremltools as ct
    if name == "alias_where":
        _, _, ep = M.alias_where()
        return ct.convert(ep.run_decompositions({}), convert_to="mlprogram")
    model, inputs = getattr(M, name)()
    if name == "scripted_loop":
        return ct.convert(model, inputs=[ct.TensorType(shape=inputs[0].shape), ct.TensorType(shape=())],
                          convert_to="mlprogram")
    traced = torch.jit.trace(model, inputs)
    return ct.convert(traced, inputs=[ct.TensorType(shape=x.shape) for x in inputs], convert_to="mlprogram")


@pytest.mark.parametrize("name", M.CT_FAILS)
def test_coremltools_own_converter_fails_on_them(name):
    if name == "bert":
        pytest.importorskip("transformers")
    with pytest.raises(Exception) as info:
        _ct_own_path(name)
    assert not isinstance(info.value, xcomp.XcompError)


def test_compile_names_macos_elsewhere():
    if ON_MAC:
        pytest.skip("this machine runs Core ML predictions")
    with pytest.raises(xcomp.TargetError, match="macOS"):
        xcomp.compile(torch.nn.Linear(4, 4), target="coreml")


@pytest.mark.skipif(not ON_MAC, reason="Core ML predictions (MLModel.predict) need macOS")
@pytest.mark.parametrize("name", ["mlp", "cnn", "gpt_block"])
def test_predict_on_macos(name):
    from xcomp.zoo import MODELS
    model, inputs = MODELS[name]()
    out = xcomp.compile(model, target="coreml", compute_precision="float32")(*inputs)
    assert_close(out, _eager(model, inputs))


def test_unknown_option_and_bad_precision_are_xcomp_errors(tmp_path):
    model, inputs = torch.nn.Linear(4, 4), (torch.randn(2, 4),)
    with pytest.raises(xcomp.TargetError, match="no option"):
        xcomp.export(model, inputs, target="coreml", path=str(tmp_path / "a"), precision="float32")
    with pytest.raises(xcomp.TargetError, match="compute_precision"):
        xcomp.export(model, inputs, target="coreml", path=str(tmp_path / "b"), compute_precision="int8")
    with pytest.raises(xcomp.TargetError, match="takes no options"):
        xcomp.export(model, inputs, target="reference", path=str(tmp_path / "c"), compute_precision="float32")


@pytest.mark.parametrize("name", ["cnn", "gpt_block"])
def test_float16_built_directly_equals_coremltools_casts(tmp_path, monkeypatch, name):
    """float16 precision builds the MIL program in fp16 (no add_fp16_cast): the evaluator's results
    are bit-identical to the float32-built program cast by coremltools' pass (the fallback)."""
    import xcomp.backends.coreml.build as build
    from xcomp.errors import LoweringError
    from xcomp.zoo import MODELS
    monkeypatch.setenv("XCOMP_CACHE", "0")   # both packages built here, not one read from the program cache
    model, inputs = MODELS[name]()
    direct = xcomp.export(model, inputs, target="coreml", path=str(tmp_path / "d.mlpackage"))
    original = build.build_mil

    def refuse_fp16(*args, **kwargs):
        if kwargs.get("float16"):
            raise LoweringError("fallback forced by the test")
        return original(*args, **kwargs)
    monkeypatch.setattr(build, "build_mil", refuse_fp16)
    cast = xcomp.export(model, inputs, target="coreml", path=str(tmp_path / "c.mlpackage"))
    arrays = _numpy(inputs)
    a, b = evaluate_package(direct, arrays)[0][0], evaluate_package(cast, arrays)[0][0]
    assert np.array_equal(a, b)
    assert_close(a, _eager(model, inputs), dtype="float16")
