// xcomp_runtime.h: the small runtime every generated C++ translation unit includes.
//
//   xc_parallel_for(n, grain, f)   f(begin, end) over chunks of [0, n) (at least `grain` each) run by a
//                                  persistent pthread pool (or OpenMP when built with XC_OPENMP and
//                                  -fopenmp); serial when called from inside another parallel loop.
//                                  f must not assume how many chunks or which thread runs one.
//   xc_sgemm(...)                  row-major C = alpha * op(A) op(B) + beta * C through the BLAS when
//                                  XC_HAVE_CBLAS (oneMKL, Accelerate, OpenBLAS from scipy-openblas32),
//                                  else xcomp's own packed GEMM (the portable fallback). Call it from
//                                  outside parallel regions or inside one (it then runs serially): it
//                                  parallelizes itself. xc_sgemm_weight: B a weight packed once.
//   xc_f16_to_f32 / xc_f32_to_f16 / xc_bf16_to_f32 / xc_f32_to_bf16   (round to nearest even)
//   xc_vexp / xc_vtanh / xc_verf      float math that vectorizes (libm's are scalar calls)
//   xc_aligned_alloc / xc_aligned_free   64-byte aligned memory
//
// Build configuration (set by xcomp.backends.cpp.toolchain, or by the exported CMakeLists.txt):
//   XC_HAVE_CBLAS=1, XC_CBLAS_PREFIX=<symbol prefix, e.g. scipy_ or empty>, XC_CBLAS_OPENBLAS=1 when
//   the library is OpenBLAS (its thread count follows xc_num_threads()), XC_BLAS_NAME="...";
//   oneMKL: XC_HAVE_CBLAS=1 XC_BLAS_MKL=1 XC_MKL_PATH="<.../libmkl_rt.so.2>" (opened with dlopen; -ldl).
//   XC_OPENMP=1 (with -fopenmp) runs parallel loops as OpenMP regions instead of the pool.
// Threads: XCOMP_NUM_THREADS, else OMP_NUM_THREADS (OpenMP builds), else the cores this process may
// run on (its CPU affinity on Linux), else the online cores.
#ifndef XCOMP_RUNTIME_H
#define XCOMP_RUNTIME_H

#include <math.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(XC_OPENMP) && defined(_OPENMP)
#define XC_USE_OPENMP 1
#include <omp.h>
#else
#include <pthread.h>
#include <sched.h>
#endif

#ifndef XC_BLAS_NAME
#define XC_BLAS_NAME "fallback"
#endif
#ifndef XC_EXPORT
#ifdef XC_PREBUILT_GEMM  // weak: a prebuilt object made with the same precompiled prelude defines them too
#define XC_EXPORT extern "C" __attribute__((visibility("default"), weak))
#else
#define XC_EXPORT extern "C" __attribute__((visibility("default")))
#endif
#endif
// XC_PREBUILT_GEMM (the cpp target's builds, backends/cpp/prebuilt.py): xc_sgemm and xc_sgemm_weight are
// compiled once per toolchain into an object (this header with XC_PREBUILT_GEMM_OBJECT) that each
// library links, instead of in every program; the state both parts use (threads, the pool) is then
// one definition per library (XC_SHARED: hidden, not static).
#ifdef XC_PREBUILT_GEMM
#define XC_SHARED inline __attribute__((visibility("hidden")))
#else
#define XC_SHARED static inline
#endif

// -- memory -----------------------------------------------------------------------------------
static inline void* xc_aligned_alloc(size_t bytes) {
  void* p = nullptr;
  if (posix_memalign(&p, 64, bytes ? bytes : 64) != 0) return nullptr;
  return p;
}
static inline void xc_aligned_free(void* p) { free(p); }

// -- half and bfloat16 (bit patterns in uint16_t; float math in float32) ------------------------
static inline uint32_t xc_f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float xc_bits_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

static inline float xc_bf16_to_f32(uint16_t h) { return xc_bits_f32((uint32_t)h << 16); }
static inline uint16_t xc_f32_to_bf16(float f) {
  uint32_t u = xc_f32_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x0040u);  // quiet NaN
  return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
// IEEE half <-> float without F16C (after M. Dukhan's FP16 library; exact, round to nearest even).
static inline float xc_f16_to_f32(uint16_t h) {
  const uint32_t w = (uint32_t)h << 16, sign = w & 0x80000000u, two_w = w + w;
  const float normalized = xc_bits_f32((two_w >> 4) + (0xE0u << 23)) * 0x1.0p-112f;
  const float denormalized = xc_bits_f32((two_w >> 17) | (126u << 23)) - 0.5f;
  return xc_bits_f32(sign | (two_w < (1u << 27) ? xc_f32_bits(denormalized) : xc_f32_bits(normalized)));
}
static inline uint16_t xc_f32_to_f16(float f) {
  float base = (fabsf(f) * 0x1.0p+112f) * 0x1.0p-110f;
  const uint32_t w = xc_f32_bits(f), shl1_w = w + w, sign = w & 0x80000000u;
  uint32_t bias = shl1_w & 0xFF000000u;
  if (bias < 0x71000000u) bias = 0x71000000u;
  base = xc_bits_f32((bias >> 1) + 0x07800000u) + base;
  const uint32_t bits = xc_f32_bits(base);
  const uint32_t nonsign = ((bits >> 13) & 0x00007C00u) + (bits & 0x00000FFFu);
  return (uint16_t)((sign >> 16) | (shl1_w > 0xFF000000u ? 0x7E00u : nonsign));
}

