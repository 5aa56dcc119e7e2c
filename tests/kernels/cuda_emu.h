// CUDA device code on the CPU, enough for xcomp's generated kernels (see emu_runtime.h).
#pragma once
#include "emu_runtime.h"

#define __device__
#define __global__
#define __forceinline__ inline
#define __shared__ static
struct emu_dim3 { unsigned x, y, z; };
#define threadIdx (emu_dim3{emu::ctx.tid, 0, 0})
#define blockIdx (emu_dim3{emu::ctx.gid, 0, 0})
#define blockDim (emu_dim3{emu::ctx.threads, 1, 1})

struct __half { _Float16 v; };
struct __nv_bfloat16 { emu::bf16 v; };
inline float __half2float(__half x) { return (float)x.v; }
inline __half __float2half_rn(float x) { return __half{(_Float16)x}; }
inline float __bfloat162float(__nv_bfloat16 x) { return (float)x.v; }
inline __nv_bfloat16 __float2bfloat16_rn(float x) { return __nv_bfloat16{emu::bf16(x)}; }
inline float __int_as_float(int i) { float f; std::memcpy(&f, &i, 4); return f; }
inline void __syncthreads() { emu::sync_all(); }
template <class T> inline T __shfl_xor_sync(unsigned, T v, int offset) { return emu::warp_xor(v, (unsigned)offset); }
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline float erfinvf(float x) { return emu::erfinv(x); }
struct alignas(8) uint2 { unsigned x, y; };
struct alignas(16) uint4 { unsigned x, y, z, w; };
template <class T> inline T __ldcs(const T* p) { return *p; }
template <class T> inline void __stcs(T* p, T v) { *p = v; }
