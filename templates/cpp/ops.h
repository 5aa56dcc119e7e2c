// xcomp C++ op helpers: data movement, reductions, indexing, matmul, convolution, pooling.
// Generated code calls these with shapes baked in as constants; T is a storage type.
#define XC_MAXR 12

// Each output dim d reads source coordinate map(o) along a source stride:
//   kind 0: a*o + b, out of [0, n) -> fill;  1: (o - b) mod n;  2: reflect(o - b);  3: clamp(o - b)
struct xc_dim { int64_t size, stride, kind, a, b, n; };

static inline int64_t xc_map(const xc_dim& d, int64_t o) {
  int64_t s;
  switch (d.kind) {
    case 0: s = d.a * o + d.b; return (s < 0 || s >= d.n) ? -1 : s;
    case 1: s = (o - d.b) % d.n; return s < 0 ? s + d.n : s;
    case 2: {
      s = o - d.b;
      if (d.n == 1) return 0;
      const int64_t p = 2 * (d.n - 1);
      s %= p; if (s < 0) s += p;
      return s >= d.n ? p - s : s;
    }
    default: s = o - d.b; return s < 0 ? 0 : (s >= d.n ? d.n - 1 : s);
  }
}

template <typename T>
XC_PREBUILT_TEMPLATE void xc_remap(T* dst, const T* src, int rank, const xc_dim* dims, T fill) {
  int64_t inner = rank ? dims[rank - 1].size : 1, outer = 1;
  for (int i = 0; i + 1 < rank; ++i) outer *= dims[i].size;
  if (inner == 0 || outer == 0) return;
  xc_parallel_for(outer, std::max<int64_t>(1, 16384 / inner), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      int64_t rem = r, off = 0;
      bool out = false;
      for (int d = rank - 2; d >= 0; --d) {
        const int64_t o = rem % dims[d].size; rem /= dims[d].size;
        const int64_t s = xc_map(dims[d], o);
        if (s < 0) out = true; else off += s * dims[d].stride;
      }
      T* q = dst + r * inner;
      if (out) { for (int64_t c = 0; c < inner; ++c) q[c] = fill; continue; }
      if (rank == 0) { q[0] = src[0]; continue; }
      const xc_dim& L = dims[rank - 1];
      if (L.kind == 0 && L.a == 1 && L.b >= 0 && L.b + inner <= L.n && L.stride == 1) {
        std::memcpy(q, src + off + L.b, inner * sizeof(T));
      } else if (L.kind == 0 && L.b >= 0 && L.b + L.a * (inner - 1) < L.n && L.b + L.a * (inner - 1) >= 0) {
        const T* s0 = src + off + L.b * L.stride;   // in range all along: a strided read
        const int64_t step = L.a * L.stride;
        for (int64_t c = 0; c < inner; ++c) q[c] = s0[c * step];
      } else {
        for (int64_t c = 0; c < inner; ++c) {
          const int64_t s = xc_map(L, c);
          q[c] = s < 0 ? fill : src[off + s * L.stride];
        }
      }
    }
  });
}

// copy a contiguous block of `rows` x `cols` into dst rows of `ld` elements at column `col0`
template <typename T>
static void xc_place(T* dst, const T* src, int64_t rows, int64_t cols, int64_t ld, int64_t col0) {
  if (!cols) return;
  xc_parallel_for(rows, std::max<int64_t>(1, 16384 / cols), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) std::memcpy(dst + r * ld + col0, src + r * cols, cols * sizeof(T));
  });
}

template <typename T> static void xc_fill(T* dst, int64_t n, T v) { for (int64_t i = 0; i < n; ++i) dst[i] = v; }

// tril (lower) / triu on the last two dims (rows x cols): keep j - i <= k (tril) or >= k (triu)
template <typename T>
static void xc_tri(T* dst, const T* src, int64_t batch, int64_t rows, int64_t cols, int64_t k, bool lower) {
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j) {
        const int64_t o = (b * rows + i) * cols + j;
        const bool keep = lower ? (j - i <= k) : (j - i >= k);
        dst[o] = keep ? src[o] : xc_fromf<T>(0.0f);
      }
}

// -- reductions over (outer, n, inner) ------------------------------------------------------------
template <typename T> static inline double xc_val(T x) { return (double)x; }
static inline double xc_val(xc_f16 x) { return xc_tof(x); }
static inline double xc_val(xc_bf16 x) { return xc_tof(x); }
template <typename T> static inline T xc_from(double x) { return (T)x; }
template <> inline xc_f16 xc_from<xc_f16>(double x) { return xc_fromf<xc_f16>((float)x); }
template <> inline xc_bf16 xc_from<xc_bf16>(double x) { return xc_fromf<xc_bf16>((float)x); }
template <> inline bool xc_from<bool>(double x) { return x != 0; }

enum xc_red { XC_SUM, XC_PROD, XC_MAX, XC_MIN, XC_ALL, XC_ANY, XC_MEAN, XC_ARGMAX, XC_ARGMIN };

template <typename T, typename U>
static void xc_reduce(U* dst, const T* src, int64_t outer, int64_t n, int64_t inner, xc_red op) {
  xc_parallel_for(outer * inner, std::max<int64_t>(1, 8192 / std::max<int64_t>(n, 1)), [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t o = p / inner, i = p % inner;
      const T* s = src + o * n * inner + i;
      double acc = op == XC_PROD || op == XC_ALL ? 1.0 : op == XC_MAX ? -INFINITY : op == XC_MIN ? INFINITY : 0.0;
      int64_t arg = 0;
      bool nan = false;
      for (int64_t k = 0; k < n; ++k) {
        const double v = xc_val(s[k * inner]);
        switch (op) {
          case XC_SUM: case XC_MEAN: acc += v; break;
          case XC_PROD: acc *= v; break;
          case XC_MAX: if (v != v) nan = true; else if (v > acc) acc = v; break;
          case XC_MIN: if (v != v) nan = true; else if (v < acc) acc = v; break;
          case XC_ALL: if (v == 0) acc = 0; break;
          case XC_ANY: if (v != 0) acc = 1; break;
          case XC_ARGMAX: if (!nan && (v != v || k == 0 || v > acc)) { acc = v; arg = k; nan = v != v; } break;
          case XC_ARGMIN: if (!nan && (v != v || k == 0 || v < acc)) { acc = v; arg = k; nan = v != v; } break;
        }
      }
      if (op == XC_MEAN) acc = n ? acc / n : NAN;
      if ((op == XC_MAX || op == XC_MIN) && nan) acc = NAN;
      dst[p] = (op == XC_ARGMAX || op == XC_ARGMIN) ? (U)arg : xc_from<U>(acc);
    }
  });
}

// inclusive scan along n of (outer, n, inner)
template <typename T>
static void xc_scan(T* dst, const T* src, int64_t outer, int64_t n, int64_t inner, bool prod) {
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      double acc = prod ? 1.0 : 0.0;
      for (int64_t k = 0; k < n; ++k) {
        const int64_t at = (o * n + k) * inner + i;
        acc = prod ? acc * xc_val(src[at]) : acc + xc_val(src[at]);
        dst[at] = xc_from<T>(acc);
      }
    }
}