// -- vectorizable float math --------------------------------------------------------------------
// Branch-free, inline, so that GCC/Clang vectorize loops calling them (libm's expf/tanhf/erff are
// scalar calls). Accuracy (tests/cpp/test_cpp_runtime.py): xc_vexp <= 2 ulp, xc_vtanh <= 3 ulp, xc_vsigmoid <= 3 ulp,
// xc_verf <= 2e-7 absolute (<= 3 ulp below 0.5); NaN, +-inf, overflow to inf and underflow to 0 as libm.
static inline float xc_vexp(float x) {
  const float c = x < -104.0f ? -104.0f : (x > 89.0f || x != x ? 89.0f : x);  // (fminf is a libm call)
  const float n = (c * 1.44269504088896341f + 12582912.0f) - 12582912.0f;  // round(c / ln 2)
  const float r = (c - n * 0.693359375f) + n * 2.12194440e-4f;               // c - n ln 2 (two parts)
  const float y = ((((((1.9875691500e-4f * r + 1.3981999507e-3f) * r + 8.3334519073e-3f) * r +
                      4.1665795894e-2f) * r + 1.6666665459e-1f) * r + 5.0000001201e-1f) * r * r) + r + 1.0f;
  const int32_t k = (int32_t)n, k1 = k >> 1, k2 = k - k1;  // 2^k as two factors: no overflow of the exponent
  const float out = y * xc_bits_f32((uint32_t)(k1 + 127) << 23) * xc_bits_f32((uint32_t)(k2 + 127) << 23);
  return x != x ? x : out;
}
// exp(x) for x <= 0 (or NaN): softmax's exp(x - max(x)), which the kernel graph marks (graph.py
// mark_nonpositive). No overflow to guard and results below the normal range flushed to 0 (x < -87.6;
// exact zeros for -inf masks), so one exponent factor and no clamps; a degree-6 minimax polynomial in
// Estrin form (depth 3 instead of 7 dependent FMAs: the exp pass of a softmax row is latency-bound).
// 1024x4096 softmax exp pass on one core: 9.4 ms with xc_vexp, 6.0 with this. <= 2 ulp on [-87.6, 0]
// (tests/cpp/test_cpp_runtime.py), NaN for NaN; still exact up to x = 88.
static inline float xc_vexp_nonpos(float x) {
  const float t = x * 1.44269504088896341f + 12582912.0f;  // 1.5 * 2^23 + round(x / ln 2): k in t's low bits
  const float n = t - 12582912.0f;
  const float r = (x - n * 0.693359375f) + n * 2.12194440e-4f;
  const float r2 = r * r, r4 = r2 * r2;
  const float y = (1.381461275741458e-3f * r2 + (8.368710055947304e-3f * r + 4.166838899254799e-2f)) * r4 +
                  ((1.666652113199234e-1f * r + 4.999999403953552e-1f) * r2 + (r + 1.0f));
  uint32_t tb;
  memcpy(&tb, &t, 4);
  return x < -87.6f ? 0.0f : y * xc_bits_f32((tb << 23) + (127u << 23));   // y * 2^k
}
static inline float xc_vtanh(float x) {
  const float a = fabsf(x), z = x * x;
  const float small = ((((-5.70498872745e-3f * z + 2.06390887954e-2f) * z - 5.37397155531e-2f) * z +
                        1.33314422036e-1f) * z - 3.33332819422e-1f) * z * x + x;
  const float e = xc_vexp_nonpos(-2.0f * a);                 // in (0, 0.29] here: no overflow to guard
  const float big = copysignf(1.0f - 2.0f * e / (1.0f + e), x);
  return a < 0.625f ? small : big;
}
// 1 / (1 + exp(-x)) as e / (1 + e) or 1 / (1 + e) with e = exp(-|x|) <= 1 (xc_vexp_nonpos: no clamps).
static inline float xc_vsigmoid(float x) {
  const float e = xc_vexp_nonpos(-fabsf(x));
  return (x < 0.0f ? e : 1.0f) / (1.0f + e);
}
static inline float xc_verf(float x) {
  const float a = fabsf(x), z = x * x;
  // |x| < 0.5: Taylor series of erf; else 1 - erfc, erfc(c) = exp(-c^2) R(c) with R a [3/4] rational in
  // v = (c - 0.5) / 3.4 (positive coefficients: no cancellation; fitted to erfc(c) exp(c^2) on [0.5, 3.9],
  // relative error 1.3e-9) and c = min(|x|, 3.9) (erf is 1 in float beyond). Against the former erfcc form
  // (xc_vexp of a degree-9 polynomial in 1/(1 + |x|/2)): half the work (GELU's erf on 8 lanes of AVX2 6.8
  // against 3.5 ns per element) and more accurate (1.3e-7 against 1.7e-7 absolute)
  const float small = x * (1.12837916709551257f + z * (-0.376126389031837524f + z * (0.112837916709551257f +
                      z * (-0.0268661706451312518f + z * (0.00522397762544218784f + z * -0.000854832702345085283f)))));
  const float c = a < 3.9f ? a : 3.9f, v = (c - 0.5f) * 0.29411764705882354f;
  const float p = ((1.3636721571500467f * v + 2.6111341978473113f) * v + 1.963290464832387f) * v + 0.6156903428722489f;
  const float q = (((8.22068274269958f * v + 16.929529711501736f) * v + 14.537772342668111f) * v +
                   6.019961254476932f) * v + 1.0f;
  const float big = copysignf(1.0f - xc_vexp_nonpos(-c * c) * (p / q), x);
  return a < 0.5f ? small : (a != a ? x : big);
}

// -- threads ----------------------------------------------------------------------------------
static inline void xc_cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}
XC_SHARED int& xc_threads_slot() { static int n = 0; return n; }
static inline int xc_default_threads() {
  const char* s = getenv("XCOMP_NUM_THREADS");
  int n = s ? atoi(s) : 0;
#ifdef XC_USE_OPENMP
  if (n <= 0) n = omp_get_max_threads();
#endif
#ifdef __linux__
  cpu_set_t cpus;  // the cores this process may run on (taskset, cgroups' cpusets)
  if (n <= 0 && sched_getaffinity(0, sizeof cpus, &cpus) == 0) n = CPU_COUNT(&cpus);
#endif
  if (n <= 0) n = (int)sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? n : 1;
}
static inline int xc_num_threads() {
  int& n = xc_threads_slot();
  if (n <= 0) n = xc_default_threads();
  return n;
}
static inline void xc_blas_set_threads(int n);
// Built with XC_BLAS_OWN_THREADS: the BLAS runs its own threads on each whole product (default: the
// BLAS runs single-threaded on blocks that xcomp's pool hands out).
static inline bool xc_blas_own_threads() {
#ifdef XC_BLAS_OWN_THREADS
  return true;
#else
  return false;
#endif
}

// [begin, end) of chunk t of `chunks` equal parts of [0, n)
static inline int64_t xc_chunk_begin(int64_t n, int64_t t, int64_t chunks) { return n / chunks * t + (t < n % chunks ? t : n % chunks); }

