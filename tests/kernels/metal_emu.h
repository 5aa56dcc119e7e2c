// Metal Shading Language on the CPU, enough for xcomp's generated kernels (see emu_runtime.h).
#pragma once
#include "emu_runtime.h"

#define XC_TG
#define threadgroup static
#define device
#define constant
typedef unsigned int uint;
typedef unsigned char uchar;
typedef _Float16 half;
struct uint3 { uint x, y, z; };

struct bfloat16_t {
  emu::bf16 v;
  bfloat16_t() = default;
  bfloat16_t(float f) : v(f) {}
  operator float() const { return (float)v; }
};

namespace metal {
using std::exp; using std::exp2; using std::log; using std::log2; using std::log10; using std::sqrt;
using std::sin; using std::cos; using std::tan; using std::asin; using std::acos; using std::atan;
using std::sinh; using std::cosh; using std::tanh; using std::asinh; using std::acosh; using std::atanh;
using std::floor; using std::ceil; using std::rint; using std::trunc; using std::fmod; using std::pow;
using std::abs; using std::atan2; using std::copysign;
inline float rsqrt(float x) { return 1.0f / std::sqrt(x); }
template <class T> inline T min(T a, T b) { return a < b ? a : b; }
template <class T> inline T max(T a, T b) { return a > b ? a : b; }
enum class mem_flags { mem_none, mem_threadgroup, mem_device };
inline void threadgroup_barrier(mem_flags) { emu::sync_all(); }
inline float simd_sum(float v) { return emu::warp_fold(v, [](float a, float b) { return a + b; }); }
inline float simd_max(float v) { return emu::warp_fold(v, [](float a, float b) { return std::fmax(a, b); }); }
inline float simd_min(float v) { return emu::warp_fold(v, [](float a, float b) { return std::fmin(a, b); }); }
inline bool simd_any(bool v) { return emu::warp_fold(v ? 1 : 0, [](int a, int b) { return a | b; }) != 0; }
}  // namespace metal
using metal::mem_flags;
using metal::threadgroup_barrier;