// stable sort / top-k along n of (outer, n, inner): values and int64 indices of the first k
template <typename T>
static void xc_sort(T* vals, int64_t* idx, const T* src, int64_t outer, int64_t n, int64_t inner,
                    int64_t k, bool descending, int64_t* order) {   // order: n scratch slots
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      const T* s = src + o * n * inner + i;
      for (int64_t j = 0; j < n; ++j) order[j] = j;
      auto key = [&](int64_t j) { return xc_val(s[j * inner]); };
      // NaN sorts largest; descending keeps equal elements in their original order
      std::stable_sort(order, order + n, [&](int64_t a, int64_t b) {
        const double x = key(a), y = key(b);
        const bool xn = x != x, yn = y != y;
        if (descending) return (xn && !yn) || (!xn && !yn && x > y);
        return (!xn && yn) || (!xn && !yn && x < y);
      });
      for (int64_t j = 0; j < k; ++j) {
        const int64_t at = (o * k + j) * inner + i;
        vals[at] = s[order[j] * inner];
        idx[at] = order[j];
      }
    }
}

// -- indexing ---------------------------------------------------------------------------------------
template <typename I> static inline bool xc_wrap(I v, int64_t n, int64_t* out) {
  int64_t i = (int64_t)v;
  if (i < 0) i += n;
  *out = i;
  return i >= 0 && i < n;
}

// take along `n` of x (outer, n, inner) at m indices: out (outer, m, inner)
template <typename T, typename I>
static bool xc_take(T* dst, const T* src, const I* index, int64_t outer, int64_t n, int64_t inner, int64_t m) {
  for (int64_t j = 0; j < m; ++j) { int64_t t; if (!xc_wrap(index[j], n, &t)) return false; }
  xc_parallel_for(outer * m, std::max<int64_t>(1, 16384 / std::max<int64_t>(inner, 1)), [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t o = p / m, j = p % m;
      int64_t t; xc_wrap(index[j], n, &t);
      std::memcpy(dst + p * inner, src + (o * n + t) * inner, inner * sizeof(T));
    }
  });
  return true;
}

// out[p] = x[p with axis := index[p]] over the index's shape (rank dims; x strides given)
template <typename T, typename I>
static bool xc_gather(T* dst, const T* src, const I* index, int rank, const int64_t* ishape,
                      const int64_t* xstride, int axis, int64_t n) {
  int64_t total = 1;
  for (int d = 0; d < rank; ++d) total *= ishape[d];
  for (int64_t p = 0; p < total; ++p) {
    int64_t rem = p, off = 0;
    for (int d = rank - 1; d >= 0; --d) {
      int64_t c = rem % ishape[d]; rem /= ishape[d];
      if (d == axis && !xc_wrap(index[p], n, &c)) return false;
      off += c * xstride[d];
    }
    dst[p] = src[off];
  }
  return true;
}

enum xc_scat { XC_S_NONE, XC_S_ADD, XC_S_MUL, XC_S_MAX, XC_S_MIN, XC_S_MEAN };

template <typename T, typename I>
static bool xc_scatter(T* dst, const I* index, const T* src, int rank, const int64_t* ishape,
                       const int64_t* sstride, const int64_t* xstride, int axis, int64_t n,
                       int64_t xnumel, xc_scat op, bool include_self, int64_t* count, char* touched) {
  // count, touched: xnumel scratch slots each (used by mean / by reductions without self)
  int64_t total = 1;
  for (int d = 0; d < rank; ++d) total *= ishape[d];
  if (op == XC_S_MEAN) for (int64_t i = 0; i < xnumel; ++i) count[i] = include_self ? 1 : 0;
  if (op != XC_S_NONE && !include_self) std::memset(touched, 0, (size_t)xnumel);
  for (int64_t p = 0; p < total; ++p) {
    int64_t rem = p, off = 0, soff = 0;
    for (int d = rank - 1; d >= 0; --d) {
      int64_t c = rem % ishape[d]; rem /= ishape[d];
      soff += c * sstride[d];
      if (d == axis && !xc_wrap(index[p], n, &c)) return false;
      off += c * xstride[d];
    }
    const double v = xc_val(src[soff]);
    double cur = xc_val(dst[off]);
    if (op != XC_S_NONE && !include_self && !touched[off]) {
      touched[off] = 1;
      cur = op == XC_S_MUL ? 1.0 : op == XC_S_MAX ? -INFINITY : op == XC_S_MIN ? INFINITY : 0.0;
    }
    switch (op) {
      case XC_S_NONE: dst[off] = src[soff]; continue;
      case XC_S_ADD: case XC_S_MEAN: cur += v; break;
      case XC_S_MUL: cur *= v; break;
      case XC_S_MAX: cur = (v > cur || v != v) ? v : cur; break;
      case XC_S_MIN: cur = (v < cur || v != v) ? v : cur; break;
    }
    if (op == XC_S_MEAN) count[off] += 1;
    dst[off] = xc_from<T>(cur);
  }
  if (op == XC_S_MEAN)
    for (int64_t i = 0; i < xnumel; ++i) {
      const int64_t c = std::max<int64_t>(count[i], 1);
      const double v = xc_val(dst[i]);
      dst[i] = xc_from<T>(std::is_floating_point<T>::value || !std::is_integral<T>::value ? v / c : std::floor(v / c));
    }
  return true;
}

// -- matmul ---------------------------------------------------------------------------------------
// C[b] (M x N) = op(A[b]) @ op(B[b]) for nb products at element offsets offa/offb
// pack: a weight's slot (B is a constant 2-d weight): packed once for the GEMM (xc_sgemm_weight: by
// MKL, or by xcomp's own GEMM without a BLAS)
static void xc_matmul_f32(float* C, const float* A, const float* B, int64_t nb, const int64_t* offa,
                          const int64_t* offb, int64_t M, int64_t N, int64_t K, bool ta, bool tb, void** pack) {
  if (pack && nb > 0 && xc_sgemm_weight(pack, ta, tb, M, N, K, A + offa[0], ta ? M : K, B, tb ? K : N, C, N)) {
    for (int64_t b = 1; b < nb; ++b)
      xc_sgemm_weight(pack, ta, tb, M, N, K, A + offa[b], ta ? M : K, B, tb ? K : N, C + b * M * N, N);
    return;
  }
  // many small products (attention's heads): one whole product per chunk of the pool; else each
  // product parallelizes itself
  const bool per_batch = nb >= 2 * xc_num_threads() || (nb >= xc_num_threads() && M * N * K <= ((int64_t)1 << 22));
  xc_parallel_for(per_batch ? nb : 1, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = per_batch ? b0 : 0; b < (per_batch ? b1 : nb); ++b)
      xc_sgemm(ta, tb, M, N, K, 1.0f, A + offa[b], ta ? M : K, B + offb[b], tb ? K : N, 0.0f, C + b * M * N, N);
  });
}

