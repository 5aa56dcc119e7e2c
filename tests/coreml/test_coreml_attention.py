"""Attention on the coreml target: torch's fully-masked-row guard folded where no row can be fully
masked, MIL's iOS 18 `scaled_dot_product_attention` for the attention pattern, the capture that keeps
torch.export's graph as it is, and op counts no higher than coremltools' own packages. Every package
is checked through the package evaluator (coremltools' value_inference) against eager."""
from __future__ import annotations

import os
from collections import Counter

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("coremltools")
os.environ.setdefault("TQDM_DISABLE", "1")

import xcomp  # noqa: E402
from xcomp.backends.coreml.evaluate import evaluate_package, load_package  # noqa: E402

import models as M  # noqa: E402  (tests/coreml/models.py)
from helpers import assert_close  # noqa: E402

GUARD = {"xc.amax", "xc.eq", "xc.where", "xc.any"}
# Non-const MIL ops of coremltools 9.0's own packages (ct.convert(exported_program), float16, iOS16),
# from benchmarks/results/coreml_convert.md; coremltools is not run here (seconds per model).
COREMLTOOLS_OPS = {"mlp": 7, "cnn": 18, "encoder_layer": 36, "gpt_block": 25}


def _model(name):
    from xcomp.zoo import MODELS
    return MODELS[name]() if name in ("mlp", "cnn") else getattr(M, name)()


def _ops(path) -> Counter:
    program, _ = load_package(path)
    kinds: Counter = Counter()

    def walk(block):
        for op in block.operations:
            if op.op_type != "const":
                kinds[op.op_type] += 1
            for b in op.blocks:
                walk(b)
    walk(program.functions["main"])
    return kinds


def _eager(model, inputs):
    with torch.no_grad():
        return model(*inputs).numpy()


def _decomposed(model, inputs):
    """The capture through torch's core-ATen decomposition (sdpa as _safe_softmax math)."""
    from xcomp.frontends.torch_export import from_exported
    ep = torch.export.export(model, tuple(inputs), strict=False).run_decompositions()
    return from_exported(ep, decompose=False).program


def _export(program, inputs, path, **options):
    return xcomp.export(program, inputs, target="coreml", path=str(path), compute_precision="float32", **options)


def test_guard_folds_without_a_mask(tmp_path):
    """The encoder layer's attention has no mask: rows are never all -inf for finite inputs, so the
    guard goes; the package equals eager."""
    model, inputs = M.encoder_layer()
    program = _decomposed(model, inputs)
    assert GUARD & {op.name for op in program.walk()}          # torch's guard is in the capture
    optimized, _ = xcomp.optimize(program, "coreml")
    assert not GUARD & {op.name for op in optimized.walk()}
    path = _export(program, inputs, tmp_path / "e.mlpackage")
    outs, _ = evaluate_package(path, [x.numpy() for x in inputs])
    assert_close(outs[0], _eager(model, inputs))
    assert sum(_ops(path).values()) <= COREMLTOOLS_OPS["encoder_layer"]


def test_guard_folds_with_a_constant_mask_that_keeps_every_row(tmp_path):
    class Causal(torch.nn.Module):
        def forward(self, q, k, v):
            keep = torch.ones(6, 6, dtype=torch.bool).tril()
            return torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=keep)
    torch.manual_seed(0)
    inputs = tuple(torch.randn(2, 3, 6, 8) for _ in range(3))
    program = xcomp.capture(Causal(), inputs)        # a mask: torch's decomposition, with the guard
    optimized, _ = xcomp.optimize(program, "coreml")
    assert not GUARD & {op.name for op in optimized.walk()}
    path = _export(program, inputs, tmp_path / "c.mlpackage")
    outs, _ = evaluate_package(path, [x.numpy() for x in inputs])
    assert_close(outs[0], _eager(Causal(), inputs))


def test_guard_stays_for_an_input_mask():
    class Masked(torch.nn.Module):
        def forward(self, q, keep):
            return torch.nn.functional.scaled_dot_product_attention(q, q, q, attn_mask=keep)
    q, keep = torch.randn(1, 2, 4, 8), torch.ones(4, 4, dtype=torch.bool)
    optimized, _ = xcomp.optimize(xcomp.capture(Masked(), (q, keep)), "coreml")
    assert {"xc.amax", "xc.eq", "xc.where"} <= {op.name for op in optimized.walk()}


