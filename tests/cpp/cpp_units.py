"""Hand-written `CppUnit`s for the build/load/export tests (independent of the C++ code generator).

Each follows the calling convention of `xcomp.backends.cpp.unit` and comes with a numpy function
computing the same result, so the tests compare against numpy.
"""
from __future__ import annotations

import numpy as np

from xcomp.backends.cpp.unit import CppUnit
from xcomp.ir.types import DType

_MODEL = """
struct Model { const float* w; const float* bias; float* arena; char error[256]; };
extern "C" void* xc_create(const void* const* weights) {
  Model* m = new Model();
  m->w = (const float*)weights[0];
  m->bias = (const float*)weights[1];
  m->arena = (float*)xc_aligned_alloc(ARENA);
  m->error[0] = 0;
  if (!m->arena) { delete m; return nullptr; }
  return m;
}
extern "C" const char* xc_error(void* model) { return ((Model*)model)->error; }
extern "C" void xc_destroy(void* model) { Model* m = (Model*)model; xc_aligned_free(m->arena); delete m; }
"""

# y = gelu_tanh(x @ w + bias) + x2 * s, with s a host f64 scalar, x: (M, K), w: (K, N); error if s < 0
MLP_SOURCE = """#include "xcomp_runtime.h"
#define ARENA (M * N * 4)
""" + _MODEL + """
extern "C" int xc_run(void* model, const void* const* inputs, void* const* outputs) {
  Model* m = (Model*)model;
  const float* x = (const float*)inputs[0];
  const float* x2 = (const float*)inputs[1];
  const double s = *(const double*)inputs[2];
  float* y = (float*)outputs[0];
  if (s < 0) { snprintf(m->error, sizeof m->error, "scale must be >= 0, got %g", s); return 1; }
  float* t = m->arena;
  xc_sgemm(false, false, M, N, K, 1.f, x, K, m->w, N, 0.f, t, N);
  xc_parallel_for(M * N, 4096, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const float v = t[i] + m->bias[i % N];
      y[i] = 0.5f * v * (1.f + tanhf(0.7978845608f * (v + 0.044715f * v * v * v))) + x2[i] * (float)s;
    }
  });
  return 0;
}
"""


def mlp_unit(M: int = 8, K: int = 32, N: int = 48, name: str = "mlp") -> CppUnit:
    source = MLP_SOURCE.replace("#define ARENA", f"#include <stdio.h>\n#define M {M}\n#define K {K}\n"
                                                 f"#define N {N}\n#define ARENA")
    return CppUnit(source=source, inputs=[(DType.F32, (M, K)), (DType.F32, (M, N)), (DType.F64, ())],
                   outputs=[(DType.F32, (M, N))],
                   weights=[("fc.weight", DType.F32, (K, N)), ("fc.bias", DType.F32, (N,))],
                   uses_blas=True, arena_bytes=M * N * 4, name=name)


def mlp_weights(K: int = 32, N: int = 48, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"fc.weight": (rng.standard_normal((K, N)) / np.sqrt(K)).astype(np.float32),
            "fc.bias": rng.standard_normal(N, dtype=np.float32)}


def mlp_inputs(M: int = 8, K: int = 32, N: int = 48, seed: int = 1) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((M, K), dtype=np.float32), rng.standard_normal((M, N), dtype=np.float32),
            np.array(0.5)]


def mlp_expected(weights, inputs) -> np.ndarray:
    x, x2, s = (np.asarray(a, np.float64) for a in inputs)
    v = x @ weights["fc.weight"].astype(np.float64) + weights["fc.bias"]
    return (0.5 * v * (1 + np.tanh(0.7978845608 * (v + 0.044715 * v ** 3))) + x2 * s).astype(np.float32)


# dtypes: a (f16), b (bf16), flag (bool), n (i64 scalar) -> (f16 a*n + b, bf16 a - b, bool a > b | flag, i32 count)
DTYPES_SOURCE = """#include "xcomp_runtime.h"
extern "C" void* xc_create(const void* const*) { return xc_aligned_alloc(8); }
extern "C" const char* xc_error(void*) { return ""; }
extern "C" void xc_destroy(void* m) { xc_aligned_free(m); }
extern "C" int xc_run(void*, const void* const* in, void* const* out) {
  const uint16_t* a = (const uint16_t*)in[0];
  const uint16_t* b = (const uint16_t*)in[1];
  const uint8_t* flag = (const uint8_t*)in[2];
  const int64_t n = *(const int64_t*)in[3];
  uint16_t* o0 = (uint16_t*)out[0];
  uint16_t* o1 = (uint16_t*)out[1];
  uint8_t* o2 = (uint8_t*)out[2];
  int32_t count = 0;
  for (int64_t i = 0; i < SIZE; ++i) {
    const float x = xc_f16_to_f32(a[i]), y = xc_bf16_to_f32(b[i]);
    o0[i] = xc_f32_to_f16(x * (float)n + y);
    o1[i] = xc_f32_to_bf16(x - y);
    o2[i] = (x > y) | flag[i];
    count += o2[i];
  }
  *(int32_t*)out[3] = count;
  return 0;
}
"""