// C + offc[b] = alpha * op(A + offa[b]) @ op(B + offb[b]) for b < nb, A, B and C with leading dimensions
// lda, ldb and ldc (strided views: attention's heads read in place from the packed projection and
// written into the merged heads' layout)
static void xc_matmul_view_f32(float* C, const float* A, const float* B, int64_t nb, const int64_t* offa,
                               const int64_t* offb, const int64_t* offc, int64_t M, int64_t N, int64_t K, bool ta,
                               bool tb, int64_t lda, int64_t ldb, int64_t ldc, float alpha, void** pack) {
  if (pack && alpha == 1.0f && nb > 0 && xc_sgemm_weight(pack, ta, tb, M, N, K, A + offa[0], lda, B, ldb, C + offc[0], ldc)) {
    for (int64_t b = 1; b < nb; ++b)
      xc_sgemm_weight(pack, ta, tb, M, N, K, A + offa[b], lda, B, ldb, C + offc[b], ldc);
    return;
  }
  const bool per_batch = nb >= 2 * xc_num_threads() || (nb >= xc_num_threads() && M * N * K <= ((int64_t)1 << 22));
  if (per_batch) {  // whole products per pool chunk
    xc_parallel_for(nb, 1, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b)
        xc_sgemm_small(ta, tb, M, N, K, alpha, A + offa[b], lda, B + offb[b], ldb, C + offc[b], ldc);
    });
    return;
  }
  for (int64_t b = 0; b < nb; ++b)
    xc_sgemm(ta, tb, M, N, K, alpha, A + offa[b], lda, B + offb[b], ldb, 0.0f, C + offc[b], ldc);
}

template <typename T>
static void xc_matmul_any(T* C, const T* A, const T* B, int64_t nb, const int64_t* offa, const int64_t* offb,
                          int64_t M, int64_t N, int64_t K, bool ta, bool tb) {
  for (int64_t b = 0; b < nb; ++b)
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) {
        double acc = 0;
        for (int64_t k = 0; k < K; ++k)
          acc += xc_val(A[offa[b] + (ta ? k * M + i : i * K + k)]) * xc_val(B[offb[b] + (tb ? j * K + k : k * N + j)]);
        C[(b * M + i) * N + j] = xc_from<T>(acc);
      }
}

// -- convolution (N-d, grouped, strided, dilated) as im2col + GEMM per image and group --------------
struct xc_conv_geom {
  int nsp; int64_t N, Cin, Cout, G;
  int64_t in[3], k[3], out[3], stride[3], pad[3], dil[3];
};

static void xc_im2col(float* col, const float* x, const xc_conv_geom& g, int64_t cpg) {
  // col: (cpg * K) rows x (outputs) columns; dims right-aligned to 3, each output row of the last
  // dim one run: zeros where the tap falls in the padding, a (strided) copy of the input between
  int64_t in[3], out[3], k[3], st[3], pd[3], dl[3];
  for (int d = 0; d < 3; ++d) {
    const int s = d - (3 - g.nsp);
    in[d] = s < 0 ? 1 : g.in[s]; out[d] = s < 0 ? 1 : g.out[s]; k[d] = s < 0 ? 1 : g.k[s];
    st[d] = s < 0 ? 1 : g.stride[s]; pd[d] = s < 0 ? 0 : g.pad[s]; dl[d] = s < 0 ? 1 : g.dil[s];
  }
  const int64_t K = k[0] * k[1] * k[2], O = out[0] * out[1] * out[2], I = in[0] * in[1] * in[2];
  xc_parallel_for(cpg * K, std::max<int64_t>(1, 8192 / std::max<int64_t>(O, 1)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t c = r / K, kk = r % K;
      const int64_t k0 = kk / (k[1] * k[2]), k1 = (kk / k[2]) % k[1], k2 = kk % k[2];
      const int64_t off2 = k2 * dl[2] - pd[2];
      int64_t lo = 0, hi = out[2];  // o2 in [lo, hi): 0 <= o2 * st + off2 < in
      if (off2 < 0) lo = std::min(out[2], (-off2 + st[2] - 1) / st[2]);
      hi = in[2] - 1 - off2 < 0 ? lo : std::max(lo, std::min(out[2], (in[2] - 1 - off2) / st[2] + 1));
      float* dst = col + r * O;
      for (int64_t o0 = 0; o0 < out[0]; ++o0) {
        const int64_t i0 = o0 * st[0] - pd[0] + k0 * dl[0];
        for (int64_t o1 = 0; o1 < out[1]; ++o1) {
          const int64_t i1 = o1 * st[1] - pd[1] + k1 * dl[1];
          float* d = dst + (o0 * out[1] + o1) * out[2];
          if (i0 < 0 || i0 >= in[0] || i1 < 0 || i1 >= in[1]) { std::memset(d, 0, sizeof(float) * out[2]); continue; }
          const float* s = x + c * I + (i0 * in[1] + i1) * in[2] + off2;
          std::memset(d, 0, sizeof(float) * lo);
          if (st[2] == 1) std::memcpy(d + lo, s + lo, sizeof(float) * (hi - lo));
          else for (int64_t o2 = lo; o2 < hi; ++o2) d[o2] = s[o2 * st[2]];
          std::memset(d + hi, 0, sizeof(float) * (out[2] - hi));
        }
      }
    }
  });
}

// y (N, Cout, out...) = conv(x (N, Cin, in...), w (Cout, Cin/G, k...)) + bias
static void xc_conv_f32(float* y, const float* x, const float* w, const float* bias, const xc_conv_geom& g,
                        float* col) {
  int64_t K = 1, O = 1, I = 1;
  for (int d = 0; d < g.nsp; ++d) { K *= g.k[d]; O *= g.out[d]; I *= g.in[d]; }
  const int64_t cpg = g.Cin / g.G, opg = g.Cout / g.G;
  bool pointwise = K == 1;
  for (int d = 0; d < g.nsp; ++d) pointwise = pointwise && g.stride[d] == 1 && g.pad[d] == 0 && g.out[d] == g.in[d];
  for (int64_t n = 0; n < g.N; ++n)
    for (int64_t gr = 0; gr < g.G; ++gr) {
      const float* xs = x + (n * g.Cin + gr * cpg) * I;
      const float* B = xs;
      if (!pointwise) { xc_im2col(col, xs, g, cpg); B = col; }
      xc_sgemm(false, false, opg, O, cpg * K, 1.0f, w + gr * opg * cpg * K, cpg * K, B, O, 0.0f,
               y + (n * g.Cout + gr * opg) * O, O);
    }
  if (bias)
    xc_parallel_for(g.N * g.Cout, std::max<int64_t>(1, 16384 / std::max<int64_t>(O, 1)), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const float b = bias[r % g.Cout];
        float* q = y + r * O;
        for (int64_t o = 0; o < O; ++o) q[o] += b;
      }
    });
}

