"""`torch.compile(model, backend="xcomp", options={"target": ...})` against PyTorch eager."""
from __future__ import annotations

import logging
import subprocess
import sys

import pytest
import torch

import xcomp
from xcomp.backends import TARGETS, get_target
from xcomp.zoo import MODELS

from helpers import assert_close

RUNNABLE = [t for t in TARGETS if get_target(t).unavailable_reason() is None]


@pytest.fixture(autouse=True)
def _fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def _compiled(model, target, **options):
    return torch.compile(model, backend="xcomp", options={"target": target, **options})


# every zoo model on reference and mlx; the GPT block on every other target that runs here
ZOO_CASES = [(m, t) for m in sorted(MODELS) for t in ("reference", "mlx")] + \
    [("gpt_block", t) for t in RUNNABLE if t not in ("reference", "mlx")]


@pytest.mark.parametrize("name,target", ZOO_CASES)
def test_zoo_models_match_eager(name, target, caplog):
    model, inputs = MODELS[name]()
    with torch.no_grad():
        expected = model(*inputs)
        with caplog.at_level(logging.INFO, logger="xcomp.dynamo"):
            actual = _compiled(model, target)(*inputs)
    assert isinstance(actual, torch.Tensor)
    assert_close(actual, expected, scale=10)
    assert "runs eagerly" not in caplog.text
    assert "graph of" in caplog.text  # xcomp compiled the graph


def test_inference_graph_freezes_weights_and_fuses():
    """Parameters become weights (batch norm folds into the convs): the same op counts as
    xcomp.compile, whose figures the README reports (CNN 23 -> 17 ops)."""
    from xcomp.frontends import dynamo
    model, inputs = MODELS["cnn"]()
    built = []
    original = dynamo.GraphRunner._build

    def spy(self, gm):
        entry = original(self, gm)
        built.append(entry[0])
        return entry
    dynamo.GraphRunner._build = spy
    try:
        with torch.no_grad():
            _compiled(model, "reference")(*inputs)
    finally:
        dynamo.GraphRunner._build = original
    direct = xcomp.compile(model, target="reference")
    direct(*inputs)
    assert len(built) == 1
    assert built[0].op_count() == direct.program().op_count()
    assert len(built[0].weights) == len(direct.program().weights)


def test_training_graph_forward_runs_through_xcomp_and_backward_eagerly():
    model, inputs = MODELS["mlp"]()
    x = inputs[0].clone().requires_grad_(True)
    x_ref = inputs[0].clone().requires_grad_(True)
    out = _compiled(model, "reference")(x)
    expected = model(x_ref)
    assert_close(out, expected.detach())
    params = [p.grad for p in model.parameters()]
    model.zero_grad()
    out.sum().backward()
    compiled_grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    expected.sum().backward()
    assert_close(x.grad, x_ref.grad)
    assert all(g is None for g in params)
    for got, want in zip(compiled_grads, [p.grad for p in model.parameters()]):
        assert_close(got, want, scale=10)


def test_dynamic_true_compiles_per_concrete_shape(caplog):
    """Dynamo traces one symbolic-shape graph; xcomp specializes it per concrete shape."""
    model, _ = MODELS["mlp"]()
    compiled = torch.compile(model, backend="xcomp", dynamic=True, options={"target": "reference"})
    with torch.no_grad(), caplog.at_level(logging.INFO, logger="xcomp.dynamo"):
        for rows in (3, 5, 3):
            x = torch.randn(rows, 64)
            assert_close(compiled(x), model(x))
    assert caplog.text.count("graph of") == 2  # one build per shape, the repeat is cached


def _spectrum(x):
    return torch.fft.rfft(x).abs() + 1  # aten._fft_r2c has no converter (complex values)


def test_graph_with_an_unsupported_op_falls_back_eagerly_with_a_warning(caplog):
    """The graph runs eagerly, logged with the op's name; `fallback=False` raises xcomp's error."""
    x = torch.randn(4, 8)
    with caplog.at_level(logging.WARNING, logger="xcomp.dynamo"):
        out = _compiled(_spectrum, "reference")(x)
    assert_close(out, _spectrum(x))
    assert "_fft_r2c" in caplog.text and "runs eagerly" in caplog.text
    torch._dynamo.reset()
    with pytest.raises(Exception, match="_fft_r2c") as info:
        _compiled(_spectrum, "reference", fallback=False)(x)
    cause = info.value
    while cause is not None and not isinstance(cause, xcomp.UnsupportedOpError):
        cause = cause.__cause__ or getattr(cause, "inner_exception", None)
    assert isinstance(cause, xcomp.UnsupportedOpError)


