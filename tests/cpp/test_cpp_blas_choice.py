"""Which GEMM a cpp build uses: the BLAS the toolchain detects (oneMKL on x86-64 Linux when the `mkl`
wheel is installed, Accelerate on macOS, OpenBLAS from scipy-openblas32) is the one the built library
and its build info name; xcomp's own packed GEMM (the fallback, forced with XCOMP_BLAS=none) still
matches numpy, weights packed once included; MKL's packed weights reused across row counts; `xcomp
targets` names the BLAS."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from cpp_source import needs_cpp
import xcomp
from helpers import assert_close
from xcomp.backends.cpp import toolchain as tc
from xcomp.backends.cpp.build import build, build_info
from xcomp.backends.cpp.emit import emit_program
from xcomp.backends.cpp.runtime import load

pytestmark = needs_cpp


def _mlp(k: int, n: int) -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(k, 2 * n), torch.nn.GELU(), torch.nn.Linear(2 * n, n)).eval()


def _built(fn, x: torch.Tensor):
    """(runner, library path) of `fn` at `x`'s shape, built with the toolchain of the environment."""
    p = xcomp.optimize(xcomp.capture(fn, [x]), "cpp")
    p = p[0] if isinstance(p, tuple) else p
    unit = emit_program(p)
    path = build(unit)
    weights = {n: np.asarray(p.weights[n]).reshape(shape) for n, _, shape in unit.weights}
    return load(unit, path, weights), path


def _check(runner, fn, x):
    with torch.no_grad():
        want = fn(x).numpy()
    (got,) = runner([x.numpy()])
    assert_close(got, want, scale=4)


def test_build_names_the_detected_blas(monkeypatch):
    monkeypatch.delenv("XCOMP_BLAS", raising=False)
    t = tc.toolchain()
    order = tc.auto_order(tc.cpu_features())
    if tc._mkl_library() and order.index("mkl") < order.index("openblas"):  # the `mkl` wheel comes first
        assert t.blas.name == "mkl"                                          # on Intel x86-64 Linux
    fn = _mlp(64, 40)
    x = torch.randn(9, 64)
    runner, path = _built(fn, x)
    assert runner.blas() == t.blas.name
    assert build_info(path)["blas"] == t.blas.describe() and t.blas.name in t.describe()
    _check(runner, fn, x)


@pytest.mark.parametrize("m,k,n", [(1, 70, 33), (3, 64, 40), (4, 3, 5), (13, 300, 70), (130, 64, 100),
                                   (600, 96, 33)])
def test_forced_fallback_gemm_matches_eager(monkeypatch, m, k, n):
    """XCOMP_BLAS=none: xcomp's own GEMM (weights packed once from 4 rows, the blocked fallback
    below 4 rows)."""
    monkeypatch.setenv("XCOMP_BLAS", "none")
    fn = _mlp(k, n)
    x = torch.randn(m, k)
    runner, path = _built(fn, x)
    assert runner.blas() == "fallback" and build_info(path)["blas"].startswith("fallback")
    _check(runner, fn, x)


@pytest.mark.parametrize("blas", ["none", "mkl", "openblas"])
def test_packed_weights_reused_across_row_counts(monkeypatch, blas):
    """One library for every batch size: the weight packed at the first call (8 rows) serves the
    later calls of other row counts (and the row blocks the pool splits them into); with OpenBLAS
    the weights' products of 4 rows or more run xcomp's packed GEMM, fewer OpenBLAS."""
    if blas == "mkl" and not tc._mkl_library():
        pytest.skip("the mkl wheel is not installed (x86-64 Linux only)")
    if blas == "openblas" and importlib.util.find_spec("scipy_openblas32") is None:
        pytest.skip("scipy-openblas32 is not installed")
    monkeypatch.setenv("XCOMP_BLAS", blas)
    fn = _mlp(96, 48)
    f = xcomp.compile(fn, target="cpp", dynamic=True)
    for m in (8, 40, 4, 300, 1, 512, 700):
        x = torch.randn(m, 96)
        with torch.no_grad():
            want = fn(x)
        assert_close(f(x), want, scale=4)


def test_auto_order_by_cpu_vendor():
    """oneMKL first on Intel x86 CPUs; OpenBLAS before it on other vendors' x86 CPUs."""
    intel = tc.auto_order("x86_64 Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz | avx2 avx512f fma")
    amd = tc.auto_order("x86_64 AMD EPYC 7R13 Processor | avx2 fma")
    assert intel[0] == "mkl" and amd.index("openblas") < amd.index("mkl")
    assert tc.auto_order("arm64 Apple M2")[0] == "mkl"  # (not found there: Accelerate comes next)


def test_targets_command_names_the_blas(monkeypatch, capsys):
    from xcomp.cli import main
    monkeypatch.delenv("XCOMP_BLAS", raising=False)
    assert main(["targets"]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("cpp "))
    assert "runs here" in line and f"BLAS: {tc.toolchain().blas.describe()}" in line
