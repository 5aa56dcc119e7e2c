// xcomp_runtime.h: the small runtime every generated C++ translation unit includes.
//
//   xc_parallel_for(n, grain, f)   f(begin, end) over [0, n) split across threads (OpenMP when the
//                                  compiler has it, else a persistent pthread pool); serial when
//                                  called from inside another parallel region.
//   xc_sgemm(...)                  row-major C = alpha * op(A) op(B) + beta * C, through CBLAS when
//                                  XC_HAVE_CBLAS (OpenBLAS from scipy-openblas32, Accelerate), else a
//                                  cache-blocked parallel fallback. Call it from outside parallel
//                                  regions: it parallelizes itself.
//   xc_f16_to_f32 / xc_f32_to_f16 / xc_bf16_to_f32 / xc_f32_to_bf16   (round to nearest even)
//   xc_aligned_alloc / xc_aligned_free   64-byte aligned memory
//
// Build configuration (set by xcomp.backends.cpp.toolchain, or by the exported CMakeLists.txt):
//   XC_HAVE_CBLAS=1, XC_CBLAS_PREFIX=<symbol prefix, e.g. scipy_ or empty>, XC_CBLAS_OPENBLAS=1 when
//   the library is OpenBLAS (its thread count follows xc_num_threads()), XC_BLAS_NAME="...".
//   XC_NO_OPENMP=1 forces the thread pool even when the compiler has OpenMP.
// Threads: XCOMP_NUM_THREADS, else OMP_NUM_THREADS (OpenMP builds), else the online cores.
#ifndef XCOMP_RUNTIME_H
#define XCOMP_RUNTIME_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(_OPENMP) && !defined(XC_NO_OPENMP)
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
#define XC_EXPORT extern "C" __attribute__((visibility("default")))
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