#ifdef XC_USE_OPENMP
// OpenMP (opt-in: XC_OPENMP with -fopenmp): one static chunk per thread.
static inline bool xc_in_parallel() { return omp_in_parallel(); }
template <class F> inline void xc_parallel_for(int64_t n, int64_t grain, F&& f) {
  if (n <= 0) return;
  if (grain < 1) grain = 1;
  int64_t chunks = (n + grain - 1) / grain, nt = xc_num_threads();
  if (chunks > nt) chunks = nt;
  if (chunks <= 1 || omp_in_parallel()) { f((int64_t)0, n); return; }
#pragma omp parallel num_threads((int)chunks)
  {
    const int64_t t = omp_get_thread_num(), c = omp_get_num_threads();
    const int64_t b = xc_chunk_begin(n, t, c), e = xc_chunk_begin(n, t + 1, c);
    if (b < e) f(b, e);
  }
}
#else
// The default: a persistent pool of xc_num_threads() - 1 workers plus the calling thread, which
// claim chunks of a job from one atomic ticket. The caller claims too and only waits for chunks
// already running, so a worker the OS has descheduled (a busy machine) delays nothing it has not
// started: on a loaded machine the caller does the work alone instead of waiting at a barrier.
//   ticket = generation (24 bits) | chunks (20 bits) | next chunk (20 bits)
// A job's fields live in slot generation % 2 and are read only by a thread that owns an unfinished
// chunk of it, so the next-but-one job cannot overwrite them while they are in use. Idle workers
// spin briefly, yield for a while, then sleep on a condition variable.
constexpr int64_t XC_CHUNKS_PER_THREAD = 4, XC_MAX_CHUNKS = (1 << 20) - 1;
#ifndef XC_POOL_YIELDS
#define XC_POOL_YIELDS 0  // sched_yield rounds of an idle worker after spinning, before it sleeps
#endif
struct XcJob {
  void (*run)(void*, int64_t, int64_t);
  void* ctx;
  int64_t n, chunks;
  int64_t done;  // chunks finished (atomic)
};
struct XcPool {
  uint64_t ticket = 0;  // atomic
  XcJob jobs[2] = {};
  int busy = 0;         // a caller owns the pool (atomic); a second concurrent caller runs serially
  int sleepers = 0;     // atomic
  int workers = 0;
  uint64_t generation = 0;
  pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
  pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
};
static inline uint64_t xc_ticket(uint64_t gen, uint64_t chunks, uint64_t next) { return (gen << 40) | (chunks << 20) | next; }
XC_SHARED bool& xc_in_worker() { static __thread bool w = false; return w; }
static inline bool xc_in_parallel() { return xc_in_worker(); }
XC_SHARED XcPool*& xc_pool_slot() { static XcPool* p = nullptr; return p; }
// claim and run chunks of the current job until none is left; true if any ran
static inline bool xc_pool_work(XcPool& p) {
  bool ran = false;
  for (;;) {
    uint64_t t = __atomic_load_n(&p.ticket, __ATOMIC_ACQUIRE);
    const uint64_t next = t & 0xFFFFF, chunks = (t >> 20) & 0xFFFFF;
    if (next >= chunks) return ran;
    if (!__atomic_compare_exchange_n(&p.ticket, &t, t + 1, true, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) continue;
    XcJob& j = p.jobs[(t >> 40) & 1];
    j.run(j.ctx, xc_chunk_begin(j.n, (int64_t)next, j.chunks), xc_chunk_begin(j.n, (int64_t)next + 1, j.chunks));
    __atomic_add_fetch(&j.done, 1, __ATOMIC_RELEASE);
    ran = true;
  }
}
static inline bool xc_pool_has_work(XcPool& p) {
  const uint64_t t = __atomic_load_n(&p.ticket, __ATOMIC_SEQ_CST);
  return (t & 0xFFFFF) < ((t >> 20) & 0xFFFFF);
}
static inline void* xc_pool_worker(void*) {
  XcPool& p = *xc_pool_slot();  // set before any worker starts
  xc_in_worker() = true;
  for (;;) {
    if (xc_pool_work(p)) continue;
    // idle: spin (~100 us; the next parallel loop of a call is usually microseconds away), then
    // XC_POOL_YIELDS rounds of sched_yield, then sleep
    bool found = false;
    for (int spin = 0; spin < 4000 + XC_POOL_YIELDS && !found; ++spin) {
      if (spin < 4000) xc_cpu_relax(); else sched_yield();
      found = xc_pool_has_work(p);
    }
    if (found) continue;
    pthread_mutex_lock(&p.mu);
    __atomic_add_fetch(&p.sleepers, 1, __ATOMIC_SEQ_CST);
    while (!xc_pool_has_work(p)) pthread_cond_wait(&p.wake, &p.mu);
    __atomic_sub_fetch(&p.sleepers, 1, __ATOMIC_SEQ_CST);
    pthread_mutex_unlock(&p.mu);
  }
  return nullptr;
}
XC_SHARED XcPool& xc_pool() {
  static XcPool* pool = [] {
    XcPool* p = new XcPool();
    xc_pool_slot() = p;
    const int want = xc_num_threads() - 1;
    for (int i = 0; i < want; ++i) {
      pthread_t t;
      if (pthread_create(&t, nullptr, xc_pool_worker, nullptr) != 0) break;
      pthread_detach(t);
      ++p->workers;
    }
    return p;
  }();
  return *pool;
}
template <class T> struct xc_unref { typedef T type; };
template <class T> struct xc_unref<T&> { typedef T type; };
// The loop body is compiled once, in its trampoline (never inlined into the caller), and the pool
// logic once, in xc_parallel_run: inlining both into every parallel loop of a program compiled each
// body two or three times (GPT block: 2.1 s -> 1.4 s of g++ CPU time, the same code run).
template <class F> static inline __attribute__((noinline)) void xc_pool_trampoline(void* ctx, int64_t b, int64_t e) {
  (*(F*)ctx)(b, e);
}
static inline __attribute__((noinline)) void xc_parallel_run(int64_t n, int64_t grain,
                                                             void (*run)(void*, int64_t, int64_t), void* ctx) {
  if (n <= 0) return;
  if (grain < 1) grain = 1;
  const int64_t nt = xc_num_threads();
  int64_t chunks = (n + grain - 1) / grain;
  if (chunks <= 1 || nt <= 1 || xc_in_worker()) { run(ctx, (int64_t)0, n); return; }
  XcPool& p = xc_pool();
  int idle = 0;
  if (p.workers == 0 || !__atomic_compare_exchange_n(&p.busy, &idle, 1, false, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
    run(ctx, (int64_t)0, n);  // no workers, or another thread is using the pool right now
    return;
  }
  const int64_t most = (p.workers + 1) * XC_CHUNKS_PER_THREAD;
  if (chunks > most) chunks = most;
  if (chunks > XC_MAX_CHUNKS) chunks = XC_MAX_CHUNKS;
  const uint64_t gen = ++p.generation & 0xFFFFFF;
  XcJob& j = p.jobs[gen & 1];
  j.run = run; j.ctx = ctx; j.n = n; j.chunks = chunks;
  __atomic_store_n(&j.done, 0, __ATOMIC_RELAXED);
  __atomic_store_n(&p.ticket, xc_ticket(gen, (uint64_t)chunks, 0), __ATOMIC_SEQ_CST);
  if (__atomic_load_n(&p.sleepers, __ATOMIC_SEQ_CST) > 0) {
    pthread_mutex_lock(&p.mu);
    pthread_cond_broadcast(&p.wake);
    pthread_mutex_unlock(&p.mu);
  }
  xc_in_worker() = true;
  xc_pool_work(p);
  xc_in_worker() = false;
  for (int spin = 0; __atomic_load_n(&j.done, __ATOMIC_ACQUIRE) < chunks; ++spin)
    if (spin < 4000) xc_cpu_relax(); else sched_yield();
  __atomic_store_n(&p.busy, 0, __ATOMIC_RELEASE);
}
template <class F> inline void xc_parallel_for(int64_t n, int64_t grain, F&& f) {
  typedef typename xc_unref<F>::type Fn;
  xc_parallel_run(n, grain, &xc_pool_trampoline<Fn>, (void*)&f);
}
#endif
#define XC_HAVE_PARALLEL_FOR 1

// -- GEMM -------------------------------------------------------------------------------------
#define XC_CAT_(a, b) a##b
#define XC_CAT(a, b) XC_CAT_(a, b)
// CBLAS enums are ints in the C ABI: RowMajor 101, NoTrans 111, Trans 112 (MKL: Packed 151, BMatrix 162).
typedef void (*xc_sgemm_fn)(int, int, int, int, int, int, float, const float*, int, const float*, int, float, float*,
                            int);
typedef void (*xc_sgemv_fn)(int, int, int, int, float, const float*, int, const float*, int, float, float*, int);
#if defined(XC_HAVE_CBLAS) && defined(XC_BLAS_MKL)
// Intel oneMKL (the `mkl` wheel): libmkl_rt opened from XC_MKL_PATH with dlopen, RTLD_LOCAL (no other
// copy of the CBLAS symbols in the process, such as one inside torch, is bound by mistake), its
// threading layer set to sequential before its first call: MKL runs single-threaded on the blocks that
// xcomp's pool hands out, as OpenBLAS does. Weights are packed once with MKL's packed-GEMM API
// (cblas_sgemm_pack / cblas_sgemm_compute). Not loadable at run time: xcomp's own GEMM.
#include <dlfcn.h>
#ifndef XC_MKL_THREADING  // MKL's threading layer: 1 sequential (the default); 3 GNU OpenMP, for builds with
#define XC_MKL_THREADING 1  // XC_BLAS_OWN_THREADS (MKL's threads on each whole product; measured slower)
#endif
struct xc_mkl_api {
  xc_sgemm_fn sgemm;
  xc_sgemv_fn sgemv;
  size_t (*pack_get_size)(int, int, int, int);
  void (*pack)(int, int, int, int, int, int, float, const float*, int, float*);
  void (*compute)(int, int, int, int, int, int, const float*, int, const float*, int, float, float*, int);
  void (*set_threads)(int);
};
static inline const xc_mkl_api* xc_mkl() {
  static const xc_mkl_api* api = []() -> const xc_mkl_api* {
    void* h = dlopen(XC_MKL_PATH, RTLD_NOW | RTLD_LOCAL);
    if (!h) return nullptr;
    if (XC_MKL_THREADING == 3) dlopen("libgomp.so.1", RTLD_NOW | RTLD_GLOBAL);  // (libmkl_gnu_thread needs it)
    if (auto layer = (int (*)(int))dlsym(h, "MKL_Set_Threading_Layer")) layer(XC_MKL_THREADING);
    static xc_mkl_api a;
    a.set_threads = (void (*)(int))dlsym(h, "MKL_Set_Num_Threads");
    a.sgemm = (xc_sgemm_fn)dlsym(h, "cblas_sgemm");
    a.sgemv = (xc_sgemv_fn)dlsym(h, "cblas_sgemv");
    a.pack_get_size = (size_t(*)(int, int, int, int))dlsym(h, "cblas_sgemm_pack_get_size");
    a.pack = (void (*)(int, int, int, int, int, int, float, const float*, int, float*))dlsym(h, "cblas_sgemm_pack");
    a.compute = (void (*)(int, int, int, int, int, int, const float*, int, const float*, int, float, float*,
                          int))dlsym(h, "cblas_sgemm_compute");
    return a.sgemm && a.sgemv && a.pack_get_size && a.pack && a.compute ? &a : nullptr;
  }();
  return api;
}
static inline bool xc_blas_ready() { return xc_mkl() != nullptr; }
static inline xc_sgemm_fn xc_blas_sgemm() { return xc_mkl()->sgemm; }
static inline xc_sgemv_fn xc_blas_sgemv() { return xc_mkl()->sgemv; }
static inline void xc_blas_set_threads(int n) {
  if (xc_mkl() && xc_mkl()->set_threads) xc_mkl()->set_threads(n);
}
#elif defined(XC_HAVE_CBLAS)
#ifndef XC_CBLAS_PREFIX
#define XC_CBLAS_PREFIX
#endif
extern "C" void XC_CAT(XC_CBLAS_PREFIX, cblas_sgemm)(int, int, int, int, int, int, float, const float*, int,
                                                      const float*, int, float, float*, int);
extern "C" void XC_CAT(XC_CBLAS_PREFIX, cblas_sgemv)(int, int, int, int, float, const float*, int, const float*, int,
                                                      float, float*, int);
static inline bool xc_blas_ready() { return true; }
static inline xc_sgemm_fn xc_blas_sgemm() { return XC_CAT(XC_CBLAS_PREFIX, cblas_sgemm); }
static inline xc_sgemv_fn xc_blas_sgemv() { return XC_CAT(XC_CBLAS_PREFIX, cblas_sgemv); }
#ifdef XC_CBLAS_OPENBLAS
extern "C" void XC_CAT(XC_CBLAS_PREFIX, openblas_set_num_threads)(int);
static inline void xc_blas_set_threads(int n) { XC_CAT(XC_CBLAS_PREFIX, openblas_set_num_threads)(n); }
#else
static inline void xc_blas_set_threads(int) {}
#endif
#else
static inline void xc_blas_set_threads(int) {}
#endif

// Portable fallback: tiles of C (XC_MC x XC_NC) in parallel; per tile, K blocks of XC_KC with packed
// panels of A (XC_MR rows) and B (XC_NR columns) and an XC_MR x XC_NR register micro-kernel.
constexpr int64_t XC_MR = 6, XC_NR = 16, XC_MC = 96, XC_NC = 256, XC_KC = 256;
typedef float xc_v8 __attribute__((vector_size(32)));  // GCC/Clang vector extension (any ISA)
static inline void xc_gemm_micro(int64_t kc, const float* ap, const float* bp, float* c, int64_t ldc,
                                 int64_t mr, int64_t nr) {
  xc_v8 acc[XC_MR][2] = {};
  for (int64_t k = 0; k < kc; ++k) {
    xc_v8 b0, b1;
    memcpy(&b0, bp + k * XC_NR, 32);
    memcpy(&b1, bp + k * XC_NR + 8, 32);
    for (int i = 0; i < XC_MR; ++i) {
      const float a = ap[k * XC_MR + i];
      acc[i][0] += a * b0;
      acc[i][1] += a * b1;
    }
  }
  float out[XC_MR][XC_NR];
  memcpy(out, acc, sizeof out);
  for (int64_t i = 0; i < mr; ++i)
    for (int64_t j = 0; j < nr; ++j) c[i * ldc + j] += out[i][j];
}
static inline void xc_gemm_tile(bool ta, bool tb, int64_t K, float alpha, const float* A, int64_t lda,
                                const float* B, int64_t ldb, float* C, int64_t ldc, int64_t i0, int64_t m,
                                int64_t j0, int64_t n, float* apack, float* bpack) {
  const int64_t mp = (m + XC_MR - 1) / XC_MR, np_ = (n + XC_NR - 1) / XC_NR;
  for (int64_t p0 = 0; p0 < K; p0 += XC_KC) {
    const int64_t kc = K - p0 < XC_KC ? K - p0 : XC_KC;
    for (int64_t q = 0; q < np_; ++q)  // B panel q: kc x XC_NR, zero padded
      for (int64_t k = 0; k < kc; ++k)
        for (int64_t j = 0; j < XC_NR; ++j) {
          const int64_t col = j0 + q * XC_NR + j, row = p0 + k;
          bpack[(q * kc + k) * XC_NR + j] = q * XC_NR + j < n ? (tb ? B[col * ldb + row] : B[row * ldb + col]) : 0.f;
        }
    for (int64_t r = 0; r < mp; ++r)  // A panel r: kc x XC_MR (alpha folded in), zero padded
      for (int64_t k = 0; k < kc; ++k)
        for (int64_t i = 0; i < XC_MR; ++i) {
          const int64_t row = i0 + r * XC_MR + i, col = p0 + k;
          apack[(r * kc + k) * XC_MR + i] = r * XC_MR + i < m ? alpha * (ta ? A[col * lda + row] : A[row * lda + col]) : 0.f;
        }
    for (int64_t r = 0; r < mp; ++r)
      for (int64_t q = 0; q < np_; ++q) {
        const int64_t mr = m - r * XC_MR < XC_MR ? m - r * XC_MR : XC_MR;
        const int64_t nr = n - q * XC_NR < XC_NR ? n - q * XC_NR : XC_NR;
        xc_gemm_micro(kc, apack + r * kc * XC_MR, bpack + q * kc * XC_NR,
                      C + (i0 + r * XC_MR) * ldc + j0 + q * XC_NR, ldc, mr, nr);
      }
  }
}
// few rows of A (a matrix-vector product per row): stream B once, no packing, parallel over columns
static inline void xc_gemm_small_m(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha,
                                   const float* A, int64_t lda, const float* B, int64_t ldb, float* C,
                                   int64_t ldc) {
  float* arow = (float*)xc_aligned_alloc(sizeof(float) * (size_t)(M * K));
  for (int64_t i = 0; i < M; ++i)
    for (int64_t k = 0; k < K; ++k) arow[i * K + k] = alpha * (ta ? A[k * lda + i] : A[i * lda + k]);
  xc_parallel_for(N, tb ? 64 : 512, [&](int64_t j0, int64_t j1) {
    for (int64_t i = 0; i < M; ++i) {
      const float* a = arow + i * K;
      float* c = C + i * ldc;
      if (!tb) {
        for (int64_t k = 0; k < K; ++k) {
          const float ak = a[k];
          const float* b = B + k * ldb;
          for (int64_t j = j0; j < j1; ++j) c[j] += ak * b[j];
        }
        continue;
      }
      for (int64_t j = j0; j < j1; ++j) {  // dot(a, row j of B) in 8 lanes
        const float* b = B + j * ldb;
        xc_v8 acc = {};
        int64_t k = 0;
        for (; k + 8 <= K; k += 8) {
          xc_v8 x, y;
          memcpy(&x, a + k, 32);
          memcpy(&y, b + k, 32);
          acc += x * y;
        }
        float s = 0.f;
        for (; k < K; ++k) s += a[k] * b[k];
        for (int l = 0; l < 8; ++l) s += acc[l];
        c[j] += s;
      }
    }
  });
  xc_aligned_free(arow);
}

static inline void xc_sgemm_fallback(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha,
                                     const float* A, int64_t lda, const float* B, int64_t ldb, float beta,
                                     float* C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) C[i * ldc + j] = beta == 0.f ? 0.f : beta * C[i * ldc + j];
  if (K <= 0 || alpha == 0.f) return;
  if (M < 4) return xc_gemm_small_m(ta, tb, M, N, K, alpha, A, lda, B, ldb, C, ldc);
  // tiles: XC_MC rows; columns narrowed (to XC_NR multiples) until every thread has a tile
  const int64_t tm = (M + XC_MC - 1) / XC_MC, nt = xc_in_parallel() ? 1 : xc_num_threads();
  int64_t nc = XC_NC;
  while (nc > XC_NR && tm * ((N + nc - 1) / nc) < nt) nc /= 2;
  const int64_t tn = (N + nc - 1) / nc;
  xc_parallel_for(tm * tn, 1, [&](int64_t t0, int64_t t1) {
    float* apack = (float*)xc_aligned_alloc(sizeof(float) * XC_MC * XC_KC);
    float* bpack = (float*)xc_aligned_alloc(sizeof(float) * XC_NC * XC_KC);
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t i0 = t / tn * XC_MC, j0 = t % tn * nc;
      xc_gemm_tile(ta, tb, K, alpha, A, lda, B, ldb, C, ldc, i0, M - i0 < XC_MC ? M - i0 : XC_MC, j0,
                   N - j0 < nc ? N - j0 : nc, apack, bpack);
    }
    xc_aligned_free(apack);
    xc_aligned_free(bpack);
  });
}