// direct convolution (no im2col buffer): each output channel's plane accumulates its group's
// cpg x K taps; for small reductions (depthwise) where per-group GEMMs are too thin
static void xc_conv_direct_f32(float* y, const float* x, const float* w, const float* bias, const xc_conv_geom& g) {
  // the spatial dims right-aligned to 3 (leading dims of size 1)
  int64_t in[3], out[3], k[3], st[3], pd[3], dl[3];
  for (int d = 0; d < 3; ++d) {
    const int s = d - (3 - g.nsp);
    in[d] = s < 0 ? 1 : g.in[s]; out[d] = s < 0 ? 1 : g.out[s]; k[d] = s < 0 ? 1 : g.k[s];
    st[d] = s < 0 ? 1 : g.stride[s]; pd[d] = s < 0 ? 0 : g.pad[s]; dl[d] = s < 0 ? 1 : g.dil[s];
  }
  const int64_t K = k[0] * k[1] * k[2], O = out[0] * out[1] * out[2], I = in[0] * in[1] * in[2];
  const int64_t cpg = g.Cin / g.G, opg = g.Cout / g.G;
  xc_parallel_for(g.N * g.Cout, 1, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t n = p / g.Cout, co = p % g.Cout, gr = co / opg;
      float* q = y + p * O;
      const float b = bias ? bias[co] : 0.0f;
      for (int64_t o = 0; o < O; ++o) q[o] = b;
      for (int64_t c = 0; c < cpg; ++c) {
        const float* xs = x + (n * g.Cin + gr * cpg + c) * I;
        const float* ws = w + (co * cpg + c) * K;
        for (int64_t k0 = 0; k0 < k[0]; ++k0)
          for (int64_t k1 = 0; k1 < k[1]; ++k1)
            for (int64_t k2 = 0; k2 < k[2]; ++k2) {
              const float wv = ws[(k0 * k[1] + k1) * k[2] + k2];
              const int64_t off2 = k2 * dl[2] - pd[2];
              int64_t lo = 0, hi = out[2];
              while (lo < hi && lo * st[2] + off2 < 0) ++lo;
              while (hi > lo && (hi - 1) * st[2] + off2 >= in[2]) --hi;
              for (int64_t o0 = 0; o0 < out[0]; ++o0) {
                const int64_t i0 = o0 * st[0] - pd[0] + k0 * dl[0];
                if (i0 < 0 || i0 >= in[0]) continue;
                for (int64_t o1 = 0; o1 < out[1]; ++o1) {
                  const int64_t i1 = o1 * st[1] - pd[1] + k1 * dl[1];
                  if (i1 < 0 || i1 >= in[1]) continue;
                  const float* xr = xs + (i0 * in[1] + i1) * in[2] + off2;
                  float* qr = q + (o0 * out[1] + o1) * out[2];
                  if (st[2] == 1) {
#pragma omp simd
                    for (int64_t o2 = lo; o2 < hi; ++o2) qr[o2] += wv * xr[o2];
                  } else {
                    for (int64_t o2 = lo; o2 < hi; ++o2) qr[o2] += wv * xr[o2 * st[2]];
                  }
                }
              }
            }
      }
    }
  });
}

// direct 1-d/2-d convolution, register-blocked: each task computes up to XC_CONV_OCB output channels
// of one output row (two rows when V = 8), in tiles of V contiguous output pixels held in vector
// accumulators (8 or 16 lanes; one weight broadcast per channel and tap). The weights are read
// packed ([c][kh][kw][channel] per block of channels, xc_conv_pack): packed once into the model's
// slot `*pack` when they are a weight, else per call into `wscratch`. The input is read from `xp`, a
// zero-padded copy made here (rows Hp x Wp per channel, wide enough for the last tile) or, when xp is
// null, from x itself (unpadded, and every tile's reads fit in the image). V (8 or 16) and S (the
// stride of the last dim when 1 or 2; 0: read at run time) come from the rule. `epi(c0, c1)` runs on
// each range of y a task has just finished (the rule's fused epilogue, while the tile is in cache).
typedef float xc_f8 __attribute__((vector_size(32), aligned(4), __may_alias__));
typedef float xc_f16v __attribute__((vector_size(64), aligned(4), __may_alias__));
#ifdef __AVX512F__
#define XC_CONV_OCB 8
typedef xc_f16v xc_conv_vec16;
#else
#define XC_CONV_OCB 6
typedef xc_f8 xc_conv_vec16;
#endif
struct xc_conv_noepi { void operator()(int64_t, int64_t) const {} };

// w (Cout, cpg, K) -> per block of up to XC_CONV_OCB output channels of a group (m of them, from
// channel co): [t = c * K + tap][m] at offset co * cpg * K (the same size as w)
static void xc_conv_pack(float* wp, const float* w, int64_t G, int64_t opg, int64_t cpg, int64_t K) {
  for (int64_t gr = 0; gr < G; ++gr)
    for (int64_t b = 0; b < opg; b += XC_CONV_OCB) {
      const int64_t co = gr * opg + b, m = std::min<int64_t>(XC_CONV_OCB, opg - b);
      float* d = wp + co * cpg * K;
      for (int64_t t = 0; t < cpg * K; ++t)
        for (int64_t j = 0; j < m; ++j) d[t * m + j] = w[(co + j) * cpg * K + t];
    }
}

template <int OCB, typename VEC, int NV, int R, int S>
static inline void xc_conv2d_tile(float* yq, int64_t O, int64_t ors, const float* xs, int64_t cs, int64_t rs,
                                  int64_t rstep, const float* wp, int64_t cpg, int64_t KH, int64_t KW, int64_t dl1,
                                  int64_t dl2, int64_t st2, const float* bias, int64_t nvalid, int rows) {
  // R output rows (rstep apart in the input) x NV vectors of L lanes, for OCB channels
  constexpr int L = (int)(sizeof(VEC) / sizeof(float)), W = NV * L;
  VEC acc[OCB][R][NV];
#pragma GCC unroll 8
  for (int j = 0; j < OCB; ++j) {
    const float b = bias ? bias[j] : 0.0f;
#pragma GCC unroll 2
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[j][r][v] = VEC{} + b;
  }
  for (int64_t c = 0; c < cpg; ++c)
    for (int64_t k1 = 0; k1 < KH; ++k1) {
      const float* xr = xs + c * cs + k1 * dl1 * rs;
      for (int64_t k2 = 0; k2 < KW; ++k2, wp += OCB) {
        const float* xk = xr + k2 * dl2;
        VEC xv[R][NV];
#pragma GCC unroll 2
        for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
          for (int v = 0; v < NV; ++v) {
            if (S == 1) std::memcpy(&xv[r][v], xk + r * rstep + v * L, sizeof(VEC));  // unaligned load
            else {
              const int64_t s = S ? S : st2;
              for (int e = 0; e < L; ++e) xv[r][v][e] = xk[r * rstep + (v * L + e) * s];
            }
          }
#pragma GCC unroll 8
        for (int j = 0; j < OCB; ++j) {
          const float wv = wp[j];
#pragma GCC unroll 2
          for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
            for (int v = 0; v < NV; ++v) acc[j][r][v] += wv * xv[r][v];
        }
      }
    }
  // stores straight from the registers (a memcpy of the whole tile would spill it to the stack first)
#pragma GCC unroll 8
  for (int j = 0; j < OCB; ++j)
#pragma GCC unroll 2
    for (int r = 0; r < R; ++r) {
      if (r >= rows) break;
      float* q = yq + j * O + r * ors;
      if (nvalid == W) {
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) { const VEC a = acc[j][r][v]; std::memcpy(q + v * L, &a, sizeof(VEC)); }
      } else {
        for (int64_t e = 0; e < nvalid; ++e) q[e] = acc[j][r][e / L][e % L];
      }
    }
}