// -- threads ----------------------------------------------------------------------------------
static inline void xc_cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}
static inline int& xc_threads_slot() { static int n = 0; return n; }
static inline int xc_default_threads() {
  const char* s = getenv("XCOMP_NUM_THREADS");
  int n = s ? atoi(s) : 0;
#ifdef XC_USE_OPENMP
  if (n <= 0) n = omp_get_max_threads();
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

// [begin, end) of chunk t of `chunks` equal parts of [0, n)
static inline int64_t xc_chunk_begin(int64_t n, int64_t t, int64_t chunks) { return n / chunks * t + (t < n % chunks ? t : n % chunks); }

#ifdef XC_USE_OPENMP
#define XC_HAVE_PARALLEL_FOR 1
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
// A persistent pool of xc_num_threads() - 1 workers; the calling thread runs chunk 0. Workers spin
// briefly on the job counter, then sleep on a condition variable. Every worker acknowledges every job
// (those without a chunk too), so no worker can still be reading one job when the next is posted.
struct XcPool {
  pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
  pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
  unsigned long generation = 0;   // bumped per job (atomic access)
  int pending = 0;                // workers not done with this job yet (atomic access)
  int chunks = 0, workers = 0;
  int64_t n = 0;
  void (*run)(void*, int64_t, int64_t) = nullptr;
  void* ctx = nullptr;
};
static inline bool& xc_in_worker() { static __thread bool w = false; return w; }
static inline bool xc_in_parallel() { return xc_in_worker(); }
static inline XcPool*& xc_pool_slot() { static XcPool* p = nullptr; return p; }
static inline void* xc_pool_worker(void* arg) {
  XcPool& p = *xc_pool_slot();  // set before any worker starts
  const int id = (int)(intptr_t)arg;  // runs chunk id (1..workers)
  xc_in_worker() = true;
  unsigned long seen = 0;
  for (;;) {
    unsigned long g;
    for (int spin = 0; (g = __atomic_load_n(&p.generation, __ATOMIC_ACQUIRE)) == seen && spin < 4000; ++spin)
      xc_cpu_relax();
    if (g == seen) {
      pthread_mutex_lock(&p.mu);
      while ((g = __atomic_load_n(&p.generation, __ATOMIC_ACQUIRE)) == seen) pthread_cond_wait(&p.wake, &p.mu);
      pthread_mutex_unlock(&p.mu);
    }
    seen = g;
    if (id < p.chunks) p.run(p.ctx, xc_chunk_begin(p.n, id, p.chunks), xc_chunk_begin(p.n, id + 1, p.chunks));
    __atomic_sub_fetch(&p.pending, 1, __ATOMIC_ACQ_REL);
  }
  return nullptr;
}
static inline XcPool& xc_pool() {
  static XcPool* pool = [] {
    XcPool* p = new XcPool();
    xc_pool_slot() = p;
    p->workers = xc_num_threads() - 1;
    for (int i = 1; i <= p->workers; ++i) {
      pthread_t t;
      if (pthread_create(&t, nullptr, xc_pool_worker, (void*)(intptr_t)i) != 0) { p->workers = i - 1; break; }
      pthread_detach(t);
    }
    return p;
  }();
  return *pool;
}
template <class T> struct xc_unref { typedef T type; };
template <class T> struct xc_unref<T&> { typedef T type; };
template <class F> static void xc_pool_trampoline(void* ctx, int64_t b, int64_t e) { (*(F*)ctx)(b, e); }
#define XC_HAVE_PARALLEL_FOR 1
template <class F> inline void xc_parallel_for(int64_t n, int64_t grain, F&& f) {
  if (n <= 0) return;
  if (grain < 1) grain = 1;
  int64_t chunks = (n + grain - 1) / grain, nt = xc_num_threads();
  if (chunks > nt) chunks = nt;
  if (chunks <= 1 || xc_in_worker()) { f((int64_t)0, n); return; }
  XcPool& p = xc_pool();
  if (chunks > p.workers + 1) chunks = p.workers + 1;
  if (chunks <= 1) { f((int64_t)0, n); return; }
  typedef typename xc_unref<F>::type Fn;
  p.run = &xc_pool_trampoline<Fn>; p.ctx = (void*)&f; p.n = n; p.chunks = (int)chunks;
  __atomic_store_n(&p.pending, p.workers, __ATOMIC_RELEASE);
  pthread_mutex_lock(&p.mu);
  __atomic_add_fetch(&p.generation, 1, __ATOMIC_ACQ_REL);
  pthread_cond_broadcast(&p.wake);
  pthread_mutex_unlock(&p.mu);
  xc_in_worker() = true;
  f((int64_t)0, xc_chunk_begin(n, 1, chunks));
  xc_in_worker() = false;
  for (int spin = 0; __atomic_load_n(&p.pending, __ATOMIC_ACQUIRE) > 0; ++spin)
    if (spin < 4000) xc_cpu_relax(); else sched_yield();
}
#endif

// -- GEMM -------------------------------------------------------------------------------------
#define XC_CAT_(a, b) a##b
#define XC_CAT(a, b) XC_CAT_(a, b)
#ifdef XC_HAVE_CBLAS
#ifndef XC_CBLAS_PREFIX
#define XC_CBLAS_PREFIX
#endif
// CBLAS enums are ints in the C ABI: RowMajor 101, NoTrans 111, Trans 112.
extern "C" void XC_CAT(XC_CBLAS_PREFIX, cblas_sgemm)(int, int, int, int, int, int, float, const float*, int,
                                                      const float*, int, float, float*, int);
extern "C" void XC_CAT(XC_CBLAS_PREFIX, cblas_sgemv)(int, int, int, int, float, const float*, int, const float*, int,
                                                      float, float*, int);
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

static inline void xc_sgemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha,
                            const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                            int64_t ldc) {
#ifdef XC_HAVE_CBLAS
  if (M <= 0 || N <= 0) return;
  const int64_t big = 0x7fffffff;
  if (K <= 0 || N > big || K > big || lda > big || ldb > big || ldc > big) {  // degenerate or huge
    xc_sgemm_naive(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  static int threads = (xc_blas_set_threads(xc_num_threads()), 1);
  (void)threads;
  if (M == 1) {  // one row: y = op(B)^T a as a matrix-vector product (CBLAS GEMM is slower here)
    XC_CAT(XC_CBLAS_PREFIX, cblas_sgemv)(101, transB ? 111 : 112, transB ? (int)N : (int)K, transB ? (int)K : (int)N,
                                         alpha, B, (int)ldb, A, transA ? (int)lda : 1, beta, C, 1);
    return;
  }
  for (int64_t i0 = 0; i0 < M; i0 += big) {  // row blocks that fit CBLAS's int (transA: columns of A)
    const int64_t m = M - i0 < big ? M - i0 : big;
    XC_CAT(XC_CBLAS_PREFIX, cblas_sgemm)(101, transA ? 112 : 111, transB ? 112 : 111, (int)m, (int)N, (int)K, alpha,
                                         transA ? A + i0 : A + i0 * lda, (int)lda, B, (int)ldb, beta, C + i0 * ldc,
                                         (int)ldc);
  }
#else
  xc_sgemm_fallback(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
#endif
}

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
  xc_blas_set_threads(xc_num_threads());
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
