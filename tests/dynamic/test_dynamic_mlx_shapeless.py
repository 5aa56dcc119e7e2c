"""The `mlx` target's shapeless path: symbolic programs compiled with `mx.compile(shapeless=True)`
where the lowered graph allows it, one traced graph per shape otherwise; results against eager."""
from __future__ import annotations

import numpy as np
import pytest

mx = pytest.importorskip("mlx.core")
torch = pytest.importorskip("torch")

import xcomp  # noqa: E402
from xcomp.backends.mlx.shapeless import Runner, reshape_plan  # noqa: E402
from xcomp.ir.types import DType  # noqa: E402
from xcomp.tolerances import tolerance  # noqa: E402


def _runner(compiled):
    return compiled.cache[compiled._last_key].runner


def _close(got, want):
    rtol, atol = tolerance(DType.F32)
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=rtol, atol=atol * 10)


@pytest.mark.parametrize("src, dst, plan", [
    (("B", "S", 64), ("B", "S", 4, 16), [("unflatten", {"axis": 2, "shape": (4, 16)})]),
    (("B", "S", 4, 16), ("B", "S", 64), [("flatten", {"start_axis": 2, "end_axis": 3})]),
    (("2*S", 32), (2, "S", 32), [("reshape", {"shape": (2, -1, 32)})]),
    (("B", "S"), ("B", 1, "S"), [("expand_dims", {"axis": 1})]),
    (("B*S", 32), ("B", "S", 32), None),  # two sizes out of one: MLX cannot infer them
])
def test_reshape_plans(src, dst, plan):
    assert reshape_plan(src, dst) == plan


def test_gpt_block_runs_shapeless_at_every_length():
    from xcomp.zoo import gpt_block
    model, (x,) = gpt_block()
    compiled = xcomp.compile(model, target="mlx", dynamic={"x": {1: "seq"}})
    for t in (8, 3, 33, 1, 64):
        x = torch.randn(2, t, 128, generator=torch.Generator().manual_seed(t))
        with torch.no_grad():
            _close(compiled(x), model(x))
    runner = _runner(compiled)
    assert isinstance(runner, Runner) and runner.shapeless, runner.reason
    assert compiled.stats.builds == 1


def _rows_softmax(x):
    return mx.softmax(x.reshape(-1, x.shape[-1]) * 2, axis=-1).reshape(x.shape)  # B*S rows, split again


def test_two_sizes_merged_and_split_again_trace_per_shape():
    compiled = xcomp.compile(_rows_softmax, target="mlx", dynamic={0: {0: "B", 1: "S"}})
    for shape in [(2, 8, 16), (3, 5, 16), (1, 9, 16)]:
        x = mx.random.normal(shape)
        _close(compiled(x), _rows_softmax(x))
    runner = _runner(compiled)
    assert not runner.shapeless and "xc.reshape" in runner.reason


def test_linear_layers_keep_batch_and_sequence_apart_and_run_shapeless():
    import mlx.nn as nn
    mx.random.seed(0)
    mlp = nn.Sequential(nn.Linear(16, 32), nn.GELU(), nn.Linear(32, 16))
    compiled = xcomp.compile(mlp, target="mlx", dynamic={0: {0: "B", 1: "S"}})
    for shape in [(2, 8, 16), (3, 5, 16), (1, 9, 16)]:
        x = mx.random.normal(shape)
        _close(compiled(x), mlp(x))
    runner = _runner(compiled)
    assert runner.shapeless, runner.reason  # AddMM over B*S rows captured as a (B, S, K) matmul
    assert not any("B*S" in str(op.results[0].type) for op in compiled.program().walk() if op.results)


def test_shapeless_off_by_environment(monkeypatch):
    from xcomp.zoo import gpt_block
    monkeypatch.setenv("XCOMP_MLX_SHAPELESS", "0")
    model, (x,) = gpt_block()
    compiled = xcomp.compile(model, target="mlx", dynamic={"x": {1: "seq"}})
    with torch.no_grad():
        _close(compiled(x), model(x))
    assert not _runner(compiled).shapeless


def test_a_graph_that_bakes_a_shape_falls_back_per_shape():
    from xcomp.zoo import gpt_block
    model, (x,) = gpt_block()
    compiled = xcomp.compile(model, target="mlx", dynamic={"x": {1: "seq"}})
    compiled(x)
    program = compiled.program()
    baked = Runner(lambda inputs: [mx.zeros(inputs[0].shape)], program)  # mx.zeros bakes its shape in
    assert baked.shapeless
    assert baked([mx.ones((2, 8, 128))])[0].shape == (2, 8, 128)
    out = baked([mx.ones((2, 5, 128))])  # replayed shapeless it gives (2, 8, 128): checked, traced again
    assert not baked.shapeless and "shapes" in baked.reason
    assert out[0].shape == (2, 5, 128)


def test_scripted_encoder_layer_runs_shapeless_with_batch_and_sequence_symbolic():
    import warnings
    torch.manual_seed(0)
    layer = torch.nn.TransformerEncoderLayer(16, 2, 32, batch_first=True, dropout=0.0).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scripted = torch.jit.script(layer)
    compiled = xcomp.compile(scripted, target="mlx", dynamic={"src": {0: "B", 1: "S"}})
    for b, t in [(2, 6), (3, 10), (1, 3), (2, 17)]:
        x = torch.randn(b, t, 16, generator=torch.Generator().manual_seed(t))
        with torch.no_grad():
            _close(compiled(x), scripted(x))
    runner = _runner(compiled)
    assert runner.shapeless, runner.reason  # non-causal sdpa reads only static head sizes
    assert compiled.stats.captures == 1
