"""A generated program built with AddressSanitizer and UndefinedBehaviorSanitizer runs clean.

The exported project's sources (model.cpp, weights.cpp, main.cpp) are compiled straight into one
sanitized executable (no Python in the process, so no sanitizer runtime has to be preloaded), run
on inputs from files with the thread pool and the portable GEMM, and checked against the expected
values. Any sanitizer report fails the run (-fno-sanitize-recover=all, exit code 1).
"""
from __future__ import annotations

import os
import shutil
import subprocess

import numpy as np
import pytest

from cpp_units import mlp_expected, mlp_inputs, mlp_unit, mlp_weights
from helpers import assert_close
from xcomp.backends.cpp.export import export_project
from xcomp.backends.cpp.runtime import from_storage, storage_dtype, to_storage
from xcomp.backends.cpp.toolchain import find_compiler

SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer", "-g", "-O1"]


def sanitized_run(unit, weights, inputs, tmp_path, extra=()) -> list[np.ndarray]:
    project = export_project(unit, weights, str(tmp_path / "project"))
    exe = str(tmp_path / "main_asan")
    cmd = [find_compiler(), "-std=c++17", *SANITIZE, *extra, "-pthread", f"-I{project}",
           *(os.path.join(project, f) for f in ("model.cpp", "weights.cpp", "main.cpp")), "-o", exe]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if r.returncode != 0 and "asan" in r.stderr.lower() and "cannot find" in r.stderr.lower():
        pytest.skip(f"the compiler has no sanitizer runtime: {r.stderr.strip().splitlines()[-1]}")
    assert r.returncode == 0, r.stderr
    for i, (x, (dt, _)) in enumerate(zip(inputs, unit.inputs)):
        to_storage(x, dt).tofile(tmp_path / f"input{i}.bin")
    env = {"PATH": "/usr/bin:/bin", "XCOMP_NUM_THREADS": "3",
           "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:exitcode=86", "UBSAN_OPTIONS": "print_stacktrace=1"}
    r = subprocess.run([exe, os.path.join(project, "weights.bin"), str(tmp_path), str(tmp_path), "--repeat", "3"],
                       capture_output=True, text=True, timeout=600, env=env)
    if r.returncode != 0 and "LeakSanitizer does not work under ptrace" in r.stderr:
        env["ASAN_OPTIONS"] = env["ASAN_OPTIONS"].replace("detect_leaks=1", "detect_leaks=0")
        r = subprocess.run([exe, os.path.join(project, "weights.bin"), str(tmp_path), str(tmp_path)],
                           capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0 and "runtime error" not in r.stderr and "Sanitizer" not in r.stderr, r.stderr
    return [from_storage(np.fromfile(tmp_path / f"output{i}.bin", storage_dtype(dt)).reshape(shape), dt)
            for i, (dt, shape) in enumerate(unit.outputs)]


@pytest.mark.skipif(shutil.which("c++") is None and shutil.which("g++") is None, reason="needs a C++ compiler")
def test_hand_written_unit_runs_clean_under_asan_ubsan(tmp_path):
    # shapes that leave partial GEMM tiles in every direction, run on 3 threads
    unit, w, x = mlp_unit(M=13, K=70, N=37, name="asan"), mlp_weights(70, 37), mlp_inputs(13, 70, 37)
    (y,) = sanitized_run(unit, w, x, tmp_path)
    assert_close(y, mlp_expected(w, x))


@pytest.mark.skipif(shutil.which("c++") is None and shutil.which("g++") is None, reason="needs a C++ compiler")
def test_generated_program_runs_clean_under_asan_ubsan(tmp_path):
    """The C++ code generator's translation unit for a zoo model (GPT-style block), sanitized."""
    torch = pytest.importorskip("torch")
    emit = pytest.importorskip("xcomp.backends.cpp.emit")
    import xcomp
    from xcomp.zoo import gpt_block
    model, (x,) = gpt_block(batch=2, seq=8, dim=32, heads=2)
    program, _ = xcomp.optimize(xcomp.capture(model, (x,)), target="cpp")
    unit = emit.emit_program(program)
    (y,) = sanitized_run(unit, program.weights, [x.numpy()], tmp_path)
    with torch.no_grad():
        expected = model(x).numpy()
    assert_close(y, expected)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("c++") is None and shutil.which("g++") is None, reason="needs a C++ compiler")
def test_generated_cnn_runs_clean_under_asan_ubsan(tmp_path):
    """The zoo CNN sanitized: the direct convolution kernel (packed weights, padded copies, tile
    stores and the per-tile epilogue), the 2x2 max pool and the global average pool."""
    torch = pytest.importorskip("torch")
    emit = pytest.importorskip("xcomp.backends.cpp.emit")
    import xcomp
    from xcomp.zoo import cnn
    model, (x,) = cnn(batch=2, size=20)
    program, _ = xcomp.optimize(xcomp.capture(model, (x,)), target="cpp")
    (y,) = sanitized_run(emit.emit_program(program), program.weights, [x.numpy()], tmp_path)
    with torch.no_grad():
        expected = model(x).numpy()
    assert_close(y, expected)
