"""Symbolic sizes through the TorchScript frontend: scripted and traced modules compiled once with
`dynamic=`, called at several lengths on `reference` and `mlx`, compared with the TorchScript module."""
from __future__ import annotations

import math
import os
import sys
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "torchscript"))

import xcomp  # noqa: E402
from xcomp.backends import TARGETS, get_target  # noqa: E402
from xcomp.errors import CaptureError  # noqa: E402
from xcomp.tolerances import tolerance  # noqa: E402
from xcomp.ir.types import DType  # noqa: E402
from ts_cases import Cells, Encoder, Heads, seeded, slice_assign  # noqa: E402

TARGETS_HERE = [t for t in ("reference", "mlx") if t in TARGETS and get_target(t).unavailable_reason() is None]
nn = torch.nn


class TinyGPT(nn.Module):
    """A causal self-attention block whose sizes all come from the input: view/reshape with computed
    sizes, an arange-built causal mask, a loop-free scripted forward."""

    def __init__(self, d: int = 32, heads: int = 4):
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.size(0), x.size(1), x.size(2)
        hd = d // self.heads
        q, k, v = self.qkv(self.ln1(x)).chunk(3, dim=-1)
        q = q.view(b, t, self.heads, hd).transpose(1, 2)
        k = k.view(b, t, self.heads, hd).transpose(1, 2)
        v = v.view(b, t, self.heads, hd).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hd))
        pos = torch.arange(t)
        att = att.masked_fill(pos.view(1, t) > pos.view(t, 1), float("-inf"))
        y = torch.softmax(att, dim=-1) @ v
        x = x + self.proj(y.transpose(1, 2).reshape(b, t, d))
        return x + self.mlp(self.ln2(x))


def _quiet(fn, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args)


def _close(got, want):
    got, want = np.asarray(got), want.detach().numpy()
    assert got.shape == want.shape
    rtol, atol = tolerance(DType.F32)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol * 10)


def _run_lengths(module, dynamic, shapes, target):
    compiled = xcomp.compile(module, target=target, dynamic=dynamic)
    eager = compiled.fn  # a .pt path is loaded by compile
    for shape in shapes:
        x = torch.randn(*shape, generator=torch.Generator().manual_seed(sum(shape)))
        with torch.no_grad():
            want = eager(x)
        got = compiled(x)
        for g, w in zip(got if isinstance(got, tuple) else [got], want if isinstance(want, tuple) else [want]):
            _close(g, w)
    return compiled


@pytest.mark.parametrize("target", TARGETS_HERE)
def test_scripted_gpt_block_one_capture_at_every_length(target):
    module = _quiet(torch.jit.script, seeded(TinyGPT).eval())
    compiled = _run_lengths(module, {"x": {0: "B", 1: "S"}}, [(2, 5, 32), (1, 1, 32), (3, 17, 32), (2, 64, 32)], target)
    assert (compiled.stats.captures, compiled.stats.builds, compiled.stats.calls) == (1, 1, 4)
    arg = compiled.program().main.args[0].type
    assert tuple(arg.shape) == ("B", "S", 32)


@pytest.mark.parametrize("target", TARGETS_HERE)
def test_scripted_encoder_dynamic_batch_and_sequence(target):
    module = _quiet(torch.jit.script, seeded(Encoder).eval())
    compiled = _run_lengths(module, {"x": {0: "B", 1: "S"}}, [(2, 5, 8), (3, 9, 8), (1, 1, 8), (2, 30, 8)], target)
    assert compiled.stats.captures == 1 and compiled.stats.builds == 1


@pytest.mark.parametrize("target", TARGETS_HERE)
def test_loop_over_a_symbolic_size_with_optional_state_is_peeled(target):
    module = _quiet(torch.jit.script, seeded(Cells).eval())
    compiled = _run_lengths(module, {"xs": {1: "T"}}, [(2, 3, 4), (2, 7, 4), (2, 1, 4)], target)
    assert compiled.stats.captures == 1
    assert any(op.name == "xc.loop" for op in compiled.program(optimized=False).walk())


def test_size_arithmetic_is_symbolic_in_the_ir():
    module = _quiet(torch.jit.script, seeded(Heads).eval())
    program = xcomp.capture(module, (torch.randn(2, 3, 8),), dynamic={"x": {0: "B", 1: "S"}})
    assert tuple(program.main.result_types[0].shape) == ("B", "2*S", 4)
    assert {str(g) for g in program.guards} == {"B >= 1", "S >= 1"}


def test_dynamic_true_keeps_dims_the_program_pins_static():
    module = _quiet(torch.jit.script, seeded(Heads).eval())  # Linear(8, 8): the last dim is 8
    compiled = _run_lengths(module, True, [(2, 3, 8), (4, 7, 8)], "reference")
    dims = compiled.program().main.args[0].type.shape
    assert isinstance(dims[0], str) and isinstance(dims[1], str) and dims[2] == 8
    assert compiled.stats.captures == 1