class Branchy(torch.nn.Module):
    """Graph breaks: a print of a tensor value and a Python branch on `.item()`."""

    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(8, 8)

    def forward(self, x):
        y = torch.relu(self.fc(x))
        print("mean", float(y.mean()))
        if y.sum().item() > 0:
            return y * 2 + 1
        return torch.tanh(y) - 1


@pytest.mark.parametrize("target", ["reference", "mlx"])
def test_graph_breaks_and_shape_changes_run_both_branches(target, capsys):
    torch.manual_seed(0)
    model = Branchy().eval()
    compiled = _compiled(model, target)
    with torch.no_grad():
        for rows in (4, 6, 9):  # the third shape makes Dynamo compile symbolic-shape graphs
            x = torch.randn(rows, 8)
            for sign in (1.0, -100.0):  # both sides of the .item() branch
                assert_close(compiled(x * sign), model(x * sign), scale=10)
    from torch._dynamo.utils import counters
    assert sum(counters["graph_break"].values()) >= 2
    assert "mean" in capsys.readouterr().out


def test_hf_model_that_torch_export_rejects():
    """GPT-2 from a small config returns a DynamicCache that torch.export cannot capture;
    torch.compile(backend="xcomp") runs it and matches eager."""
    transformers = pytest.importorskip("transformers")
    transformers.logging.set_verbosity_error()
    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=64, n_embd=32, n_layer=2, n_head=4, n_positions=32,
                                     bos_token_id=0, eos_token_id=0)
    model = transformers.GPT2LMHeadModel(config).eval()
    ids = torch.randint(0, 64, (2, 8))
    with pytest.raises(xcomp.CaptureError, match=r"DynamicCache.*torch.compile\(model, backend=\"xcomp\"\)"):
        xcomp.compile(model, target="reference")(ids)
    with torch.no_grad():
        expected = model(ids).logits
        actual = _compiled(model, "reference")(ids).logits
    assert_close(actual, expected, scale=10)


def test_torch_compile_runs_what_torch_export_refused():
    x = torch.randn(3, 5)
    compiled = torch.compile(lambda x: torch.cov(x), backend="xcomp", options={"target": "reference"})
    assert_close(compiled(x), torch.cov(x))


def test_unknown_option_is_an_xcomp_error():
    model, inputs = MODELS["mlp"]()
    with pytest.raises(Exception, match="unknown xcomp backend option"):
        torch.compile(model, backend="xcomp", options={"targte": "mlx"})(*inputs)


def test_backend_is_found_through_the_entry_point_without_importing_xcomp():
    code = ("import sys, torch\n"
            "assert 'xcomp' in torch._dynamo.list_backends()\n"
            "f = torch.compile(lambda x: torch.sin(x) * 2, backend='xcomp', options={'target': 'reference'})\n"
            "x = torch.randn(5)\n"
            "assert torch.allclose(f(x), torch.sin(x) * 2, atol=1e-6)\n"
            "assert 'xcomp.frontends.dynamo' in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300)


def test_dynamo_graphs_go_through_the_compile_cache(tmp_path, monkeypatch):
    """A Dynamo graph is optimized through the persistent program cache: a second backend instance
    (as a new process would make) loads the optimized program instead of running the passes."""
    import xcomp.api as api
    from xcomp.cache import Cache
    monkeypatch.setenv("XCOMP_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("XCOMP_CACHE", raising=False)
    runs = []
    real = api.optimize
    monkeypatch.setattr(api, "optimize", lambda *a, **k: runs.append(1) or real(*a, **k))
    model, inputs = MODELS["mlp"]()
    for _ in range(2):
        torch._dynamo.reset()
        out = torch.compile(model, backend="xcomp", options={"target": "reference"})(*inputs)
        with torch.no_grad():
            assert_close(out, model(*inputs))
    assert len(runs) == 1
    assert len(list(Cache("programs")._entries())) == 1
