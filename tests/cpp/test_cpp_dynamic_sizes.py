"""Symbolic sizes on the cpp target: one C++ library for every size binding, the sizes run-time
arguments of the generated code (`xc_run_sizes`), the arena grown per call from the size
expressions. Checked against torch eager (xcomp/tolerances.py) and through `compiled.stats`."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cpp_source import needs_cpp
import xcomp
from helpers import assert_close
from xcomp import GuardError, XcompError
from xcomp.backends.cpp.emit import emit_program
from xcomp.backends.cpp.sizes import NeedsStaticSizes, Sz, cpp, dim, prod
from xcomp.zoo import encoder_layer, gpt_block

pytestmark = needs_cpp

FAST = [1, 2, 7, 16, 33, 64]              # the default tier's lengths
SLOW = [1, 2, 7, 16, 33, 100, 257, 512]   # the 8 lengths, 1 to 512
MODELS = {"gpt_block": gpt_block, "encoder_layer": encoder_layer}


def _eager(model, *xs):
    with torch.no_grad():
        return model(*xs)


def _one_build(compiled):
    s = compiled.stats
    assert (s.captures, s.builds, s.specializations, s.static_ops) == (1, 1, 0, ()), s
    assert len(compiled.cache) == 1
    assert "xc_run_sizes" in compiled.source()


def _models(name, lengths, dynamic):
    model, _ = MODELS[name](batch=2, seq=8, dim=32, heads=4)
    compiled = xcomp.compile(model, target="cpp", dynamic=dynamic)
    for i, t in enumerate(lengths):
        x = torch.randn(1 + i % 3, t, 32)
        assert_close(compiled(x), _eager(model, x), scale=4.0, msg=f"{name} on cpp at length {t}")
    _one_build(compiled)
    assert compiled.stats.calls == len(lengths)
    arg = compiled.program().main.args[0].type
    assert isinstance(arg.shape[0], str) and isinstance(arg.shape[1], str) and arg.shape[2] == 32


@pytest.mark.parametrize("name, dynamic", [("gpt_block", {"x": {0: "batch", 1: "seq"}}), ("encoder_layer", True)])
def test_one_library_for_every_length(name, dynamic):
    _models(name, FAST, dynamic)


@pytest.mark.slow
@pytest.mark.parametrize("name, dynamic", [("gpt_block", {"x": {0: "batch", 1: "seq"}}), ("encoder_layer", True)])
def test_one_library_for_eight_lengths_up_to_512(name, dynamic):
    _models(name, SLOW, dynamic)


def test_static_programs_keep_their_entry_point():
    model, ex = gpt_block(batch=1, seq=8, dim=32, heads=4)
    unit = emit_program(xcomp.optimize(xcomp.capture(model, ex), "cpp")[0])
    assert unit.sizes == [] and "int xc_run(" in unit.source and "xc_run_sizes" not in unit.source
    assert "xs_" not in unit.source and "xc_grow" not in unit.source


def test_arena_is_sized_per_call_and_grows_only_for_larger_sizes():
    model, _ = gpt_block(batch=2, seq=8, dim=32, heads=4)
    compiled = xcomp.compile(model, target="cpp", dynamic={"x": {0: "batch", 1: "seq"}})
    x = torch.randn(1, 4, 32)
    compiled(x)
    unit = compiled.cache[compiled._last_key].runner.unit
    assert unit.sizes == ["batch", "seq"] and unit.arena_dynamic
    small, big = unit.arena_at({"batch": 1, "seq": 4}), unit.arena_at({"batch": 2, "seq": 40})
    assert big > small >= unit.arena_bytes
    src = unit.source
    assert "xc_grow(m, xc_need)" in src and "const int64_t xs_seq = xc_sizes[1];" in src
    for t in (40, 4, 40, 9):   # growing, then sizes already seen: correct either way
        x = torch.randn(2, t, 32)
        assert_close(compiled(x), _eager(model, x), scale=4.0)


class Pairs(torch.nn.Module):
    """Joins neighbouring tokens: needs an even sequence length."""

    def forward(self, x):
        b, s, d = x.shape
        return (x.reshape(b, -1, 2 * d) * 2).sum(-1)


def test_odd_length_breaks_the_reshape_guard():
    m = Pairs()
    compiled = xcomp.compile(m, target="cpp", dynamic=True)
    for s in (8, 2, 30):
        x = torch.randn(2, s, 4)
        assert_close(compiled(x), m(x))
    assert any("%2" in str(g) for g in compiled.program().guards)
    with pytest.raises(GuardError, match="%2"):
        compiled(torch.randn(2, 7, 4))
    assert compiled.stats.guard_failures == 1
    x = torch.randn(3, 12, 4)                      # still usable after the failure
    assert_close(compiled(x), m(x))
    _one_build(compiled)


def test_automatic_mode_never_returns_a_wrong_answer_on_a_failed_guard():
    m = Pairs()
    compiled = xcomp.compile(m, target="cpp")
    for s in (8, 6, 10):
        x = torch.randn(2, s, 4)
        assert_close(compiled(x), m(x))
    assert compiled.stats.captures == 2
    with pytest.raises(XcompError):                # recompiling for 7 fails as eager torch does
        compiled(torch.randn(2, 7, 4))
    assert compiled.stats.guard_failures == 1


class Mixed(torch.nn.Module):
    """Elementwise with broadcasting, a reduction over a symbolic axis, a mean, matmuls (batched,
    against a weight), a transpose, a gather and a slice, over symbolic batch and length."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.randn(8, 6))
        self.emb = torch.nn.Embedding(11, 8)

    def forward(self, x, idx):
        h = torch.tanh(x * 0.5 + 1.0) + self.emb(idx)            # (B, S, 8)
        scores = h @ h.transpose(1, 2)                            # (B, S, S)
        p = torch.softmax(scores, dim=-1)
        y = (p @ h) @ self.w                                      # (B, S, 6)
        m = y.mean(dim=1, keepdim=True)                           # over the symbolic length
        s = y.sum(dim=-1)                                         # (B, S)
        first = y[:, :1, :]
        return y - m + first, s.amax(dim=1), torch.cumsum(s, dim=1)


