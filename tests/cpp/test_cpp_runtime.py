"""xcomp_runtime.h (threads, GEMM, half/bfloat16) and the ctypes loader (dtypes, zero copy, errors,
lifetime)."""
from __future__ import annotations

import ctypes
import gc
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from cpp_units import (dtypes_expected, dtypes_unit, mlp_expected, mlp_inputs, mlp_unit, mlp_weights,
                       runtime_probe_unit)
from helpers import assert_close
from xcomp.backends.cpp import runtime as cpp_runtime
from xcomp.backends.cpp.build import build
from xcomp.backends.cpp.runtime import load
from xcomp.errors import RunError, TargetError
from xcomp.ir.types import DType

HERE = os.path.dirname(os.path.abspath(__file__))
P, I64 = ctypes.c_void_p, ctypes.c_int64


def _probe_lib(openmp: bool, blas: str):
    env = {"XCOMP_OPENMP": "1" if openmp else "0", "XCOMP_BLAS": blas}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        lib = ctypes.CDLL(build(runtime_probe_unit(), extra_flags=("-DXC_RUNTIME_TEST",)))
    finally:
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    lib.probe_parallel_for.argtypes = [I64, I64, P]
    lib.probe_parallel_for.restype = ctypes.c_int
    lib.probe_nested.argtypes = [I64, P]
    gemm_args = [ctypes.c_int, ctypes.c_int, I64, I64, I64, ctypes.c_float, P, I64, P, I64, ctypes.c_float, P, I64]
    lib.probe_sgemm.argtypes = gemm_args
    lib.xc_runtime_sgemm_fallback.argtypes = gemm_args
    lib.xc_runtime_set_threads.argtypes = [ctypes.c_int]
    lib.xc_runtime_blas.restype = ctypes.c_char_p
    for name in ("probe_f16_to_f32", "probe_f32_to_f16", "probe_bf16_to_f32", "probe_f32_to_bf16"):
        getattr(lib, name).argtypes = [P, P, I64]
    return lib


@pytest.fixture(scope="module")
def libs():
    """The probe library built with the pthread pool (the default; the BLAS found) and with OpenMP
    (the fallback GEMM)."""
    out = {"pool": _probe_lib(False, "auto"), "openmp": _probe_lib(True, "none")}
    assert out["openmp"].xc_runtime_openmp() == 1 and out["pool"].xc_runtime_openmp() == 0
    return out