static inline void xc_sgemm_naive(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                                  int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      float s = 0.f;
      for (int64_t k = 0; k < K; ++k) s += (ta ? A[k * lda + i] : A[i * lda + k]) * (tb ? B[j * ldb + k] : B[k * ldb + j]);
      C[i * ldc + j] = alpha * s + (beta == 0.f ? 0.f : beta * C[i * ldc + j]);
    }
}
static inline void xc_sgemm_naive_block(bool ta, bool tb, int64_t i0, int64_t i1, int64_t j0, int64_t j1, int64_t K,
                                        float alpha, const float* A, int64_t lda, const float* B, int64_t ldb,
                                        float beta, float* C, int64_t ldc) {
  for (int64_t i = i0; i < i1; ++i)
    for (int64_t j = j0; j < j1; ++j) {
      float s = 0.f;
      for (int64_t k = 0; k < K; ++k) s += (ta ? A[k * lda + i] : A[i * lda + k]) * (tb ? B[j * ldb + k] : B[k * ldb + j]);
      C[i * ldc + j] = alpha * s + (beta == 0.f ? 0.f : beta * C[i * ldc + j]);
    }
}

#ifdef XC_HAVE_CBLAS
// One CBLAS call on rows [i0, i1) and columns [j0, j1) of C (M == 1: a matrix-vector product, which
// CBLAS GEMM does more slowly).
static inline void xc_cblas_block(bool ta, bool tb, int64_t M, int64_t i0, int64_t i1, int64_t j0, int64_t j1,
                                  int64_t K, float alpha, const float* A, int64_t lda, const float* B, int64_t ldb,
                                  float beta, float* C, int64_t ldc) {
  const int m = (int)(i1 - i0), n = (int)(j1 - j0);
  const float* b = tb ? B + j0 * ldb : B + j0;
  if (M == 1) {
    xc_blas_sgemv()(101, tb ? 111 : 112, tb ? n : (int)K, tb ? (int)K : n, alpha, b, (int)ldb, A, ta ? (int)lda : 1,
                    beta, C + j0, 1);
    return;
  }
  xc_blas_sgemm()(101, ta ? 112 : 111, tb ? 112 : 111, m, n, (int)K, alpha, ta ? A + i0 : A + i0 * lda, (int)lda, b,
                  (int)ldb, beta, C + i0 * ldc + j0, (int)ldc);
}
#endif

