"""The standalone C++ project: written by export_project, built with CMake, run with no Python, and
checked against numpy (and, when the code generator is present, a model against PyTorch eager)."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess

import numpy as np
import pytest

from cpp_units import dtypes_expected, dtypes_unit, mlp_expected, mlp_inputs, mlp_unit, mlp_weights
from helpers import assert_close
from xcomp.backends.cpp.export import c_string, export_project
from xcomp.backends.cpp.runtime import from_storage, storage_dtype, to_storage

pytestmark = pytest.mark.skipif(shutil.which("cmake") is None, reason="needs cmake")


def cmake_build(project: str, *options: str) -> tuple[str, str]:
    """(path of the built main, CMake's configure output)."""
    build = os.path.join(project, "build")
    logs = []
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    for cmd in (["cmake", "-S", project, "-B", build, "-DCMAKE_BUILD_TYPE=Release", *options],
                ["cmake", "--build", build, "-j", "2"]):
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
        assert r.returncode == 0, r.stdout + r.stderr
        logs.append(r.stdout + r.stderr)   # (CMake's warnings are on stderr)
    return os.path.join(build, "main"), logs[0]


def run_main(main: str, project: str, unit, inputs, workdir, report: list | None = None) -> list:
    """Write input<i>.bin, run main with an environment free of Python, read output<i>.bin (a list
    output: a list of its elements). `report` gets main's printed line."""
    for i, (x, (dt, _)) in enumerate(zip(inputs, unit.inputs)):
        to_storage(x, dt).tofile(os.path.join(workdir, f"input{i}.bin"))
    r = subprocess.run([main, os.path.join(project, "weights.bin"), str(workdir), str(workdir)],
                       capture_output=True, text=True, timeout=120, env={"PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    if report is not None:
        report.append(r.stdout)
    outs = []
    for i, (dt, shape) in enumerate(unit.outputs):
        raw = np.fromfile(os.path.join(workdir, f"output{i}.bin"), storage_dtype(dt))
        if i in unit.list_outputs:
            outs.append([from_storage(e, dt) for e in raw.reshape((-1, *shape))])
        else:
            outs.append(from_storage(raw.reshape(shape), dt))
    return outs


def _in_process_blas() -> str:
    """The BLAS the in-process cpp builds use here ("fallback": none), which the export tries first."""
    from xcomp.backends.cpp.toolchain import toolchain
    return toolchain().blas.name


def test_exported_project_builds_and_runs_without_python(tmp_path):
    unit, w, x = mlp_unit(M=3, K=40, N=24, name="mlp_export"), mlp_weights(40, 24), mlp_inputs(3, 40, 24)
    project = export_project(unit, w, str(tmp_path / "project"))
    assert sorted(os.listdir(project)) == sorted(["CMakeLists.txt", "model.h", "model.cpp", "xcomp_runtime.h",
                                                  "weights.bin", "weights.json", "weights.cpp", "main.cpp"])
    manifest = json.load(open(os.path.join(project, "weights.json")))
    blob = open(os.path.join(project, "weights.bin"), "rb").read()
    for entry, (name, _, shape) in zip(manifest["weights"], unit.weights):
        assert entry["name"] == name and entry["shape"] == list(shape) and entry["offset"] % 64 == 0
        raw = blob[entry["offset"]:entry["offset"] + entry["nbytes"]]
        assert hashlib.sha256(raw).hexdigest() == entry["sha256"]
        np.testing.assert_array_equal(np.frombuffer(raw, np.float32).reshape(shape), w[name])
    main, log = cmake_build(project)   # no options: the BLAS the in-process builds use here, first
    blas = _in_process_blas()
    assert f"threads pthread pool, BLAS {blas}" in log, log
    r = subprocess.run(["ldd", main], capture_output=True, text=True)
    assert "libpython" not in r.stdout  # no Python runtime linked (the BLAS may live in a wheel folder)
    report = []
    (y,) = run_main(main, project, unit, x, tmp_path, report)
    assert report[0].rstrip().endswith(f"BLAS {blas}"), report   # the built main multiplies through it
    assert_close(y, mlp_expected(w, x))

    bad = tmp_path / "bad.bin"  # a corrupted weights file is refused by the reader
    bad.write_bytes(blob[:-4] + b"\x01\x02\x03\x04")
    r = subprocess.run([main, str(bad), str(tmp_path), str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "checksum mismatch" in r.stderr
    r = subprocess.run([main, str(tmp_path / "absent.bin")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "cannot open" in r.stderr


def test_exported_project_dtypes_with_thread_pool_and_fallback(tmp_path):
    unit = dtypes_unit()
    project = export_project(unit, {}, str(tmp_path / "project"))
    main, log = cmake_build(project, "-DXC_USE_OPENMP=OFF", "-DXC_USE_BLAS=OFF", "-DXC_NATIVE=OFF")
    assert "threads pthread pool, BLAS fallback" in log
    rng = np.random.default_rng(5)
    inputs = [rng.standard_normal(37).astype(np.float16), rng.standard_normal(37).astype(np.float32),
              rng.random(37) > 0.5, np.array(-2)]
    outs = run_main(main, project, unit, inputs, tmp_path)
    for o, e in zip(outs, dtypes_expected(*inputs[:3], -2)):
        assert_close(o, e, dtype="bfloat16" if o.dtype == np.float32 else None)


def test_model_header_constants_and_names_are_escaped(tmp_path):
    unit = mlp_unit(M=2, K=3, N=4)
    unit.weights = [('w"); system("rm -rf /', unit.weights[0][1], unit.weights[0][2]), unit.weights[1]]
    w = mlp_weights(3, 4)
    w['w"); system("rm -rf /'] = w.pop("fc.weight")
    project = export_project(unit, w, str(tmp_path / "p"))
    header = open(os.path.join(project, "model.h")).read()
    assert 'system("' not in header and c_string('w"); system("rm -rf /') in header
    assert "#define XC_MODEL_NUM_INPUTS 3" in header and "#define XC_MODEL_NUM_WEIGHTS 2" in header
    assert "xc_model_input2_shape[1] = { 0 }" in header  # the 0-d host scalar
    r = subprocess.run(["c++", "-fsyntax-only", "-x", "c", os.path.join(project, "model.h")], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr  # the header is plain C too


def _zoo_program(name, **kw):
    torch = pytest.importorskip("torch")
    import xcomp
    from xcomp import zoo
    model, inputs = getattr(zoo, name)(**kw)
    program, _ = xcomp.optimize(xcomp.capture(model, inputs), target="cpp")
    with torch.no_grad():
        expected = model(*inputs)
    return model, inputs, program, expected


def test_exported_generated_model_matches_eager(tmp_path):
    """The code generator's translation unit of a zoo model, exported, built with CMake and run."""
    emit = pytest.importorskip("xcomp.backends.cpp.emit")
    _, inputs, program, expected = _zoo_program("gpt_block", batch=2, seq=16, dim=64, heads=4)
    unit = emit.emit_program(program)
    project = export_project(unit, program.weights, str(tmp_path / "gpt"))
    main, _ = cmake_build(project)
    (y,) = run_main(main, project, unit, [x.numpy() for x in inputs], tmp_path)
    assert_close(y, expected)


def test_xcomp_export_writes_the_cpp_project(tmp_path):
    """`xcomp.export(..., target="cpp")` (the CppTarget's export) writes this project."""
    from xcomp.backends import Target
    from xcomp.backends.cpp.target import CppTarget
    if CppTarget.export is Target.export:
        pytest.skip("CppTarget.export does not call export_project yet")
    torch = pytest.importorskip("torch")
    import xcomp
    from xcomp import zoo
    model, inputs = zoo.mlp(batch=2, dim=16, hidden=32)
    path = xcomp.export(model, inputs, target="cpp", path=str(tmp_path / "mlp"))
    assert {"CMakeLists.txt", "model.h", "model.cpp", "weights.bin", "main.cpp"} <= set(os.listdir(path))
    with torch.no_grad():
        expected = model(*inputs)
    header = open(os.path.join(path, "model.h")).read()
    assert "#define XC_MODEL_NUM_INPUTS 1" in header
    main, _ = cmake_build(path)
    from xcomp.backends.cpp.emit import emit_program
    program, _ = xcomp.optimize(xcomp.capture(model, inputs), target="cpp")
    (y,) = run_main(main, path, emit_program(program), [x.numpy() for x in inputs], tmp_path)
    assert_close(y, expected)


@pytest.mark.slow
def test_exported_project_blas_choices(tmp_path):
    """XC_BLAS=system takes a CBLAS that CMake's FindBLAS finds (a stand-in libblas.so under
    CMAKE_PREFIX_PATH whose products are naive loops); XC_BLAS=openblas with XC_OPENBLAS_DIR the
    scipy-openblas32 wheel's; a BLAS asked for but missing is skipped with a warning. Results match
    numpy through each. (The default, the in-process BLAS: the test above.)"""
    unit, w, x = mlp_unit(M=4, K=24, N=12, name="mlp_sys"), mlp_weights(24, 12), mlp_inputs(4, 24, 12)
    project = export_project(unit, w, str(tmp_path / "project"))
    prefix = tmp_path / "prefix"
    (prefix / "lib").mkdir(parents=True)
    (prefix / "blas.cpp").write_text(FAKE_CBLAS)
    r = subprocess.run(["c++", "-O1", "-shared", "-fPIC", str(prefix / "blas.cpp"), "-o", str(prefix / "lib" / "libblas.so")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    main, log = cmake_build(project, "-DXC_BLAS=system", f"-DCMAKE_PREFIX_PATH={prefix}", "-DXC_MKL_PATH=",
                            "-DXC_OPENBLAS_DIR=")
    assert f"BLAS system ({prefix}/lib/libblas.so)" in log, log
    report = []
    (y,) = run_main(main, project, unit, x, tmp_path, report)
    assert report[0].rstrip().endswith("BLAS system"), report
    assert_close(y, mlp_expected(w, x))

    try:
        import scipy_openblas32
        project = export_project(unit, w, str(tmp_path / "openblas"))
        main, log = cmake_build(project, "-DXC_BLAS=openblas", f"-DXC_OPENBLAS_DIR={scipy_openblas32.get_lib_dir()}")
        assert "BLAS openblas (" in log and "scipy_openblas" in log, log
        report = []
        (y,) = run_main(main, project, unit, x, tmp_path, report)
        assert report[0].rstrip().endswith("BLAS openblas"), report
        assert_close(y, mlp_expected(w, x))
    except ImportError:
        pass

    project = export_project(unit, w, str(tmp_path / "missing"))
    main, log = cmake_build(project, "-DXC_BLAS=mkl", "-DXC_MKL_PATH=/nonexistent/libmkl_rt.so.2",
                            "-DXC_OPENBLAS_DIR=/nonexistent")
    if "BLAS mkl" not in log:   # (unless a system oneMKL is found)
        assert "XC_BLAS=mkl was not found here" in log, log
    (y,) = run_main(main, project, unit, x, tmp_path)
    assert_close(y, mlp_expected(w, x))


# a CBLAS stand-in: row-major sgemm/sgemv as plain loops (plus the Fortran sgemm_ FindBLAS looks for)
FAKE_CBLAS = """
extern "C" void sgemm_() {}
extern "C" void cblas_sgemm(int, int ta, int tb, int M, int N, int K, float alpha, const float* A, int lda,
                            const float* B, int ldb, float beta, float* C, int ldc) {
  for (int i = 0; i < M; ++i)
    for (int j = 0; j < N; ++j) {
      float s = 0;
      for (int k = 0; k < K; ++k)
        s += (ta == 112 ? A[k * lda + i] : A[i * lda + k]) * (tb == 112 ? B[j * ldb + k] : B[k * ldb + j]);
      C[i * ldc + j] = alpha * s + (beta == 0 ? 0 : beta * C[i * ldc + j]);
    }
}
extern "C" void cblas_sgemv(int, int ta, int M, int N, float alpha, const float* A, int lda, const float* x, int,
                            float beta, float* y, int) {
  const int rows = ta == 112 ? N : M, cols = ta == 112 ? M : N;
  for (int i = 0; i < rows; ++i) {
    float s = 0;
    for (int k = 0; k < cols; ++k) s += (ta == 112 ? A[k * lda + i] : A[i * lda + k]) * x[k];
    y[i] = alpha * s + (beta == 0 ? 0 : beta * y[i]);
  }
}
"""


@pytest.mark.slow
def test_exported_list_outputs(tmp_path):
    """A program returning lists (appended in a loop) exported and run without Python: each list output's
    file holds its elements back to back, as many as the run produced."""
    import xcomp
    from test_cpp_lists import APPEND_IN_LOOP
    from xcomp.backends.cpp.emit import emit_program
    from xcomp.interpreter import interpret
    program, _ = xcomp.optimize(xcomp.parse(APPEND_IN_LOOP), target="cpp")
    unit = emit_program(program)
    assert unit.list_outputs == [0]
    project = export_project(unit, program.weights, str(tmp_path / "lists"))
    assert "1 }," in open(os.path.join(project, "model.h")).read()   # output0's is_list
    main, _ = cmake_build(project)
    inputs = [np.array([0.5, -1.0, 2.0], np.float32), np.array(5, np.int64)]
    got = run_main(main, project, unit, inputs, tmp_path)
    want = interpret(program, inputs)
    assert len(got[0]) == len(want[0]) == 6
    for g, w in zip(got[0], want[0]):
        assert_close(g, np.asarray(w))
    for g, w in zip(got[1:], want[1:]):
        assert_close(g, np.asarray(w))
