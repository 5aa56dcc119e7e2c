"""The parts every generated unit shares, built once per toolchain (backends/cpp/prebuilt.py): the
prelude a unit opens with, the precompiled header and objects a build links, and the results of
programs built with them (against torch eager)."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from cpp_source import needs_cpp
import xcomp
from helpers import assert_close
from xcomp.backends.cpp import build as cpp_build
from xcomp.backends.cpp import prebuilt
from xcomp.backends.cpp.emit import emit_program, prelude
from xcomp.backends.cpp.runtime import load
from xcomp.backends.cpp.toolchain import toolchain

pytestmark = needs_cpp


def _attention_scores(x, w):
    q = (x @ w).reshape(2, 16, 4, 8).permute(0, 2, 1, 3)    # a GEMM and a remap (xc_remap<float>)
    return torch.softmax(q @ q.transpose(-1, -2), dim=-1)


def _program(x, w):
    p = xcomp.optimize(xcomp.capture(_attention_scores, [x, w]), "cpp")
    return p[0] if isinstance(p, tuple) else p


def test_units_open_with_the_shared_prelude():
    torch.manual_seed(0)
    unit = emit_program(_program(torch.randn(2, 16, 32), torch.randn(32, 32)))
    text = prebuilt.prelude_of(unit.source)
    assert text == prelude() and unit.source.startswith('#include "xcomp_runtime.h"\n')
    assert prebuilt.instantiations(text) == [line[len("extern "):] for line in text.splitlines()
                                             if line.startswith("extern template ")]
    assert prebuilt.prelude_of("#include \"xcomp_runtime.h\"\nint x;\n") is None   # hand-written units
    before, after = prebuilt.compile_args("/e")
    assert before == ["-DXC_PREBUILT_GEMM=1", "-include", "/e/xcomp_prelude.h"]
    assert after == ["/e/xcomp_gemm.o", "/e/xcomp_ops.o"]


@pytest.mark.slow
def test_a_unit_built_with_the_prebuilt_parts_matches_eager(tmp_path, monkeypatch):
    monkeypatch.setenv("XCOMP_CACHE_DIR", str(tmp_path / "cache"))
    tc = toolchain()
    if not prebuilt.usable(tc):
        pytest.skip("the prebuilt parts are made with GCC only")
    torch.manual_seed(0)
    x, w = torch.randn(2, 16, 32), torch.randn(32, 32) / 4
    program = _program(x, w)
    unit = emit_program(program)
    weights = {n: np.asarray(program.weights[n]).reshape(shape) for n, _, shape in unit.weights}
    d = prebuilt.start(prebuilt.prelude_of(unit.source), tc, unit.uses_blas)   # made in the background
    assert prebuilt.for_unit(unit.source, tc, unit.uses_blas) == d              # waits for it
    assert {"xcomp_prelude.h.gch", "xcomp_gemm.o", "xcomp_ops.o"} <= set(os.listdir(d))
    lib = cpp_build.build(unit)
    command = json.load(open(os.path.join(os.path.dirname(lib), cpp_build.BUILD_INFO)))["command"]
    assert os.path.join(d, "xcomp_prelude.h") in command and os.path.join(d, "xcomp_gemm.o") in command
    with torch.no_grad():
        want = _attention_scores(x, w)
    (got,) = load(unit, lib, weights)([x.numpy(), w.numpy()])
    assert_close(got, want, scale=4)
    monkeypatch.setenv("XCOMP_PREBUILT", "0")            # off: the unit builds whole, same results
    lib2 = cpp_build.build(unit, extra_flags=("-DXC_WHOLE_UNIT=1",))
    command = json.load(open(os.path.join(os.path.dirname(lib2), cpp_build.BUILD_INFO)))["command"]
    assert "-include" not in command
    assert_close(load(unit, lib2, weights)([x.numpy(), w.numpy()])[0], want, scale=4)