def test_traced_size_arithmetic_stays_symbolic():
    traced = _quiet(torch.jit.trace, seeded(Heads).eval(), (torch.randn(2, 3, 8),))
    compiled = _run_lengths(traced, {"x": {1: "T"}}, [(2, 3, 8), (2, 11, 8)], "reference")
    assert compiled.stats.captures == 1


class _BakedSize(nn.Module):
    def forward(self, x):
        n = int(math.sqrt(x.shape[1])) ** 2  # Python arithmetic on a size: the tracer records 16
        return x + torch.ones(n, 8)


def test_traced_module_with_a_baked_size_raises_naming_scripting():
    traced = _quiet(torch.jit.trace, _BakedSize(), (torch.randn(2, 16, 8),))
    with pytest.raises(CaptureError, match=r"size 'T' cannot stay symbolic.*torch\.jit\.script"):
        xcomp.compile(traced, target="reference", dynamic={"x": {1: "T"}})(torch.randn(2, 16, 8))


@pytest.mark.parametrize("target", TARGETS_HERE)
def test_writes_through_views_over_a_symbolic_axis(target):
    # slice_assign: out[:, t] = ... in a loop over x.size(1), out[0, 1:] = 7.0 in a branch
    module = _quiet(torch.jit.script, slice_assign)
    compiled = xcomp.compile(module, target=target, dynamic={"x": {1: "T"}})
    h = torch.randn(4, generator=torch.Generator().manual_seed(1))
    for t, sign in [(3, 1), (6, -1), (6, 1), (1, 1)]:
        x = sign * (torch.rand(2, t, generator=torch.Generator().manual_seed(t)) + 0.1)
        _close(compiled(x, h), module(x, h))
    assert compiled.stats.captures == 1


def _fixed_view(x: torch.Tensor) -> torch.Tensor:
    return x.view(2, 16 * 8)  # a size written into the code: the program holds for T == 16 only


def test_a_named_dim_the_program_pins_raises():
    module = _quiet(torch.jit.script, _fixed_view)
    with pytest.raises(CaptureError, match=r"size 'T' must be 16"):
        xcomp.compile(module, target="reference", dynamic={"x": {1: "T"}})(torch.randn(2, 16, 8))


def test_automatic_dynamic_recaptures_once_and_saved_files_take_dynamic(tmp_path):
    module = _quiet(torch.jit.script, seeded(Encoder).eval())
    auto = _run_lengths(module, None, [(2, 5, 8), (2, 7, 8), (2, 11, 8), (2, 3, 8)], "reference")
    assert auto.stats.captures == 2  # static first, then the changing dim symbolic
    assert isinstance(auto.program().main.args[0].type.shape[1], str)
    path = str(tmp_path / "encoder.pt")
    _quiet(torch.jit.save, module, path)
    loaded = _run_lengths(path, {"x": {1: "S"}}, [(2, 5, 8), (2, 9, 8)], "reference")
    assert loaded.stats.captures == 1


class _Embed(nn.Module):
    def __init__(self):
        super().__init__()
        self.e, self.pos = nn.Embedding(50, 16), nn.Parameter(torch.randn(64, 16))

    def forward(s, tok):  # `s`, not `self`: parameter names come from the scripted schema
        return s.e(tok) + s.pos[:tok.size(1)]


class _Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.m = nn.MultiheadAttention(16, 2, batch_first=True)

    def forward(self, x):
        t = x.size(1)
        return self.m(x, x, x, attn_mask=torch.triu(torch.ones(t, t, dtype=torch.bool), 1), need_weights=False)[0]


class _ConvPool(nn.Module):
    def __init__(self):
        super().__init__()
        self.c, self.p = nn.Conv1d(16, 8, 3, padding=1), nn.MaxPool1d(2)

    def forward(self, x):
        return self.p(torch.relu(self.c(x.transpose(1, 2)))).mean(-1)


class _PadCat(nn.Module):
    def forward(self, x):
        y = nn.functional.pad(x, (0, 0, 1, 2))
        return torch.cat([y, y[:, -1:]], dim=1).cumsum(1).softmax(-1)


@pytest.mark.parametrize("cls, name, make", [
    (_Embed, "tok", lambda t: torch.randint(0, 50, (2, t), generator=torch.Generator().manual_seed(t))),
    (_Attention, "x", lambda t: torch.randn(2, t, 16)), (_ConvPool, "x", lambda t: torch.randn(2, t, 16)),
    (_PadCat, "x", lambda t: torch.randn(2, t, 16))], ids=["embedding", "mha_mask", "conv_pool", "pad_cat"])
def test_common_modules_with_a_symbolic_sequence(cls, name, make):
    module = _quiet(torch.jit.script, seeded(cls).eval())
    compiled = xcomp.compile(module, target="reference", dynamic={name: {1: "T"}})
    for t in (6, 11, 3):
        x = make(t)
        with torch.no_grad():
            _close(compiled(x), module(x))
    assert compiled.stats.captures == 1