template <typename VEC, int NV, int R, int S>
static void xc_conv2d_rows(int m, float* yrow, int64_t O, int64_t out2, const float* xs, int64_t cs, int64_t rs,
                           int64_t rstep, const float* wp, int64_t cpg, int64_t KH, int64_t KW, int64_t dl1,
                           int64_t dl2, int64_t st2, const float* bias, int rows) {
  // m (1..XC_CONV_OCB) output channels of `rows` output rows, tile by tile
  constexpr int W = NV * (int)(sizeof(VEC) / sizeof(float));
  for (int64_t o2 = 0; o2 < out2; o2 += W) {
    const int64_t nv = std::min<int64_t>(W, out2 - o2);
    float* yt = yrow + o2;
    const float* xt = xs + o2 * st2;
#define XC_CONV_M(M) case M: xc_conv2d_tile<M, VEC, NV, R, S>(yt, O, out2, xt, cs, rs, rstep, wp, cpg, KH, KW, dl1, dl2, st2, bias, nv, rows); break;
    switch (m) {
      XC_CONV_M(1) XC_CONV_M(2) XC_CONV_M(3) XC_CONV_M(4) XC_CONV_M(5) XC_CONV_M(6)
#if XC_CONV_OCB > 6
      XC_CONV_M(7) XC_CONV_M(8)
#endif
    }
#undef XC_CONV_M
  }
}

// one row of a zero-padded copy: d[0, s0) = 0, d[s0, s1) = src[0, s1 - s0) (0 when src is null),
// d[s1, Wp) = 0, in 8-float moves (short rows: library calls would cost more than the copy)
static inline void xc_conv_padrow(float* d, const float* src, int64_t s0, int64_t s1, int64_t Wp) {
  if (Wp < 8 || (src && s1 - s0 < 8)) {
    for (int64_t s = 0; s < Wp; ++s) d[s] = src && s >= s0 && s < s1 ? src[s - s0] : 0.0f;
    return;
  }
  if (!src) {
    const xc_f8 z = {};
    for (int64_t s = 0; s < Wp; s += 8) std::memcpy(d + std::min(s, Wp - 8), &z, sizeof(z));
    return;
  }
  for (int64_t s = 0; s < s0; ++s) d[s] = 0.0f;
  for (int64_t s = s1; s < Wp; ++s) d[s] = 0.0f;
  for (int64_t s = s0; s < s1; s += 8) {
    const int64_t j = std::min(s, s1 - 8);
    xc_f8 v;
    std::memcpy(&v, src + (j - s0), sizeof(v));
    std::memcpy(d + j, &v, sizeof(v));
  }
}

template <int V, int S, typename EPI = xc_conv_noepi>
static void xc_conv2d_direct_f32(float* y, const float* x, const float* w, const float* bias, const xc_conv_geom& g,
                                 float* xp, int64_t Hp, int64_t Wp, void** pack, float* wscratch, EPI&& epi = EPI()) {
  const bool two = g.nsp == 2;
  const int64_t in1 = two ? g.in[0] : 1, in2 = g.in[g.nsp - 1];
  const int64_t out1 = two ? g.out[0] : 1, out2 = g.out[g.nsp - 1];
  const int64_t KH = two ? g.k[0] : 1, KW = g.k[g.nsp - 1];
  const int64_t st1 = two ? g.stride[0] : 1, st2 = g.stride[g.nsp - 1];
  const int64_t pd1 = two ? g.pad[0] : 0, pd2 = g.pad[g.nsp - 1];
  const int64_t dl1 = two ? g.dil[0] : 1, dl2 = g.dil[g.nsp - 1];
  const int64_t cpg = g.Cin / g.G, opg = g.Cout / g.G, O = out1 * out2, K = KH * KW;
  const float* wp = wscratch;
  if (pack && *pack) wp = (const float*)*pack;
  else {
    float* p = pack ? (float*)xc_aligned_alloc(sizeof(float) * g.Cout * cpg * K) : wscratch;
    xc_conv_pack(p, w, g.G, opg, cpg, K);
    if (pack) *pack = p;
    wp = p;
  }
  const float* src = x;
  int64_t rs = in2, cs = in1 * in2;
  if (xp) {  // zero-padded copy: padded row r, column s hold x[r - pd1][s - pd2] (0 outside)
    const int64_t s0 = std::max<int64_t>(0, std::min(pd2, Wp)), s1 = std::max(s0, std::min(Wp, pd2 + in2));
    xc_parallel_for(g.N * g.Cin, std::max<int64_t>(1, 8192 / (Hp * Wp)), [&](int64_t p0, int64_t p1) {
      for (int64_t p = p0; p < p1; ++p)
        for (int64_t r = 0; r < Hp; ++r) {
          const int64_t i = r - pd1;
          xc_conv_padrow(xp + (p * Hp + r) * Wp, i < 0 || i >= in1 ? nullptr : x + (p * in1 + i) * in2 + (s0 - pd2),
                         s0, s1, Wp);
        }
    });
    src = xp; rs = Wp; cs = Hp * Wp;
  }
  constexpr int R = V == 8 ? 2 : 1;   // 8-pixel rows: two of them per tile
  const int64_t rb = (out1 + R - 1) / R, cob = (opg + XC_CONV_OCB - 1) / XC_CONV_OCB;
  const int64_t tasks = g.N * g.G * cob * rb, work = XC_CONV_OCB * R * out2 * cpg * K;
  xc_parallel_for(tasks, std::max<int64_t>(1, 32768 / std::max<int64_t>(work, 1)), [&](int64_t t0, int64_t t1) {
    // task t = ((n * G + gr) * cob + b) * rb + row block: divided once per chunk, then counted (a
    // 64-bit division per index per task cost as much as a small tile)
    int64_t ob = t0 % rb, b = (t0 / rb) % cob, gr = (t0 / rb / cob) % g.G, n = t0 / rb / cob / g.G;
    for (int64_t t = t0; t < t1; ++t, ++ob) {
      if (ob == rb) {
        ob = 0;
        if (++b == cob) { b = 0; if (++gr == g.G) { gr = 0; ++n; } }
      }
      const int64_t o1 = ob * R, co = gr * opg + b * XC_CONV_OCB;
      const int m = (int)std::min<int64_t>(XC_CONV_OCB, opg - b * XC_CONV_OCB);
      const int rows = (int)std::min<int64_t>(R, out1 - o1);
      const float* xs = src + (n * g.Cin + gr * cpg) * cs + o1 * st1 * rs;
      const int64_t y0 = (n * g.Cout + co) * O + o1 * out2;
      const float* wc = wp + co * cpg * K;
      const float* bc = bias ? bias + co : nullptr;
      if constexpr (V == 8) {
        if (rows == R) xc_conv2d_rows<xc_f8, 1, R, S>(m, y + y0, O, out2, xs, cs, rs, st1 * rs, wc, cpg, KH, KW, dl1, dl2, st2, bc, rows);
        else xc_conv2d_rows<xc_f8, 1, 1, S>(m, y + y0, O, out2, xs, cs, rs, st1 * rs, wc, cpg, KH, KW, dl1, dl2, st2, bc, rows);
      } else {
        xc_conv2d_rows<xc_conv_vec16, 16 / (int)(sizeof(xc_conv_vec16) / sizeof(float)), 1, S>(
            m, y + y0, O, out2, xs, cs, rs, st1 * rs, wc, cpg, KH, KW, dl1, dl2, st2, bc, rows);
      }
      for (int j = 0; j < m; ++j) epi(y0 + j * O, y0 + j * O + rows * out2);
    }
  });
}