def test_capture_keeps_unmasked_sdpa_and_decomposes_a_masked_one():
    model, inputs = M.encoder_layer()
    names = {op.name for op in xcomp.capture(model, inputs).walk()}
    assert "xc.sdpa" in names and not GUARD & names            # torch.export's graph as it is

    class Masked(torch.nn.Module):
        def forward(self, q, keep):
            return torch.nn.functional.scaled_dot_product_attention(q, q, q, attn_mask=keep)
    q, keep = torch.randn(1, 2, 4, 8), torch.ones(4, 4, dtype=torch.bool)
    assert "xc.sdpa" not in {op.name for op in xcomp.capture(Masked(), (q, keep)).walk()}


@pytest.mark.parametrize("name", ["gpt_block", "encoder_layer"])
@pytest.mark.parametrize("precision", ["float32", "float16"])
def test_ios18_maps_attention_to_mil_sdpa(tmp_path, name, precision):
    model, inputs = _model(name)
    path = xcomp.export(model, inputs, target="coreml", path=str(tmp_path / "a.mlpackage"),
                        minimum_deployment_target="iOS18", compute_precision=precision)
    kinds = _ops(path)
    assert kinds["scaled_dot_product_attention"] == 1 and "softmax" not in kinds
    outs, ev = evaluate_package(path, [x.numpy() for x in inputs])
    assert ev.oracles["coremltools"]["scaled_dot_product_attention"] == 1   # Apple's value_inference
    assert_close(outs[0], _eager(model, inputs), dtype="float16" if precision == "float16" else None)


@pytest.mark.parametrize("kind", ["masked_fill", "float_mask", "scale"])
def test_ios18_attention_forms(tmp_path, kind):
    """masked_fill(drop, -inf), an added float mask and a scale other than 1/sqrt(E) (q is scaled)."""
    torch.manual_seed(0)
    drop = torch.ones(5, 5, dtype=torch.bool).triu(1)
    bias = torch.randn(5, 5)

    class Attend(torch.nn.Module):
        def forward(self, q, k, v):
            s = q @ k.transpose(-1, -2) * (0.3 if kind == "scale" else 8 ** -0.5)
            if kind == "masked_fill":
                s = s.masked_fill(drop, float("-inf"))
            elif kind == "float_mask":
                s = s + bias
            return torch.softmax(s, dim=-1) @ v
    inputs = tuple(torch.randn(2, 3, 5, 8) for _ in range(3))
    path = _export(Attend(), inputs, tmp_path / "f.mlpackage", minimum_deployment_target="iOS18")
    assert _ops(path)["scaled_dot_product_attention"] == 1
    outs, _ = evaluate_package(path, [x.numpy() for x in inputs])
    assert_close(outs[0], _eager(Attend(), inputs))


def test_ios16_keeps_attention_in_parts(tmp_path):
    model, inputs = M.gpt_block()
    path = _export(model, inputs, tmp_path / "g.mlpackage")
    kinds = _ops(path)
    assert "scaled_dot_product_attention" not in kinds and kinds["softmax"] == 1


@pytest.mark.parametrize("name", sorted(COREMLTOOLS_OPS))
def test_no_more_mil_ops_than_coremltools(tmp_path, name):
    model, inputs = _model(name)
    path = xcomp.export(model, inputs, target="coreml", path=str(tmp_path / "m.mlpackage"))  # float16, iOS16
    assert sum(_ops(path).values()) <= COREMLTOOLS_OPS[name], _ops(path)


@pytest.mark.parametrize("name", ["gpt_block", "encoder_layer"])
def test_symbolic_length_attention(tmp_path, name):
    """A flexible package (sequence length symbolic): the guard folds (the zero is a `full` over the
    symbolic shape), the causal mask's double negation cancels, iOS 18's sdpa at two lengths."""
    model, (x,) = getattr(M, name)()
    arg = "x" if name == "gpt_block" else "src"
    path = xcomp.export(model, (x,), target="coreml", path=str(tmp_path / "d.mlpackage"), dynamic={arg: {1: "S"}},
                        minimum_deployment_target="iOS18", compute_precision="float32")
    kinds = _ops(path)
    assert "logical_not" not in kinds and "reduce_max" not in kinds and "select" not in kinds
    assert kinds["scaled_dot_product_attention"] == 1   # encoder_layer: its sdpa kept as exported
    for length in (5, 12):
        xs = torch.randn(x.shape[0], length, x.shape[2])
        outs, _ = evaluate_package(path, [xs.numpy()])
        assert_close(outs[0], _eager(model, (xs,)))
