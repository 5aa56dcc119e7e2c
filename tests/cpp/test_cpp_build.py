"""Building C++ units: the on-disk cache (hit, miss, concurrency, corruption, eviction), compiler
errors and a missing compiler."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from cpp_units import mlp_expected, mlp_inputs, mlp_unit, mlp_weights
from helpers import assert_close
from xcomp.backends.cpp import build as cpp_build
from xcomp.backends.cpp import toolchain as tc
from xcomp.backends.cpp.runtime import load
from xcomp.cache import MANIFEST, Cache
from xcomp.errors import CompileError, TargetError

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("XCOMP_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def logged_cxx(tmp_path, monkeypatch):
    """CXX = a wrapper around the real compiler that logs each command line (one per line)."""
    real = os.path.realpath(tc.find_compiler())
    log = tmp_path / "cxx.log"
    wrapper = tmp_path / "logged-c++"
    wrapper.write_text(f'#!/bin/sh\necho "$@" >> "{log}"\nexec "{real}" "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("CXX", str(wrapper))
    return log


def model_compiles(log) -> int:
    return sum("model.cpp" in line for line in log.read_text().splitlines()) if log.exists() else 0


def test_build_runs_and_matches_numpy(cache_dir):
    unit, w, x = mlp_unit(), mlp_weights(), mlp_inputs()
    path = cpp_build.build(unit)
    assert path.startswith(str(cache_dir)) and os.path.isfile(path)
    (y,) = load(unit, path, w)(x)
    assert_close(y, mlp_expected(w, x))
    info = cpp_build.build_info(path)
    assert info["blas"] and info["compiler"] and info["seconds"] > 0


def test_cache_hit_does_not_recompile(cache_dir, logged_cxx):
    unit = mlp_unit()
    first = cpp_build.build(unit)
    assert model_compiles(logged_cxx) == 1
    assert cpp_build.build(unit) == first
    assert model_compiles(logged_cxx) == 1          # hit: no compiler run
    other = cpp_build.build(mlp_unit(M=4))           # other source: a miss
    assert other != first and model_compiles(logged_cxx) == 2
    flagged = cpp_build.build(unit, extra_flags=("-DXC_UNUSED_FLAG=1",))  # other flags: a miss
    assert flagged != first and model_compiles(logged_cxx) == 3
    assert Cache("cpp").info().entries == 3


def test_concurrent_builds_compile_once(cache_dir, logged_cxx):
    script = textwrap.dedent(f"""
        import sys, numpy as np
        sys.path[:0] = [{HERE!r}, {os.path.dirname(HERE)!r}]
        from cpp_units import mlp_unit, mlp_weights, mlp_inputs, mlp_expected
        from xcomp.backends.cpp.build import build
        from xcomp.backends.cpp.runtime import load
        unit = mlp_unit(name="concurrent")
        path = build(unit)
        y = load(unit, path, mlp_weights())(mlp_inputs())[0]
        assert np.allclose(y, mlp_expected(mlp_weights(), mlp_inputs()), rtol=1e-4, atol=1e-5)
        print(path)
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(4)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), [e for _, e in outs]
    paths = {o.strip() for o, _ in outs}
    assert len(paths) == 1
    assert model_compiles(logged_cxx) == 1