// transposed convolution: y (N, Cout, out...) from x (N, Cin, in...), w (Cin, Cout/G, k...), by
// scattering each input element (direct loops; pad = low padding), output planes over threads
static void xc_conv_transpose_f32(float* y, const float* x, const float* w, const float* bias, const xc_conv_geom& g) {
  // tasks: (image, group, block of output channels); each input element's tap offset is computed
  // once and scattered to the block's channels, so tasks never write the same plane
  int64_t K = 1, O = 1, I = 1;
  for (int d = 0; d < g.nsp; ++d) { K *= g.k[d]; O *= g.out[d]; I *= g.in[d]; }
  const int64_t cpg = g.Cin / g.G, opg = g.Cout / g.G;
  const int64_t nblk = std::min<int64_t>(opg, std::max<int64_t>(1, 4 / std::max<int64_t>(1, g.N * g.G)));
  const int64_t bs = (opg + nblk - 1) / nblk;
  xc_parallel_for(g.N * g.G * nblk, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t blk = t % nblk, gr = (t / nblk) % g.G, n = t / nblk / g.G;
      const int64_t c0 = blk * bs, c1 = std::min(opg, c0 + bs);
      float* yb = y + (n * g.Cout + gr * opg) * O;
      for (int64_t co = c0; co < c1; ++co) {
        const float b = bias ? bias[gr * opg + co] : 0.0f;
        for (int64_t o = 0; o < O; ++o) yb[co * O + o] = b;
      }
      for (int64_t ci = gr * cpg; ci < (gr + 1) * cpg; ++ci)
        for (int64_t ii = 0; ii < I; ++ii) {
          const float xv = x[(n * g.Cin + ci) * I + ii];
          int64_t ic[3] = {0, 0, 0}, rem = ii;
          for (int d = g.nsp - 1; d >= 0; --d) { ic[d] = rem % g.in[d]; rem /= g.in[d]; }
          for (int64_t kk = 0; kk < K; ++kk) {
            int64_t kc[3] = {0, 0, 0}, r2 = kk, off = 0; bool inside = true;
            for (int d = g.nsp - 1; d >= 0; --d) { kc[d] = r2 % g.k[d]; r2 /= g.k[d]; }
            for (int d = 0; d < g.nsp; ++d) {
              const int64_t oc = ic[d] * g.stride[d] - g.pad[d] + kc[d] * g.dil[d];
              if (oc < 0 || oc >= g.out[d]) { inside = false; break; }
              off = off * g.out[d] + oc;
            }
            if (!inside) continue;
            const float* wk = w + (ci * opg) * K + kk;
            for (int64_t co = c0; co < c1; ++co) yb[co * O + off] += xv * wk[co * K];
          }
        }
    }
  });
}

// -- pooling over the last nsp dims of (P, in...) --------------------------------------------------
// mode 0: max (with optional flat indices), 1: avg; adaptive windows when `adaptive`
struct xc_pool_geom {
  int nsp; int64_t P;
  int64_t in[3], out[3], k[3], stride[3], pad[3], dil[3];
  bool adaptive, count_include_pad; int64_t divisor;
};

// one pooled dim's window at output coordinate o: first coordinate lo, step, taps [ta, tb) inside
// the input, and the count torch divides by when padding counts (avg, count_include_pad)
struct xc_pool_win { int64_t lo, step, ta, tb, padded; };
static inline xc_pool_win xc_pool_window(const xc_pool_geom& g, int d, int64_t o, int mode) {
  xc_pool_win w;
  if (g.adaptive) {
    w.lo = (o * g.in[d]) / g.out[d]; w.step = 1; w.ta = 0;
    w.tb = ((o + 1) * g.in[d] + g.out[d] - 1) / g.out[d] - w.lo; w.padded = w.tb;
    return w;
  }
  w.lo = o * g.stride[d] - g.pad[d]; w.step = mode == 0 ? g.dil[d] : 1;
  const int64_t hi = std::min(w.lo + (g.k[d] - 1) * w.step + 1, g.in[d] + g.pad[d]);
  w.padded = (hi - w.lo + w.step - 1) / w.step;
  w.ta = w.lo < 0 ? (-w.lo + w.step - 1) / w.step : 0;
  const int64_t last = g.in[d] - 1 - w.lo;  // taps t with lo + t * step <= in - 1
  w.tb = last < 0 ? 0 : std::min<int64_t>(g.k[d], last / w.step + 1);
  if (w.tb < w.ta) w.tb = w.ta;
  return w;
}

// the columns [a, b) of one float output row whose last-dim windows lie wholly inside the input:
// each tap a contiguous (or strided) pass over the row, accumulated in a vectorizable buffer
template <typename T>
static bool xc_pool_row_inner(T*, const T*, const xc_pool_geom&, int, const xc_pool_win&, const xc_pool_win&,
                              int64_t, int64_t) { return false; }
