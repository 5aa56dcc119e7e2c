// Test-only stand-in for templates/cpp/runtime.h (the build/load layer's header), used by
// tests/cpp until that header exists: half conversions and a plain row-major sgemm.
#pragma once
#include <cstdint>
#include <cstring>
static inline float xc_f16_to_f32(uint16_t h) {
  const uint32_t s = (uint32_t)(h & 0x8000) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ff;
  uint32_t f;
  if (e == 0) {
    if (m == 0) f = s;
    else { float v = (float)m * (1.0f / 16777216.0f); std::memcpy(&f, &v, 4); f |= s; }
  } else if (e == 31) f = s | 0x7f800000u | (m << 13);
  else f = s | ((e + 112) << 23) | (m << 13);
  float out; std::memcpy(&out, &f, 4); return out;
}
static inline uint16_t xc_f32_to_f16(float x) {
  uint32_t f; std::memcpy(&f, &x, 4);
  const uint32_t s = (f >> 16) & 0x8000; int32_t e = (int32_t)((f >> 23) & 0xff) - 127 + 15;
  uint32_t m = f & 0x7fffff;
  if (((f >> 23) & 0xff) == 0xff) return (uint16_t)(s | 0x7c00 | (m ? 0x200 : 0));
  if (e >= 31) return (uint16_t)(s | 0x7c00);
  if (e <= 0) {
    if (e < -10) return (uint16_t)s;
    m |= 0x800000; const int shift = 14 - e;
    uint32_t r = m >> shift; const uint32_t rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (r & 1))) ++r;
    return (uint16_t)(s | r);
  }
  uint32_t r = ((uint32_t)e << 10) | (m >> 13); const uint32_t rem = m & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (r & 1))) ++r;
  return (uint16_t)(s | r);
}
static inline float xc_bf16_to_f32(uint16_t h) { uint32_t f = (uint32_t)h << 16; float o; std::memcpy(&o, &f, 4); return o; }
static inline uint16_t xc_f32_to_bf16(float x) {
  uint32_t f; std::memcpy(&f, &x, 4);
  if ((f & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((f >> 16) | 0x40);
  return (uint16_t)((f + 0x7fff + ((f >> 16) & 1)) >> 16);
}
static inline void xc_sgemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                            int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      float acc = 0.0f;
      for (int64_t k = 0; k < K; ++k)
        acc += (ta ? A[k * lda + i] : A[i * lda + k]) * (tb ? B[j * ldb + k] : B[k * ldb + j]);
      C[i * ldc + j] = alpha * acc + (beta == 0.0f ? 0.0f : beta * C[i * ldc + j]);
    }
}