// -- xcomp's packed GEMM (without a BLAS: every product of at least XC_PACKED_MIN_M rows) -------------
// Per block of rows (as many as keep A's packed copy near 1 MiB), A is packed as tiles of XC_PMR
// interleaved rows; per panel of XC_PNR columns, B is packed into a contiguous K x XC_PNR panel; a
// register tile of XC_PMR x XC_PNR accumulates the whole K (2 x XC_PMR vector accumulators) while the
// next panel is prefetched. OpenBLAS packs both operands per call too, and loses on the small and
// thin products of models (M = 8..128 rows; single-threaded GFLOP/s on a Xeon with AVX-512: 128 x 768
// x 256: 175 against 157, 32 x 768 x 256: 155 against 109, 8 x 768 x 256: 81 against 62; the same
// on 1024-row products).
#if defined(__AVX512F__)
#define XC_PV 16
#define XC_PMR 12
#elif defined(__AVX__) || defined(__aarch64__)
#define XC_PV 8
#define XC_PMR 6
#else
#define XC_PV 4
#define XC_PMR 6
#endif
constexpr int64_t XC_PNR = 2 * XC_PV, XC_PACKED_MIN_M = 4;
typedef float xc_pv __attribute__((vector_size(XC_PV * 4)));
static inline xc_pv xc_pv_load(const float* p) { xc_pv v; memcpy(&v, p, sizeof v); return v; }
static inline void xc_pv_store(float* p, xc_pv v) { memcpy(p, &v, sizeof v); }
// thread-local packing buffers, grown on demand and kept (the pool's threads live as long as the process)
struct XcScratch { float* p; int64_t n; };
static inline float* xc_scratch(XcScratch& s, int64_t n) {
  if (n > s.n) {
    xc_aligned_free(s.p);
    s.p = (float*)xc_aligned_alloc(sizeof(float) * (size_t)n);
    s.n = s.p ? n : 0;
  }
  return s.p;
}
static inline XcScratch& xc_scratch_a() { static __thread XcScratch s = {nullptr, 0}; return s; }
static inline XcScratch& xc_scratch_b() { static __thread XcScratch s = {nullptr, 0}; return s; }
// C[0:MR, 0:nr] = alpha * (A tile) . (panel: K x XC_PNR) + beta * C; the A tile packed (lda == 0: element
// (i, k) at ap[k * MR + i]) or rows of A as they are (ap[i * lda + k]); pf: a panel to prefetch
template <int MR>
static inline void xc_pkern(int64_t K, const float* ap, int64_t lda, const float* bp, float* C, int64_t ldc,
                            int64_t nr, float alpha, float beta, const float* pf) {  // pf: the next panel
  xc_pv acc[MR][2];
#pragma GCC unroll 12
  for (int i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = xc_pv{};
  for (int64_t k = 0; k < K; ++k) {
    const xc_pv b0 = xc_pv_load(bp + k * XC_PNR), b1 = xc_pv_load(bp + k * XC_PNR + XC_PV);
    if (pf) {
      __builtin_prefetch(pf + k * XC_PNR, 0, 3);
      if (XC_PNR > 16) __builtin_prefetch(pf + k * XC_PNR + 16, 0, 3);
    }
#pragma GCC unroll 12
    for (int i = 0; i < MR; ++i) {
      const float a = lda ? ap[i * lda + k] : ap[k * MR + i];
      acc[i][0] += a * b0;
      acc[i][1] += a * b1;
    }
  }
  if (nr == XC_PNR) {
    for (int i = 0; i < MR; ++i) {
      float* c = C + i * ldc;
      xc_pv r0 = alpha * acc[i][0], r1 = alpha * acc[i][1];
      if (beta != 0.f) {
        r0 += beta * xc_pv_load(c);
        r1 += beta * xc_pv_load(c + XC_PV);
      }
      xc_pv_store(c, r0);
      xc_pv_store(c + XC_PV, r1);
    }
    return;
  }
  for (int i = 0; i < MR; ++i) {
    float out[XC_PNR];
    xc_pv_store(out, acc[i][0]);
    xc_pv_store(out + XC_PV, acc[i][1]);
    float* c = C + i * ldc;
    for (int64_t j = 0; j < nr; ++j) c[j] = alpha * out[j] + (beta != 0.f ? beta * c[j] : 0.f);
  }
}
template <int MR>
static inline void xc_pkern_upto(int64_t mr, int64_t K, const float* ap, int64_t lda, const float* bp, float* C,
                                 int64_t ldc, int64_t nr, float alpha, float beta, const float* pf) {
  if (mr == MR) return lda ? xc_pkern<MR>(K, ap, lda, bp, C, ldc, nr, alpha, beta, pf)
                           : xc_pkern<MR>(K, ap, 0, bp, C, ldc, nr, alpha, beta, pf);
  if constexpr (MR > 1) return xc_pkern_upto<MR - 1>(mr, K, ap, lda, bp, C, ldc, nr, alpha, beta, pf);
}
// pack rows [i0, i0 + mr) of op(A) (K columns) as one tile: ap[k * mr + i]
static inline void xc_pack_a(bool ta, const float* A, int64_t lda, int64_t i0, int64_t mr, int64_t K, float* ap) {
  if (ta) {
    for (int64_t k = 0; k < K; ++k) memcpy(ap + k * mr, A + k * lda + i0, sizeof(float) * (size_t)mr);
    return;
  }
  if (mr == XC_PMR) {  // a whole tile: the row loop unrolled (2.7x faster than with a variable count)
    const float* a0 = A + i0 * lda;
    for (int64_t k = 0; k < K; ++k)
#pragma GCC unroll 16
      for (int i = 0; i < XC_PMR; ++i) ap[k * XC_PMR + i] = a0[i * lda + k];
    return;
  }
  for (int64_t k = 0; k < K; ++k)
    for (int64_t i = 0; i < mr; ++i) ap[k * mr + i] = A[(i0 + i) * lda + k];
}
// pack columns [j0, j0 + nr) of op(B) (K rows) into a K x XC_PNR panel, zero padded
static inline void xc_pack_b(bool tb, const float* B, int64_t ldb, int64_t j0, int64_t nr, int64_t K, float* bp) {
  if (!tb && nr == XC_PNR) {
    for (int64_t k = 0; k < K; ++k) memcpy(bp + k * XC_PNR, B + k * ldb + j0, sizeof(float) * XC_PNR);
    return;
  }
  for (int64_t k = 0; k < K; ++k)
    for (int64_t j = 0; j < XC_PNR; ++j)
      bp[k * XC_PNR + j] = j >= nr ? 0.f : (tb ? B[(j0 + j) * ldb + k] : B[k * ldb + j0 + j]);
}
// rows [i0, i1) x panels [p0, p1) of C, serially: blocks of up to XC_PKC of the K products, so that a
// packed panel (XC_PKC x XC_PNR) stays in L1 while the row tiles go by
constexpr int64_t XC_PKC = 256;
// bpk: B packed once (xc_pack_b_all), else panels are packed here
static inline void xc_sgemm_packed_block(bool ta, bool tb, int64_t i0, int64_t i1, int64_t p0, int64_t p1, int64_t N,
                                         int64_t K, float alpha, const float* A, int64_t lda, const float* B,
                                         int64_t ldb, float beta, float* C, int64_t ldc, const float* bpk) {
  const int64_t kc_max = K < XC_PKC ? K : XC_PKC, mc = 384;  // A block: up to 384 KiB packed
  float* ap = xc_scratch(xc_scratch_a(), (mc < i1 - i0 ? mc : i1 - i0) * kc_max);
  float* bp = xc_scratch(xc_scratch_b(), 2 * kc_max * XC_PNR);
  if (!ap || !bp) return xc_sgemm_naive_block(ta, tb, i0, i1, p0 * XC_PNR, p1 * XC_PNR < N ? p1 * XC_PNR : N, K,
                                              alpha, A, lda, B, ldb, beta, C, ldc);
  for (int64_t b0 = i0; b0 < i1; b0 += mc) {
    const int64_t b1 = b0 + mc < i1 ? b0 + mc : i1;
    for (int64_t k0 = 0; k0 < K; k0 += XC_PKC) {
      const int64_t kc = K - k0 < XC_PKC ? K - k0 : XC_PKC;
      const float bt = k0 == 0 ? beta : 1.0f;
      const float* Ak = ta ? A + k0 * lda : A + k0;
      const float* Bk = tb ? B + k0 : B + k0 * ldb;
      // packing A costs as much as a few panels' arithmetic: read A in place for up to 4 panels, unless
      // its rows are a multiple of 4 KiB apart (they would share a few L1 sets)
      const bool pack = ta || p1 - p0 > 4 || lda % 1024 == 0;
      for (int64_t i = b0; i < b1 && pack; i += XC_PMR)
        xc_pack_a(ta, Ak, lda, i, b1 - i < XC_PMR ? b1 - i : XC_PMR, kc, ap + (i - b0) * kc);
      for (int64_t p = p0; p < p1; ++p) {
        const int64_t j0 = p * XC_PNR, nr = N - j0 < XC_PNR ? N - j0 : XC_PNR;
        const float* panel = bpk ? bpk + k0 * ((N + XC_PNR - 1) / XC_PNR) * XC_PNR + p * kc * XC_PNR
                                 : bp + (p & 1) * kc * XC_PNR;
        if (p == p0 && !bpk) xc_pack_b(tb, Bk, ldb, j0, nr, kc, bp + (p & 1) * kc * XC_PNR);
        if (p + 1 < p1 && !bpk) {  // pack the next panel now: its reads of B overlap this panel's arithmetic
          const int64_t nj = j0 + XC_PNR;
          xc_pack_b(tb, Bk, ldb, nj, N - nj < XC_PNR ? N - nj : XC_PNR, kc, bp + ((p + 1) & 1) * kc * XC_PNR);
        }
        for (int64_t i = b0; i < b1; i += XC_PMR) {
          const int64_t mr = b1 - i < XC_PMR ? b1 - i : XC_PMR;
          // B packed once: every row tile prefetches the next panel (the packing of panels here reads B
          // ahead instead). Not only the last tile: with few rows that one is short (32 rows: 2) and the
          // panel's lines came late; 32 x 4096 x 1024 on an AVX2 EPYC 8.3 -> 7.7 ms, 128 rows unchanged
          const float* pf = bpk && p + 1 < p1 ? panel + kc * XC_PNR : nullptr;
          xc_pkern_upto<XC_PMR>(mr, kc, pack ? ap + (i - b0) * kc : Ak + i * lda, pack ? 0 : lda, panel,
                                C + i * ldc + j0, ldc, nr, alpha, bt, pf);
        }
      }
    }
  }
}
static inline void xc_sgemm_packed(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                                   int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc,
                                   const float* bpk = nullptr) {
  const int64_t panels = (N + XC_PNR - 1) / XC_PNR, tiles = (M + XC_PMR - 1) / XC_PMR;
  const int64_t nt = xc_in_parallel() ? 1 : xc_num_threads();
  if (nt <= 1 || M * N * K < (int64_t)1 << 17) {
    xc_sgemm_packed_block(ta, tb, 0, M, 0, panels, N, K, alpha, A, lda, B, ldb, beta, C, ldc, bpk);
    return;
  }
  // split the longer side (in tiles of rows or panels of columns): each chunk packs its own rows of A
  // and panels of B, so the other side's packing is repeated per chunk
  if ((bpk || tiles * XC_PMR >= panels * XC_PNR) && tiles >= 2 * nt) {  // (B packed once: rows split for free)
    xc_parallel_for(tiles, (tiles + 2 * nt - 1) / (2 * nt), [&](int64_t t0, int64_t t1) {
      xc_sgemm_packed_block(ta, tb, t0 * XC_PMR, t1 * XC_PMR < M ? t1 * XC_PMR : M, 0, panels, N, K, alpha, A, lda,
                            B, ldb, beta, C, ldc, bpk);
    });
    return;
  }
  xc_parallel_for(panels, (panels + 2 * nt - 1) / (2 * nt), [&](int64_t p0, int64_t p1) {
    xc_sgemm_packed_block(ta, tb, 0, M, p0, p1, N, K, alpha, A, lda, B, ldb, beta, C, ldc, bpk);
  });
}

// op(B) (K x N) packed once for xc_sgemm_packed: per block of XC_PKC rows of op(B), its panels in turn
static inline int64_t xc_packed_b_floats(int64_t N, int64_t K) { return K * ((N + XC_PNR - 1) / XC_PNR) * XC_PNR; }
static inline void xc_pack_b_all(bool tb, const float* B, int64_t ldb, int64_t N, int64_t K, float* out) {
  const int64_t panels = (N + XC_PNR - 1) / XC_PNR;
  xc_parallel_for(panels, 1, [&](int64_t p0, int64_t p1) {
    for (int64_t k0 = 0; k0 < K; k0 += XC_PKC) {
      const int64_t kc = K - k0 < XC_PKC ? K - k0 : XC_PKC;
      for (int64_t p = p0; p < p1; ++p)
        xc_pack_b(tb, tb ? B + k0 : B + k0 * ldb, ldb, p * XC_PNR, N - p * XC_PNR < XC_PNR ? N - p * XC_PNR : XC_PNR,
                  kc, out + k0 * panels * XC_PNR + p * kc * XC_PNR);
    }
  });
}
// a weight's packed copy, made at its first product and kept in *slot (null when the model is created,
// freed with it): the products of few rows then skip packing B, most of their work
static inline const float* xc_weight_packed(void** slot, bool tb, const float* B, int64_t ldb, int64_t N, int64_t K) {
  if (!*slot) {
    float* p = (float*)xc_aligned_alloc(sizeof(float) * (size_t)xc_packed_b_floats(N, K));
    if (!p) return nullptr;
    xc_pack_b_all(tb, B, ldb, N, K, p);
    *slot = p;
  }
  return (const float*)*slot;
}

// No BLAS (or MKL not loadable at run time): xcomp's packed GEMM from XC_PACKED_MIN_M rows, else the
// blocked fallback (matrix-vector products)
static inline void xc_sgemm_own(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha,
                                const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                                int64_t ldc) {
  if (M >= XC_PACKED_MIN_M && N > 0 && K > 0 && alpha != 0.f)
    xc_sgemm_packed(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  else
    xc_sgemm_fallback(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

#ifdef XC_HAVE_CBLAS
static inline void xc_sgemm_blas(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha,
                                 const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                                 int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  const int64_t big = 0x7fffffff;
  if (K <= 0 || M > big || N > big || K > big || lda > big || ldb > big || ldc > big) {  // degenerate or huge
    xc_sgemm_naive(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  // The BLAS runs single-threaded; the product is split into row or column blocks over xcomp's pool
  // (one set of threads for the whole program, and a busy machine's late threads cost no barrier).
  static int threads = (xc_blas_set_threads(xc_blas_own_threads() ? xc_num_threads() : 1), 1);
  (void)threads;
  const int64_t nt = xc_in_parallel() || xc_blas_own_threads() ? 1 : xc_num_threads();
  if (nt <= 1 || M * N * K < (int64_t)1 << 17) {
    xc_cblas_block(transA, transB, M, 0, M, 0, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  if (M >= 8 * nt && M >= N / 4) {  // row blocks (of at least 8 rows)
    const int64_t rows = (M + 2 * nt - 1) / (2 * nt);
    xc_parallel_for(M, rows > 8 ? rows : 8, [&](int64_t i0, int64_t i1) {
      xc_cblas_block(transA, transB, M, i0, i1, 0, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    });
    return;
  }
  const int64_t panels = (N + 15) / 16;  // column blocks of whole 16-column panels
  xc_parallel_for(panels, (panels + 2 * nt - 1) / (2 * nt), [&](int64_t p0, int64_t p1) {
    xc_cblas_block(transA, transB, M, 0, M, p0 * 16, p1 * 16 < N ? p1 * 16 : N, K, alpha, A, lda, B, ldb, beta, C,
                   ldc);
  });
}
#endif

#ifdef XC_BLAS_MKL
// op(B) (K x N) packed by MKL at its first product and kept in *slot (as xc_weight_packed does)
static inline const float* xc_mkl_weight_packed(void** slot, bool tb, const float* B, int64_t ldb, int64_t M,
                                                int64_t N, int64_t K) {
  if (!*slot) {
    const xc_mkl_api* mk = xc_mkl();
    float* p = (float*)xc_aligned_alloc(mk->pack_get_size(162, (int)M, (int)N, (int)K));
    if (!p) return nullptr;
    mk->pack(101, 162, tb ? 112 : 111, (int)M, (int)N, (int)K, 1.f, B, (int)ldb, p);
    *slot = p;
  }
  return (const float*)*slot;
}
#endif

// C = op(A) @ op(B) (no alpha, beta 0) where B is a weight with a slot in the model (ops.h's
// xc_matmul_f32): B packed once, at its first product, by MKL's packed-GEMM API when MKL is the BLAS
// (products of XC_PACKED_MIN_M..XC_PREPACK_MAX_M rows), by xcomp's own GEMM without a BLAS or with
// OpenBLAS (products of XC_PACKED_MIN_M rows or more; OpenBLAS has no packed API and its sgemm packs B on
// every call: 32 x 4096 x 1024 single-threaded on an AVX2 EPYC 12.3 ms against 8.4 with B packed once;
// 128 and 1024 rows the same or up to 6% faster). False (nothing done) when the product is
// left to xc_sgemm: Accelerate, or MKL with too few rows to split over the threads (xc_sgemm then splits
// the columns).
#if defined(XC_PREBUILT_GEMM) && !defined(XC_PREBUILT_GEMM_OBJECT)
__attribute__((visibility("hidden"))) bool xc_sgemm_weight(void** slot, bool ta, bool tb, int64_t M, int64_t N,
                                                           int64_t K, const float* A, int64_t lda, const float* B,
                                                           int64_t ldb, float* C, int64_t ldc);
__attribute__((visibility("hidden"))) void xc_sgemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K,
                                                    float alpha, const float* A, int64_t lda, const float* B,
                                                    int64_t ldb, float beta, float* C, int64_t ldc);
__attribute__((visibility("hidden"))) void xc_sgemm_small(bool transA, bool transB, int64_t M, int64_t N, int64_t K,
                                                          float alpha, const float* A, int64_t lda, const float* B,
                                                          int64_t ldb, float* C, int64_t ldc);
#else
#ifdef XC_PREBUILT_GEMM_OBJECT
#define XC_GEMM_API __attribute__((visibility("hidden")))
#else
#define XC_GEMM_API static inline
#endif
constexpr int64_t XC_PREPACK_MAX_M = 512;
XC_GEMM_API bool xc_sgemm_weight(void** slot, bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float* A,
                                   int64_t lda, const float* B, int64_t ldb, float* C, int64_t ldc) {
  if (!slot || M < XC_PACKED_MIN_M || N <= 0 || K <= 0) return false;
#if defined(XC_BLAS_MKL)
  if (xc_mkl()) {
    if (M > XC_PREPACK_MAX_M) return false;
    static int threads = (xc_blas_set_threads(xc_blas_own_threads() ? xc_num_threads() : 1), 1);
    (void)threads;
    const int64_t nt = xc_in_parallel() || xc_blas_own_threads() ? 1 : xc_num_threads(), big = 0x7fffffff;
    if ((nt > 1 && M < 8 * nt) || N > big || K > big || lda > big || ldb > big || ldc > big) return false;
    const float* bp = xc_mkl_weight_packed(slot, tb, B, ldb, M, N, K);
    if (!bp) return false;
    const xc_mkl_api* mk = xc_mkl();
    auto rows = [&](int64_t i0, int64_t i1) {
      mk->compute(101, ta ? 112 : 111, 151, (int)(i1 - i0), (int)N, (int)K, ta ? A + i0 : A + i0 * lda, (int)lda, bp,
                  (int)ldb, 0.f, C + i0 * ldc, (int)ldc);
    };
    if (nt <= 1 || M * N * K < (int64_t)1 << 17) {
      rows(0, M);
    } else {  // row blocks of at least 8 rows over the pool, MKL single-threaded in each
      const int64_t r = (M + 2 * nt - 1) / (2 * nt);
      xc_parallel_for(M, r > 8 ? r : 8, rows);
    }
    return true;
  }
#elif defined(XC_HAVE_CBLAS) && !defined(XC_CBLAS_OPENBLAS)
  return false;  // (Accelerate: its AMX GEMM beats any packing of ours)
#endif
  const float* bpk = xc_weight_packed(slot, tb, B, ldb, N, K);
  if (!bpk) return false;
  xc_sgemm_packed(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C, ldc, bpk);
  return true;
}

XC_GEMM_API void xc_sgemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha,
                          const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                          int64_t ldc) {
#ifdef XC_HAVE_CBLAS
  if (xc_blas_ready()) xc_sgemm_blas(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  else
#endif
  xc_sgemm_own(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

// One of many small products, each run whole on one thread (attention's heads, one per pool chunk):
// with OpenBLAS xcomp's packed GEMM from XC_PACKED_MIN_M rows (OpenBLAS pays more per call: 32 heads'
// 128x128x64 and 128x64x128 products with strided operands, one thread of an AVX2 EPYC, 6.3 -> 5.2 ms),
// else xc_sgemm. C = alpha * op(A) op(B).
XC_GEMM_API void xc_sgemm_small(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha,
                                const float* A, int64_t lda, const float* B, int64_t ldb, float* C, int64_t ldc) {
#if defined(XC_HAVE_CBLAS) && !defined(XC_CBLAS_OPENBLAS)
  xc_sgemm(transA, transB, M, N, K, alpha, A, lda, B, ldb, 0.0f, C, ldc);
#else
  xc_sgemm_own(transA, transB, M, N, K, alpha, A, lda, B, ldb, 0.0f, C, ldc);
#endif
}
#endif  // XC_PREBUILT_GEMM

// -- runtime controls, exported from every built library (for the loader and tests) -------------
// Defined here, not inline: include this header in one translation unit per library (or define
// XC_RUNTIME_NO_EXPORTS in the others).
#ifndef XC_RUNTIME_NO_EXPORTS
XC_EXPORT const char* xc_runtime_blas() { return XC_BLAS_NAME; }
XC_EXPORT int xc_runtime_openmp() {
#ifdef XC_USE_OPENMP
  return 1;
#else
  return 0;
#endif
}
XC_EXPORT int xc_runtime_get_threads() { return xc_num_threads(); }
XC_EXPORT void xc_runtime_set_threads(int n) {
  xc_threads_slot() = n > 0 ? n : xc_default_threads();
  xc_blas_set_threads(xc_blas_own_threads() ? xc_num_threads() : 1);
}
#ifdef XC_RUNTIME_TEST  // the fallback GEMM, callable from tests whatever BLAS the build uses
XC_EXPORT void xc_runtime_sgemm_fallback(int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha,
                                                const float* A, int64_t lda, const float* B, int64_t ldb,
                                                float beta, float* C, int64_t ldc) {
  xc_sgemm_fallback(ta != 0, tb != 0, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
#endif

#endif  // XC_RUNTIME_NO_EXPORTS

#endif  // XCOMP_RUNTIME_H