static bool xc_pool_row_inner(float* yrow, const float* xp, const xc_pool_geom& h, int mode, const xc_pool_win& w0,
                              const xc_pool_win& w1, int64_t a, int64_t b) {
  const int64_t st = h.stride[2], step2 = mode == 0 ? h.dil[2] : 1, k2 = h.k[2];
  const int64_t n = (w0.tb - w0.ta) * (w1.tb - w1.ta) * k2;
  const float div = (float)(h.divisor ? h.divisor : (!h.count_include_pad ? n : w0.padded * w1.padded * k2));
  for (int64_t c0 = a; c0 < b; c0 += 256) {
    const int64_t len = std::min<int64_t>(256, b - c0);
    float acc[256];
    for (int64_t i = 0; i < len; ++i) acc[i] = mode == 0 ? -INFINITY : 0.0f;
    for (int64_t t0 = w0.ta; t0 < w0.tb; ++t0)
      for (int64_t t1 = w1.ta; t1 < w1.tb; ++t1) {
        const float* xr = xp + ((w0.lo + t0 * w0.step) * h.in[1] + w1.lo + t1 * w1.step) * h.in[2] + c0 * st - h.pad[2];
        if (st == 2 && k2 == 2 && step2 == 1) {  // 2-wide stride-2 windows: both taps in one pass (no gathers)
          if (mode == 0) {
#pragma omp simd
            for (int64_t i = 0; i < len; ++i) {
              const float u = xr[2 * i], v = xr[2 * i + 1];
              float a = acc[i];
              a = (u > a || u != u) ? u : a;
              acc[i] = (v > a || v != v) ? v : a;
            }
          } else {
#pragma omp simd
            for (int64_t i = 0; i < len; ++i) acc[i] += xr[2 * i] + xr[2 * i + 1];
          }
          continue;
        }
        for (int64_t t2 = 0; t2 < k2; ++t2) {
          const float* xk = xr + t2 * step2;
          if (mode == 0 && st == 1) {
#pragma omp simd
            for (int64_t i = 0; i < len; ++i) { const float v = xk[i]; acc[i] = (v > acc[i] || v != v) ? v : acc[i]; }
          } else if (mode == 0 && st == 2) {  // (the common 2x2 / 3x3 stride-2 pools: a constant stride vectorizes)
#pragma omp simd
            for (int64_t i = 0; i < len; ++i) { const float v = xk[2 * i]; acc[i] = (v > acc[i] || v != v) ? v : acc[i]; }
          } else if (mode == 0) {
            for (int64_t i = 0; i < len; ++i) { const float v = xk[i * st]; acc[i] = (v > acc[i] || v != v) ? v : acc[i]; }
          } else if (st == 1) {
#pragma omp simd
            for (int64_t i = 0; i < len; ++i) acc[i] += xk[i];
          } else if (st == 2) {
#pragma omp simd
            for (int64_t i = 0; i < len; ++i) acc[i] += xk[2 * i];
          } else {
            for (int64_t i = 0; i < len; ++i) acc[i] += xk[i * st];
          }
        }
      }
    for (int64_t i = 0; i < len; ++i) yrow[c0 + i] = mode == 0 ? acc[i] : acc[i] / div;
  }
  return true;
}

// global pooling (one output per plane, its window the whole plane): one contiguous pass per plane
template <typename T>
static void xc_pool_global(T* y, const T* x, int64_t P, int64_t I, int mode, int64_t divisor) {
  xc_parallel_for(P, std::max<int64_t>(1, 16384 / std::max<int64_t>(I, 1)), [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const T* s = x + p * I;
      if constexpr (std::is_same<T, float>::value) {
        float r = mode == 0 ? -INFINITY : 0.0f;
        int nan = 0;
        if (mode == 0) {
#pragma omp simd reduction(max : r) reduction(| : nan)
          for (int64_t i = 0; i < I; ++i) { const float v = s[i]; r = v > r ? v : r; nan |= v != v; }
        } else {
#pragma omp simd reduction(+ : r)
          for (int64_t i = 0; i < I; ++i) r += s[i];
        }
        y[p] = nan ? XC_NAN : mode == 0 ? r : r / (float)(divisor ? divisor : I);
      } else {
        double r = mode == 0 ? -INFINITY : 0.0;
        bool nan = false;
        for (int64_t i = 0; i < I; ++i) {
          const double v = xc_val(s[i]);
          if (mode == 0) { r = v > r ? v : r; nan = nan || v != v; } else r += v;
        }
        y[p] = xc_from<T>(nan ? (double)XC_NAN : mode == 0 ? r : r / (double)(divisor ? divisor : I));
      }
    }
  });
}