def dtypes_unit(size: int = 37) -> CppUnit:
    return CppUnit(source=DTYPES_SOURCE.replace("SIZE", str(size)),
                   inputs=[(DType.F16, (size,)), (DType.BF16, (size,)), (DType.BOOL, (size,)), (DType.I64, ())],
                   outputs=[(DType.F16, (size,)), (DType.BF16, (size,)), (DType.BOOL, (size,)), (DType.I32, ())],
                   weights=[], uses_blas=False, arena_bytes=0, name="dtypes")


def bf16_round(a: np.ndarray) -> np.ndarray:
    """float32 values rounded to bfloat16 (nearest even), as float32."""
    from xcomp.backends.cpp.runtime import bf16_bits_to_f32, f32_to_bf16_bits
    return bf16_bits_to_f32(f32_to_bf16_bits(np.asarray(a, np.float32)))


def dtypes_expected(a, b, flag, n):
    a32, b32 = np.asarray(a, np.float32), bf16_round(b)
    gt = (a32 > b32) | np.asarray(flag)
    return [(a32 * np.float32(n) + b32).astype(np.float16), bf16_round(a32 - b32), gt,
            np.array(gt.sum(), np.int32)]


# exercises xcomp_runtime.h directly (built with -DXC_RUNTIME_TEST for xc_runtime_sgemm_fallback)
RUNTIME_PROBE_SOURCE = """#include "xcomp_runtime.h"
extern "C" void* xc_create(const void* const*) { return xc_aligned_alloc(8); }
extern "C" int xc_run(void*, const void* const*, void* const*) { return 0; }
extern "C" const char* xc_error(void*) { return ""; }
extern "C" void xc_destroy(void* m) { xc_aligned_free(m); }
// out[i] += 1 for every i in [0, n); returns how many chunks ran, writes distinct worker count
extern "C" int probe_parallel_for(int64_t n, int64_t grain, int64_t* out) {
  int chunks = 0;
  xc_parallel_for(n, grain, [&](int64_t b, int64_t e) {
    __atomic_add_fetch(&chunks, 1, __ATOMIC_RELAXED);
    for (int64_t i = b; i < e; ++i) out[i] += 1;
  });
  return chunks;
}
// a parallel loop inside a parallel loop runs serially inside (no deadlock, every index once)
extern "C" int probe_nested(int64_t n, int64_t* out) {
  xc_parallel_for(n, 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i)
      xc_parallel_for(n, 1, [&](int64_t b2, int64_t e2) { for (int64_t j = b2; j < e2; ++j) out[i * n + j] += 1; });
  });
  return 0;
}
extern "C" void probe_sgemm(int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                            int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  xc_sgemm(ta != 0, tb != 0, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
extern "C" void probe_f16_to_f32(const uint16_t* h, float* f, int64_t n) { for (int64_t i = 0; i < n; ++i) f[i] = xc_f16_to_f32(h[i]); }
extern "C" void probe_f32_to_f16(const float* f, uint16_t* h, int64_t n) { for (int64_t i = 0; i < n; ++i) h[i] = xc_f32_to_f16(f[i]); }
extern "C" void probe_bf16_to_f32(const uint16_t* h, float* f, int64_t n) { for (int64_t i = 0; i < n; ++i) f[i] = xc_bf16_to_f32(h[i]); }
extern "C" void probe_f32_to_bf16(const float* f, uint16_t* h, int64_t n) { for (int64_t i = 0; i < n; ++i) h[i] = xc_f32_to_bf16(f[i]); }
"""


def runtime_probe_unit() -> CppUnit:
    return CppUnit(source=RUNTIME_PROBE_SOURCE, inputs=[], outputs=[], weights=[], uses_blas=True,
                   arena_bytes=0, name="runtime_probe")


MATH_SOURCE = """#include "xcomp_runtime.h"
extern "C" void* xc_create(const void* const*) { return xc_aligned_alloc(8); }
extern "C" int xc_run(void*, const void* const*, void* const*) { return 0; }
extern "C" const char* xc_error(void*) { return ""; }
extern "C" void xc_destroy(void* m) { xc_aligned_free(m); }
extern "C" void probe_exp(const float* x, float* y, int64_t n) { for (int64_t i = 0; i < n; ++i) y[i] = xc_vexp(x[i]); }
extern "C" void probe_exp_nonpos(const float* x, float* y, int64_t n) { for (int64_t i = 0; i < n; ++i) y[i] = xc_vexp_nonpos(x[i]); }
extern "C" void probe_tanh(const float* x, float* y, int64_t n) { for (int64_t i = 0; i < n; ++i) y[i] = xc_vtanh(x[i]); }
extern "C" void probe_sigmoid(const float* x, float* y, int64_t n) { for (int64_t i = 0; i < n; ++i) y[i] = xc_vsigmoid(x[i]); }
extern "C" void probe_erf(const float* x, float* y, int64_t n) { for (int64_t i = 0; i < n; ++i) y[i] = xc_verf(x[i]); }
"""


def math_unit() -> CppUnit:
    return CppUnit(source=MATH_SOURCE, inputs=[], outputs=[], weights=[], uses_blas=False, arena_bytes=0,
                   name="math_probe")