# -- threads --------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["openmp", "pool"])
def test_parallel_for_covers_every_index_once(libs, kind):
    lib = libs[kind]
    lib.xc_runtime_set_threads(3)
    for n, grain in [(0, 1), (1, 1), (2, 1), (5, 2), (1000, 1), (1000, 999), (12345, 64), (7, 100)]:
        out = np.zeros(max(n, 1), np.int64)
        chunks = lib.probe_parallel_for(n, grain, _ptr(out))
        assert (out[:n] == 1).all(), (kind, n, grain)
        most = 0 if n == 0 else -(-n // grain)
        if kind == "openmp":  # one static chunk per thread
            assert chunks == min(3, most), (n, grain, chunks)
        else:  # chunks claimed from a ticket: up to 4 per thread, never below `grain` elements
            assert min(2, most) <= chunks <= min(most, 12), (n, grain, chunks)
    out = np.zeros(2, np.int64)
    assert lib.probe_parallel_for(2, 1, _ptr(out)) == 2  # batch 1 still splits
    lib.xc_runtime_set_threads(0)


def test_pool_shared_by_concurrent_callers(libs):
    """Two threads calling into one library at once: the second runs serially, nothing is lost."""
    import threading
    lib = libs["pool"]
    outs = [np.zeros(100000, np.int64) for _ in range(4)]
    threads = [threading.Thread(target=lambda o=o: [lib.probe_parallel_for(o.size, 100, _ptr(o)) for _ in range(50)])
               for o in outs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all((o == 50).all() for o in outs)


@pytest.mark.parametrize("kind", ["openmp", "pool"])
def test_nested_parallel_for_runs_inner_loops_serially(libs, kind):
    n = 17
    out = np.zeros(n * n, np.int64)
    libs[kind].probe_nested(n, _ptr(out))
    assert (out == 1).all()


def test_threads_follow_xcomp_num_threads():
    script = textwrap.dedent(f"""
        import sys, ctypes
        sys.path[:0] = [{HERE!r}, {os.path.dirname(HERE)!r}]
        from cpp_units import runtime_probe_unit
        from xcomp.backends.cpp.build import build
        print(ctypes.CDLL(build(runtime_probe_unit(), extra_flags=("-DXC_RUNTIME_TEST",))).xc_runtime_get_threads())
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600,
                         env={**os.environ, "XCOMP_NUM_THREADS": "3"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "3"


# -- GEMM -----------------------------------------------------------------------------------------
GEMM_SHAPES = [(1, 1, 1), (1, 37, 20), (2, 33, 65), (3, 300, 17), (7, 5, 3), (33, 70, 129), (96, 256, 256),
               (200, 130, 513), (1, 1000, 300), (13, 100, 40), (400, 64, 1024), (5, 2, 7)]


def _check_gemm(fn, M, N, K, ta, tb, rng, alpha=1.5, beta=0.5, pad=3):
    A = rng.standard_normal((K, M + pad) if ta else (M, K + pad), dtype=np.float32)   # padded leading dims
    B = rng.standard_normal((N, K + pad) if tb else (K, N + pad), dtype=np.float32)
    C = rng.standard_normal((M, N + pad), dtype=np.float32)
    C0 = C.copy()
    fn(ta, tb, M, N, K, alpha, _ptr(A), A.shape[1], _ptr(B), B.shape[1], beta, _ptr(C), C.shape[1])
    a = (A[:, :M].T if ta else A[:, :K]).astype(np.float64)
    b = (B[:, :K].T if tb else B[:, :N]).astype(np.float64)
    ref = alpha * (a @ b) + beta * C0[:, :N]
    np.testing.assert_allclose(C[:, :N], ref, rtol=1e-4, atol=1e-4 * np.sqrt(K), err_msg=str((M, N, K, ta, tb)))
    assert (C[:, N:] == C0[:, N:]).all()  # nothing written past N in each row


@pytest.mark.parametrize("kind", ["openmp", "pool"])
def test_fallback_gemm_matches_numpy(libs, kind):
    rng = np.random.default_rng(0)
    for M, N, K in GEMM_SHAPES:
        for ta in (0, 1):
            for tb in (0, 1):
                _check_gemm(libs[kind].xc_runtime_sgemm_fallback, M, N, K, ta, tb, rng)


def test_fallback_gemm_beta_zero_ignores_nan_in_c(libs):
    lib = libs["openmp"]
    A, B = np.ones((4, 5), np.float32), np.ones((5, 6), np.float32)
    C = np.full((4, 6), np.nan, np.float32)
    lib.xc_runtime_sgemm_fallback(0, 0, 4, 6, 5, 1.0, _ptr(A), 5, _ptr(B), 6, 0.0, _ptr(C), 6)
    assert (C == 5).all()
    C[:] = np.nan
    lib.xc_runtime_sgemm_fallback(0, 0, 4, 6, 0, 1.0, _ptr(A), 5, _ptr(B), 6, 0.0, _ptr(C), 6)  # K = 0
    assert (C == 0).all()


def test_blas_gemm_matches_numpy(libs):
    lib = libs["pool"]  # built with the BLAS found (OpenBLAS where scipy-openblas32 is installed)
    rng = np.random.default_rng(1)
    for M, N, K in GEMM_SHAPES:
        for ta in (0, 1):
            for tb in (0, 1):
                _check_gemm(lib.probe_sgemm, M, N, K, ta, tb, rng)
    lib.probe_sgemm(0, 0, 0, 3, 3, 1.0, None, 1, None, 1, 0.0, None, 1)  # empty: no call, no crash


# -- half and bfloat16 ----------------------------------------------------------------------------
def test_f16_conversions_exact(libs):
    lib = libs["openmp"]
    bits = np.arange(65536, dtype=np.uint16)
    f = np.empty(65536, np.float32)
    lib.probe_f16_to_f32(_ptr(bits), _ptr(f), 65536)
    np.testing.assert_array_equal(f, bits.view(np.float16).astype(np.float32))  # every half, NaNs included
    rng = np.random.default_rng(2)
    x = np.concatenate([rng.standard_normal(20000).astype(np.float32) * 10.0 ** rng.integers(-9, 6, 20000),
                        np.array([0.0, -0.0, np.inf, -np.inf, 65504, 65520, 65519.99, 1e-8, 2.0 ** -24,
                                  2.0 ** -25, 2.0 ** -25 * 1.0001, 1e10], np.float32),
                        (f[np.isfinite(f)] + np.float32(1e-4) * f[np.isfinite(f)]).astype(np.float32)]
                       ).astype(np.float32)
    h = np.empty(x.size, np.uint16)
    lib.probe_f32_to_f16(_ptr(x), _ptr(h), x.size)
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(h, x.astype(np.float16).view(np.uint16))  # numpy: nearest even
    nan = np.array([np.nan], np.float32)
    lib.probe_f32_to_f16(_ptr(nan), _ptr(h), 1)
    assert np.isnan(h[:1].view(np.float16)).all()


def test_bf16_conversions_round_to_nearest_even(libs):
    torch = pytest.importorskip("torch")
    lib = libs["openmp"]
    rng = np.random.default_rng(3)
    with np.errstate(invalid="ignore", over="ignore"):
        x = np.concatenate([rng.standard_normal(50000).astype(np.float32) * 10.0 ** rng.integers(-30, 30, 50000),
                            np.array([0.0, -0.0, np.inf, -np.inf, 3.3895314e38, 1e-40], np.float32),
                            (np.arange(1 << 16, dtype=np.uint32) << 16 | 0x8000).view(np.float32)]  # exact ties
                           ).astype(np.float32)
    x = x[~np.isnan(x)]
    expected = torch.from_numpy(x).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
    h = np.empty(x.size, np.uint16)
    lib.probe_f32_to_bf16(_ptr(x), _ptr(h), x.size)
    np.testing.assert_array_equal(h, expected)
    np.testing.assert_array_equal(cpp_runtime.f32_to_bf16_bits(x), expected)  # the loader's numpy version
    back = np.empty(x.size, np.float32)
    lib.probe_bf16_to_f32(_ptr(h), _ptr(back), x.size)
    np.testing.assert_array_equal(back, torch.from_numpy(h.view(np.int16)).view(torch.bfloat16).float().numpy())
    nan = np.array([np.nan], np.float32)
    lib.probe_f32_to_bf16(_ptr(nan), _ptr(h), 1)
    assert np.isnan(cpp_runtime.bf16_bits_to_f32(h[:1])).all()


# -- the loader -----------------------------------------------------------------------------------
def test_dtypes_through_the_loader():
    unit = dtypes_unit()
    runner = load(unit, build(unit), {})
    rng = np.random.default_rng(4)
    a = rng.standard_normal(37).astype(np.float16)
    b = rng.standard_normal(37).astype(np.float32)  # bfloat16 arrives held as float32
    flag = rng.random(37) > 0.7
    outs = runner([a, b, flag, np.array(3)])
    exp = dtypes_expected(a, b, flag, 3)
    assert [o.dtype for o in outs] == [np.float16, np.float32, np.bool_, np.int32]
    assert_close(outs[0], exp[0])
    assert_close(outs[1], exp[1], dtype="bfloat16")
    assert_close(outs[2], exp[2])
    assert_close(outs[3], exp[3])


def test_inputs_are_passed_without_copies(monkeypatch):
    unit, w, x = mlp_unit(), mlp_weights(), mlp_inputs()
    runner = load(unit, build(unit), w)
    calls = []
    real = cpp_runtime.to_storage
    monkeypatch.setattr(cpp_runtime, "to_storage", lambda a, dt: calls.append(dt) or real(a, dt))
    torch = pytest.importorskip("torch")
    as_torch = [torch.from_numpy(a).numpy() for a in x]  # what the API hands over for torch CPU tensors
    y = runner(as_torch)[0]
    assert calls == []  # C-contiguous inputs of the storage dtype: addresses passed, nothing converted
    assert_close(y, mlp_expected(w, x))
    strided = [np.asfortranarray(x[0]), x[1].astype(np.float64), x[2]]  # converted once, same answer
    assert_close(runner(strided)[0], mlp_expected(w, x))
    assert len(calls) == 2


def test_weights_converted_once_and_kept_alive():
    unit, x = mlp_unit(), mlp_inputs()
    w = {k: v.astype(np.float64) for k, v in mlp_weights().items()}  # converted to float32 at load
    runner = load(unit, build(unit), w)
    expected = mlp_expected(mlp_weights(), x)
    del w
    gc.collect()
    assert_close(runner(x)[0], expected)
    assert_close(runner(x)[0], expected)


def test_run_error_carries_the_programs_message():
    unit, w, x = mlp_unit(), mlp_weights(), mlp_inputs()
    runner = load(unit, build(unit), w)
    with pytest.raises(RunError, match="scale must be >= 0, got -1"):
        runner([x[0], x[1], np.array(-1.0)])
    assert_close(runner(x)[0], mlp_expected(w, x))  # the model still works after a failed call


def test_bad_inputs_and_weights_are_xcomp_errors():
    unit, w, x = mlp_unit(), mlp_weights(), mlp_inputs()
    runner = load(unit, build(unit), w)
    with pytest.raises(TargetError, match="input 0 has shape"):
        runner([x[0][:2], x[1], x[2]])
    with pytest.raises(TargetError, match="takes 3 inputs"):
        runner(x[:2])
    with pytest.raises(TargetError, match="fc.bias"):
        load(unit, build(unit), {"fc.weight": w["fc.weight"]})
    with pytest.raises(TargetError, match="weight 'fc.weight' has shape"):
        load(unit, build(unit), {**w, "fc.weight": w["fc.weight"][:3]})


def test_model_destroyed_when_collected():
    unit = mlp_unit()
    runner = load(unit, build(unit), mlp_weights())
    fin = runner._finalizer
    assert fin.alive
    del runner
    gc.collect()
    assert not fin.alive


def _ptr(a):
    return None if a is None else a.ctypes.data


# -- vectorizable math ----------------------------------------------------------------------------
def test_vector_math_accuracy():
    import math
    from cpp_units import math_unit
    lib = ctypes.CDLL(build(math_unit()))
    rng = np.random.default_rng(6)
    x = np.concatenate([rng.uniform(-110, 110, 200000), rng.standard_normal(200000) * 3,
                        rng.standard_normal(100000) * 1e-3, np.linspace(-12, 12, 100001),
                        [0.0, -0.0, np.inf, -np.inf, np.nan, 88.72, 88.73, -87.3, -103.9, -104.5, 0.625, -0.5, 1e-30]]
                       ).astype(np.float32)
    x64 = x.astype(np.float64)
    nonpos = np.where(x <= 0, x, -x)      # xc_vexp_nonpos takes x <= 0 only (softmax's x - max)
    refs = {"exp": np.exp(x64), "exp_nonpos": np.exp(nonpos.astype(np.float64)), "tanh": np.tanh(x64),
            "sigmoid": 1.0 / (1.0 + np.exp(-x64)), "erf": np.array([math.erf(v) if np.isfinite(v) else (np.sign(v) if not np.isnan(v) else np.nan)
                             for v in x64])}
    for name, ref in refs.items():
        fn = getattr(lib, f"probe_{name}")
        fn.argtypes = [P, P, I64]
        y = np.empty_like(x)
        with np.errstate(over="ignore"):
            fn(_ptr(nonpos if name == "exp_nonpos" else x), _ptr(y), x.size)
            ref32 = ref.astype(np.float32)
        assert (np.isnan(y) == np.isnan(ref32)).all(), name
        ok = ~np.isnan(ref32)
        assert (np.isinf(y[ok]) == np.isinf(ref32[ok])).all() and (y[ok][np.isinf(y[ok])] == ref32[ok][np.isinf(y[ok])]).all(), name
        fin = ok & np.isfinite(ref32)
        if name in ("exp_nonpos", "sigmoid"):     # flush results below the normal range to 0
            tiny = fin & (ref < 2.0 ** -126)
            assert (y[tiny] >= 0).all() and (y[tiny] <= 2.0 ** -126).all()
            assert (y[(nonpos if name == "exp_nonpos" else x) < -87.6] == 0).all()
            fin &= ~tiny
        err = np.abs(y[fin].astype(np.float64) - ref[fin])
        ulp = np.spacing(np.abs(ref32[fin])).astype(np.float64)
        if name == "erf":
            assert err.max() <= 2e-7, (name, err.max())
            small = np.abs(x[fin]) < 0.5
            assert (err[small] <= 3 * ulp[small]).all(), name  # relative accuracy near 0
        else:
            worst = (err / np.maximum(ulp, np.spacing(np.float32(1e-38)))).max()
            assert worst <= {"exp": 2, "exp_nonpos": 2, "tanh": 3, "sigmoid": 3}[name], (name, worst)


def test_torch_and_mlx_inputs_reach_the_runner_without_copies():
    """The API's conversion to numpy shares memory with torch CPU tensors and MLX arrays."""
    from xcomp.arrays import convert
    from xcomp.ir.types import DType, TensorType
    torch = pytest.importorskip("torch")
    t = torch.randn(64, 32)
    a = convert(t, "numpy", TensorType((64, 32), DType.F32))
    assert np.shares_memory(a, t.numpy()) and a.flags.c_contiguous
    mx = pytest.importorskip("mlx.core")
    m = mx.arange(2048, dtype=mx.float32).reshape(64, 32)
    b = convert(m, "numpy", TensorType((64, 32), DType.F32))
    assert not b.flags.owndata and b.flags.c_contiguous  # a view of MLX's buffer
    np.testing.assert_array_equal(b, np.arange(2048, dtype=np.float32).reshape(64, 32))


def test_storage_conversion_keeps_shapes():
    for dt in (DType.BF16, DType.F32, DType.F16, DType.I64, DType.BOOL):
        for shape in ((), (1,), (2, 3)):
            assert cpp_runtime.to_storage(np.zeros(shape, np.float32), dt).shape == shape, (dt, shape)