template <typename T>
static void xc_pool(T* y, int64_t* yidx, const T* x, const xc_pool_geom& g, int mode) {
  {
    bool global = !yidx;
    int64_t I = 1;
    for (int d = 0; d < g.nsp; ++d) {
      global = global && g.out[d] == 1 && (g.adaptive || (g.k[d] == g.in[d] && g.pad[d] == 0 && g.dil[d] == 1));
      I *= g.in[d];
    }
    if (global) { xc_pool_global(y, x, g.P, I, mode, g.adaptive ? 0 : g.divisor); return; }
  }
  if constexpr (std::is_same<T, float>::value) {  // 2x2 stride-2 windows, all inside the input
    const int a = g.nsp - 2;
    if (!yidx && !g.adaptive && g.nsp >= 2 && (g.nsp == 2 || (g.out[0] == g.in[0] && g.k[0] == 1 && g.pad[0] == 0)) &&
        g.k[a] == 2 && g.k[a + 1] == 2 && g.stride[a] == 2 && g.stride[a + 1] == 2 && g.pad[a] == 0 &&
        g.pad[a + 1] == 0 && g.dil[a] == 1 && g.dil[a + 1] == 1 && 2 * g.out[a] <= g.in[a] &&
        2 * g.out[a + 1] <= g.in[a + 1] && !(mode != 0 && g.divisor)) {
      const int64_t in1 = g.in[a], in2 = g.in[a + 1], out1 = g.out[a], out2 = g.out[a + 1];
      const int64_t rows = g.P * (g.nsp == 3 ? g.in[0] : 1) * out1;
      xc_parallel_for(rows, std::max<int64_t>(1, 4096 / std::max<int64_t>(4 * out2, 1)), [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
          const float* u = x + ((r / out1) * in1 + 2 * (r % out1)) * in2;
          const float* v = u + in2;
          float* q = y + r * out2;
          if (mode == 0) {
#pragma omp simd
            for (int64_t i = 0; i < out2; ++i) {
              float m = u[2 * i];
              const float b = u[2 * i + 1], c = v[2 * i], d = v[2 * i + 1];
              m = (b > m || b != b) && m == m ? b : m;
              m = (c > m || c != c) && m == m ? c : m;
              q[i] = (d > m || d != d) && m == m ? d : m;
            }
          } else {
#pragma omp simd
            for (int64_t i = 0; i < out2; ++i) q[i] = ((u[2 * i] + u[2 * i + 1]) + (v[2 * i] + v[2 * i + 1])) * 0.25f;
          }
        }
      });
      return;
    }
  }
  // dims right-aligned to 3 (leading dims of size 1, one-tap windows); windows computed per dim
  // once per output row and per output column, taps walked with pointer steps
  xc_pool_geom h = g;
  for (int d = 0; d < 3; ++d) {
    const int s = d - (3 - g.nsp);
    h.in[d] = s < 0 ? 1 : g.in[s]; h.out[d] = s < 0 ? 1 : g.out[s]; h.k[d] = s < 0 ? 1 : g.k[s];
    h.stride[d] = s < 0 ? 1 : g.stride[s]; h.pad[d] = s < 0 ? 0 : g.pad[s]; h.dil[d] = s < 0 ? 1 : g.dil[s];
  }
  h.nsp = 3;
  const int64_t O = h.out[0] * h.out[1] * h.out[2], I = h.in[0] * h.in[1] * h.in[2];
  const int64_t rows = g.P * h.out[0] * h.out[1];
  // the windows of the two outer dims, and the interior columns [ia, ib) of every row (whole window
  // inside the row: float, not adaptive, no indices), once per call instead of per row
  std::vector<xc_pool_win> W0(h.out[0]), W1(h.out[1]);
  for (int64_t o = 0; o < h.out[0]; ++o) W0[o] = xc_pool_window(h, 0, o, mode);
  for (int64_t o = 0; o < h.out[1]; ++o) W1[o] = xc_pool_window(h, 1, o, mode);
  int64_t ia = 0, ib = 0;
  if (!g.adaptive && !yidx) {
    const int64_t st = h.stride[2], reach = (h.k[2] - 1) * (mode == 0 ? h.dil[2] : 1);
    ia = std::min(h.out[2], (h.pad[2] + st - 1) / st);
    const int64_t lim = h.in[2] - 1 + h.pad[2] - reach;
    ib = lim < 0 ? ia : std::max(ia, std::min(h.out[2], lim / st + 1));
  }
  xc_parallel_for(rows, std::max<int64_t>(1, 4096 / std::max<int64_t>(h.out[2] * h.k[0] * h.k[1] * h.k[2], 1)),
                  [&](int64_t r0, int64_t r1) {
    int64_t o1 = r0 % h.out[1], o0 = (r0 / h.out[1]) % h.out[0], p = r0 / (h.out[0] * h.out[1]);
    for (int64_t r = r0; r < r1; ++r) {
      const xc_pool_win& w0 = W0[o0];
      const xc_pool_win& w1 = W1[o1];
      const T* xp = x + p * I;
      const int64_t ybase = p * O + (o0 * h.out[1] + o1) * h.out[2];
      int64_t a = ia, b = ib;
      if (b > a && !xc_pool_row_inner(y + ybase, xp, h, mode, w0, w1, a, b)) a = b = 0;
      if (++o1 == h.out[1]) {  // the next row's coordinates
        o1 = 0;
        if (++o0 == h.out[0]) { o0 = 0; ++p; }
      }
      for (int64_t o2 = 0; o2 < h.out[2]; ++o2) {
        if (o2 == a && b > a) { o2 = b - 1; continue; }
        const xc_pool_win w2 = xc_pool_window(h, 2, o2, mode);
        const int64_t n = (w0.tb - w0.ta) * (w1.tb - w1.ta) * (w2.tb - w2.ta);
        double acc = mode == 0 ? -INFINITY : 0.0; int64_t best = -1; bool nan = false;
        for (int64_t t0 = w0.ta; t0 < w0.tb; ++t0)
          for (int64_t t1 = w1.ta; t1 < w1.tb; ++t1) {
            const int64_t row = ((w0.lo + t0 * w0.step) * h.in[1] + w1.lo + t1 * w1.step) * h.in[2];
            if (mode == 0) {
              for (int64_t t2 = w2.ta; t2 < w2.tb; ++t2) {
                const int64_t off = row + w2.lo + t2 * w2.step;
                const double v = xc_val(xp[off]);
                if (v != v || (!nan && (v > acc || best < 0))) { acc = v; best = off; nan = v != v; }
              }
            } else {
              for (int64_t t2 = w2.ta; t2 < w2.tb; ++t2) acc += xc_val(xp[row + w2.lo + t2 * w2.step]);
            }
          }
        if (mode != 0) {
          const int64_t div = g.divisor ? g.divisor
                            : (g.adaptive || !g.count_include_pad ? n : w0.padded * w1.padded * w2.padded);
          acc /= (double)div;
        }
        y[ybase + o2] = xc_from<T>(acc);
        if (yidx) yidx[ybase + o2] = best;
      }
    }
  });
}

// -- advanced indexing: out (lead, B, trail) over x's non-indexed dims `rest` (nlead of them first) --
struct xc_index_geom {
  int rank, nidx, nlead; int64_t B;
  int64_t xshape[XC_MAXR], xstride[XC_MAXR]; int axes[XC_MAXR], rest[XC_MAXR];
};

template <typename T, typename F>
static bool xc_index_walk(const xc_index_geom& g, int64_t* const* idx, F&& f) {
  int64_t lead = 1, trail = 1;
  const int nrest = g.rank - g.nidx;
  for (int i = 0; i < nrest; ++i) (i < g.nlead ? lead : trail) *= g.xshape[g.rest[i]];
  for (int k = 0; k < g.nidx; ++k)
    for (int64_t b = 0; b < g.B; ++b) {
      int64_t t; if (!xc_wrap(idx[k][b], g.xshape[g.axes[k]], &t)) return false;
      idx[k][b] = t;
    }
  int64_t p = 0;
  for (int64_t l = 0; l < lead; ++l)
    for (int64_t b = 0; b < g.B; ++b)
      for (int64_t t = 0; t < trail; ++t, ++p) {
        int64_t off = 0;
        for (int k = 0; k < g.nidx; ++k) off += idx[k][b] * g.xstride[g.axes[k]];
        int64_t rl = l, rt = t;
        for (int i = nrest - 1; i >= 0; --i) {
          int64_t& r = i < g.nlead ? rl : rt;
          const int d = g.rest[i];
          off += (r % g.xshape[d]) * g.xstride[d];
          r /= g.xshape[d];
        }
        f(p, off);
      }
  return true;
}

// -- host lists (TorchScript lists a loop appends to): elements of one byte size ----------------------
// A list @main returns reaches the caller as an xc_list_view in its output slot: `n` elements stored
// back to back at `data` (owned by the model, valid until its next run or xc_destroy).
#ifndef XC_LIST_VIEW_DEFINED
#define XC_LIST_VIEW_DEFINED
typedef struct xc_list_view { int64_t n; const void* data; } xc_list_view;
#endif
struct xc_list {
  std::vector<unsigned char> data;
  int64_t n = 0;
  void push(const void* p, int64_t bytes) {
    const size_t at = data.size();
    data.resize(at + (size_t)bytes);
    if (bytes) std::memcpy(data.data() + at, p, (size_t)bytes);
    ++n;
  }
  bool get(int64_t i, void* dst, int64_t bytes) const {
    if (i < 0) i += n;
    if (i < 0 || i >= n) return false;
    if (bytes) std::memcpy(dst, data.data() + (size_t)(i * bytes), (size_t)bytes);
    return true;
  }
};