def test_elementwise_reduction_matmul_gather_over_symbolic_sizes():
    m = Mixed().eval()
    compiled = xcomp.compile(m, target="cpp", dynamic=True)
    for b, t in ((2, 5), (1, 1), (3, 17), (2, 64)):
        x, idx = torch.randn(b, t, 8), torch.randint(0, 11, (b, t))
        got, want = compiled(x, idx), _eager(m, x, idx)
        for g, w in zip(got, want):
            assert_close(g, w, scale=4.0, msg=f"at {b}x{t}")
    _one_build(compiled)


class Conv(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv1d(4, 8, 3, padding=1)
        self.conv2 = torch.nn.Conv1d(8, 8, 1)

    def forward(self, x):
        return self.conv2(F.relu(self.conv(x))).amax(-1)


def test_conv_over_a_symbolic_batch():
    m = Conv().eval()
    compiled = xcomp.compile(m, target="cpp", dynamic={"x": {0: "batch"}})
    for b in (1, 3, 8):
        x = torch.randn(b, 4, 16)
        assert_close(compiled(x), _eager(m, x), scale=4.0)
    _one_build(compiled)


def test_conv_over_a_symbolic_length_builds_per_size_and_says_why():
    """The direct convolution kernel's tiling needs the spatial size: per size binding, named."""
    m = Conv().eval()
    compiled = xcomp.compile(m, target="cpp", dynamic={"x": {0: "batch", 2: "length"}})
    for b, t in ((1, 16), (2, 9), (1, 16)):
        x = torch.randn(b, 4, t)
        assert_close(compiled(x), _eager(m, x), scale=4.0)
    s = compiled.stats
    assert (s.captures, s.builds, s.specializations) == (1, 1, 2)
    assert s.static_ops and s.static_ops[0].startswith("xc.conv")


def test_size_expressions_render_as_cpp():
    s, b = dim("S"), dim("B")
    assert str(s) == "xs_S" and f"{4 * s * b}" == "(4*xs_B*xs_S)" and str(prod((b, 3, s))) == "(3*xs_B*xs_S)"
    assert dim(6) == 6 and (2 * s) // 2 == s and (4 * s) % 2 == 0
    assert cpp("(S-1)//2+1") == "xc_fdiv((xs_S+1), 2)"     # canonical form of (S-1)//2+1
    assert s == "S" and s != 1 and isinstance(s, Sz)
    assert s + 1 > s and s >= 0
    with pytest.raises(NeedsStaticSizes):
        _ = s > 16                                          # depends on the binding
    with pytest.raises(NeedsStaticSizes):
        int(s)


def test_xc_fdiv_is_floor_division():
    """Floor division and remainder in the generated code agree with Python's (sizes' meaning)."""
    import ctypes
    from xcomp.backends.cpp.build import build
    from xcomp.backends.cpp.unit import CppUnit
    model, _ = gpt_block(batch=1, seq=4, dim=16, heads=2)
    p = xcomp.optimize(xcomp.capture(model, (torch.randn(1, 4, 16),), dynamic=True), "cpp")[0]
    helpers = [ln for ln in emit_program(p).source.splitlines() if ln.startswith(("inline int64_t xc_fdiv",
                                                                                   "inline int64_t xc_fmod"))]
    assert len(helpers) == 2
    src = '''#include "xcomp_runtime.h"
#include <cstdint>
''' + "\n".join(helpers) + '''
extern "C" int64_t probe(int64_t a, int64_t c, int mod) { return mod ? xc_fmod(a, c) : xc_fdiv(a, c); }
extern "C" void* xc_create(const void* const*) { return nullptr; }
extern "C" int xc_run(void*, const void* const*, void* const*) { return 0; }
extern "C" const char* xc_error(void*) { return ""; }
extern "C" void xc_destroy(void*) {}
'''
    unit = CppUnit(source=src, inputs=[], outputs=[], weights=[], uses_blas=False, arena_bytes=0, name="fdiv")
    lib = ctypes.CDLL(build(unit))
    lib.probe.restype = ctypes.c_int64
    lib.probe.argtypes = [ctypes.c_int64, ctypes.c_int64, ctypes.c_int]
    for a in range(-9, 10):
        for c in (1, 2, 3, 7):
            assert lib.probe(a, c, 0) == a // c and lib.probe(a, c, 1) == a % c


def test_export_is_static_and_says_so_for_symbolic_sizes(tmp_path):
    """The CMake project's header states shapes as constants: a static program exports as before,
    a symbolic one raises TargetError naming the static export."""
    import os
    from xcomp import TargetError
    model, (x,) = gpt_block(batch=1, seq=4, dim=16, heads=2)
    path = xcomp.export(model, (x,), target="cpp", path=str(tmp_path / "static"))
    header = open(os.path.join(path, "model.h")).read()
    assert "int xc_run(void* model" in header and "xc_run_sizes" not in open(os.path.join(path, "model.cpp")).read()
    with pytest.raises(TargetError, match="dynamic=False"):
        xcomp.export(model, (x,), target="cpp", path=str(tmp_path / "dynamic"), dynamic=True)


class Moments(torch.nn.Module):
    def forward(self, x):
        return x.var(dim=1), torch.log_softmax(x, dim=1), x.std(dim=-1, keepdim=True) * x


def test_var_and_row_ops_over_symbolic_axes():
    """1 / (n - correction) and row lengths computed from run-time sizes (every dim symbolic)."""
    m = Moments()
    compiled = xcomp.compile(m, target="cpp", dynamic=True)
    for shape in ((2, 5, 3), (1, 17, 9), (3, 2, 30)):
        x = torch.randn(*shape)
        for g, w in zip(compiled(x), m(x)):
            assert_close(g, w, scale=4.0, msg=f"at {shape}")
    _one_build(compiled)