def test_corrupt_entry_is_rebuilt_not_loaded(cache_dir, logged_cxx):
    unit, w, x = mlp_unit(), mlp_weights(), mlp_inputs()
    path = cpp_build.build(unit)
    size = os.path.getsize(path)
    with open(path, "r+b") as f:   # truncated library
        f.truncate(size // 2)
    assert Cache("cpp").lookup(os.path.basename(os.path.dirname(path))) is None
    again = cpp_build.build(unit)
    assert model_compiles(logged_cxx) == 2 and os.path.getsize(again) == size
    with open(again, "r+b") as f:  # same size, flipped bytes
        f.seek(size // 3)
        f.write(b"\xde\xad\xbe\xef")
    cpp_build.build(unit)
    assert model_compiles(logged_cxx) == 3
    os.remove(os.path.join(os.path.dirname(path), MANIFEST))  # no manifest: never trusted
    (y,) = load(unit, cpp_build.build(unit), w)(x)
    assert model_compiles(logged_cxx) == 4
    assert_close(y, mlp_expected(w, x))


def test_compile_error_names_generated_file_and_line(cache_dir):
    unit = mlp_unit()
    lines = unit.source.splitlines()
    bad_line = next(i for i, line in enumerate(lines) if "xc_sgemm(" in line)
    lines[bad_line] = "  float broken = undefined_name_xyz + 1;"
    unit.source = "\n".join(lines) + "\n"
    with pytest.raises(CompileError) as e:
        cpp_build.build(unit)
    msg = str(e.value)
    assert f"model.cpp:{bad_line + 1}:" in msg and "undefined_name_xyz" in msg
    failed_source = msg.split("generated source ")[1].split(f":{bad_line + 1}:")[0]
    assert os.path.isfile(failed_source)  # kept on disk for the user
    assert "undefined_name_xyz" in open(failed_source).read()
    assert Cache("cpp").info().entries == 0  # nothing cached


def test_missing_compiler_says_what_to_install(cache_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-compiler"))
    with pytest.raises(TargetError, match="install a C\\+\\+17 compiler"):
        cpp_build.build(mlp_unit())
    monkeypatch.delenv("CXX")
    monkeypatch.setenv("PATH", str(tmp_path))
    assert "none was found on PATH" in tc.unavailable_reason()


def test_toolchain_reports_compiler_flags_and_blas(cache_dir):
    t = tc.toolchain()
    assert t.version and "-std=c++17" in t.flags
    assert t.blas.name in ("mkl", "openblas", "accelerate", "fallback")
    assert ("-fopenmp" in t.flags) == t.openmp
    assert t.blas.name in t.describe()
    probes = os.listdir(cache_dir / "probes")
    assert len(probes) == 1 and json.load(open(cache_dir / "probes" / probes[0]))["cxx"] == t.cxx


@pytest.mark.parametrize("choice", ["none", "openblas"])
def test_blas_choice(cache_dir, monkeypatch, choice):
    if choice == "openblas":
        pytest.importorskip("scipy_openblas32")
    monkeypatch.setenv("XCOMP_BLAS", choice)
    unit, w, x = mlp_unit(M=5, K=70, N=33), mlp_weights(70, 33), mlp_inputs(5, 70, 33)
    runner = load(unit, cpp_build.build(unit), w)
    assert runner.blas() == {"none": "fallback", "openblas": "openblas"}[choice]
    assert_close(runner(x)[0], mlp_expected(w, x))


def test_unknown_blas_choice_is_an_error(cache_dir, monkeypatch):
    monkeypatch.setenv("XCOMP_BLAS", "atlas")
    with pytest.raises(TargetError, match="XCOMP_BLAS"):
        tc.toolchain()


# -- the cache module on its own ----------------------------------------------------------------
def _produce(size: int):
    def produce(d):
        with open(os.path.join(d, "blob"), "wb") as f:
            f.write(b"x" * size)
    return produce


def test_cache_lru_eviction_info_and_clear(tmp_path, monkeypatch):
    import xcomp.cache as cache_mod
    monkeypatch.setattr(cache_mod, "_RECENT_S", 0.0)
    c = Cache("unit", root=str(tmp_path), max_bytes=2500)
    a = c.get("a" * 64, _produce(1000))
    c.get("b" * 64, _produce(1000))
    os.utime(os.path.join(a, MANIFEST), (1, 1))                   # a: least recently used
    os.utime(os.path.join(c.entry_dir("b" * 64), MANIFEST), (2, 2))
    c.get("c" * 64, _produce(1000))                               # over the limit: a goes
    assert c.lookup("a" * 64) is None and c.lookup("b" * 64) and c.lookup("c" * 64)
    info = c.info()
    assert info.entries == 2 and 2000 <= info.bytes <= 2500
    assert c.clear() == 2 and c.info().entries == 0


def test_cache_failed_produce_leaves_nothing(tmp_path):
    c = Cache("unit", root=str(tmp_path))

    def fail(d):
        open(os.path.join(d, "half"), "w").write("partial")
        raise RuntimeError("boom")
    with pytest.raises(RuntimeError):
        c.get("d" * 64, fail)
    assert c.info().entries == 0 and not [n for n in os.listdir(c.dir) if n.startswith(".tmp-")]
    assert np.isclose(c.info().bytes, 0)


def test_requested_blas_missing_says_what_to_install(cache_dir, monkeypatch):
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "scipy_openblas32" else real(name, *a))
    monkeypatch.setattr(tc, "_mkl_library", lambda: None)  # nor the mkl wheel
    monkeypatch.setenv("XCOMP_BLAS", "openblas")
    with pytest.raises(TargetError, match="pip install scipy-openblas32"):
        tc.toolchain()
    monkeypatch.setenv("XCOMP_BLAS", "auto")  # auto without the wheel: the portable GEMM, and a hint
    if sys.platform != "darwin":
        blas = tc.toolchain().blas
        assert blas.name == "fallback" and "xcomp[cpp]" in blas.detail


def test_build_program_skips_code_generation_when_cached(cache_dir):
    calls = []

    def emit():
        calls.append(1)
        return mlp_unit()
    unit, lib = cpp_build.build_program("func.func @main() {}  // program A", emit)
    again, lib2 = cpp_build.build_program("func.func @main() {}  // program A", emit)
    assert len(calls) == 1 and lib2 == lib  # no emit, no compiler on the second start
    assert again.source == unit.source and again.inputs == unit.inputs and again.weights == unit.weights
    assert (again.outputs, again.uses_blas, again.arena_bytes, again.name) == \
           (unit.outputs, unit.uses_blas, unit.arena_bytes, unit.name)
    w, x = mlp_weights(), mlp_inputs()
    assert_close(load(again, lib2, w)(x)[0], mlp_expected(w, x))
    cpp_build.build_program("func.func @main() {}  // program B", emit)  # other text: generated again
    assert len(calls) == 2
    import shutil
    shutil.rmtree(os.path.dirname(lib))  # library evicted: the index entry is not trusted
    _, lib3 = cpp_build.build_program("func.func @main() {}  // program A", emit)
    assert len(calls) == 3 and os.path.isfile(lib3)
