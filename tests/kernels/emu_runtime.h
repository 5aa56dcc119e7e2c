// CPU emulation of a GPU grid for tests: threadgroups run one after another, the threads of a
// threadgroup run as std::threads, so barriers, threadgroup memory and simdgroup/warp collectives
// behave as on the device. `threadgroup`/`__shared__` variables become function statics: shared by
// the threads of the running group.
#pragma once
#include <barrier>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

namespace emu {
struct Ctx { unsigned tid, gid, threads, lane, warp; };
inline thread_local Ctx ctx;

struct Group {
  std::barrier<> all;
  std::vector<std::unique_ptr<std::barrier<>>> warps;
  std::vector<double> slots;
  explicit Group(unsigned n) : all(n), slots(n) {
    for (unsigned w = 0; w * 32 < n; ++w) warps.emplace_back(new std::barrier<>(std::min(32u, n - w * 32)));
  }
};
inline Group* group = nullptr;

inline void sync_all() { group->all.arrive_and_wait(); }
inline void sync_warp() { group->warps[ctx.warp]->arrive_and_wait(); }

// every lane of the warp gets f folded over the lanes' values, in lane order
template <class T, class F> T warp_fold(T v, F f) {
  group->slots[ctx.tid] = (double)v;
  sync_warp();
  const unsigned base = ctx.warp * 32, width = std::min(32u, ctx.threads - base);
  T r = (T)group->slots[base];
  for (unsigned i = 1; i < width; ++i) r = f(r, (T)group->slots[base + i]);
  sync_warp();
  return r;
}
template <class T> T warp_xor(T v, unsigned offset) {
  group->slots[ctx.tid] = (double)v;
  sync_warp();
  const T r = (T)group->slots[ctx.warp * 32 + ((ctx.tid % 32) ^ offset)];
  sync_warp();
  return r;
}

// run `body` for every thread of `groups` threadgroups of `threads` threads
inline void run_grid(unsigned groups, unsigned threads, const std::function<void()>& body) {
  for (unsigned g = 0; g < groups; ++g) {
    Group grp(threads);
    group = &grp;
    std::vector<std::thread> ts;
    for (unsigned t = 0; t < threads; ++t)
      ts.emplace_back([&, t] { ctx = Ctx{t, g, threads, t % 32, t / 32}; body(); });
    for (auto& t : ts) t.join();
  }
}

// bfloat16 storage: the upper half of a float32, rounded to nearest even
struct bf16 {
  uint16_t bits = 0;
  bf16() = default;
  explicit bf16(float f) {
    uint32_t u; std::memcpy(&u, &f, 4);
    bits = std::isnan(f) ? 0x7fc0 : (uint16_t)((u + 0x7fff + ((u >> 16) & 1)) >> 16);
  }
  explicit operator float() const { uint32_t u = (uint32_t)bits << 16; float f; std::memcpy(&f, &u, 4); return f; }
};

inline float erfinv(float x) {  // Giles, as the Metal helper
  float w = -std::log((1.0f - x) * (1.0f + x)), p;
  if (w < 5.0f) {
    w -= 2.5f; p = 2.81022636e-08f; p = 3.43273939e-07f + p * w; p = -3.5233877e-06f + p * w;
    p = -4.39150654e-06f + p * w; p = 0.00021858087f + p * w; p = -0.00125372503f + p * w;
    p = -0.00417768164f + p * w; p = 0.246640727f + p * w; p = 1.50140941f + p * w;
  } else {
    w = std::sqrt(w) - 3.0f; p = -0.000200214257f; p = 0.000100950558f + p * w;
    p = 0.00134934322f + p * w; p = -0.00367342844f + p * w; p = 0.00573950773f + p * w;
    p = -0.0076224613f + p * w; p = 0.00943887047f + p * w; p = 1.00167406f + p * w; p = 2.83297682f + p * w;
  }
  return std::fabs(x) == 1.0f ? x * INFINITY : p * x;
}
}  // namespace emu
