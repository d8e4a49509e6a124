// Fused attention kernels (contract in attention.h).
//
// One tile step works on a query block (rows) and a key block (columns), copied into per-thread
// scratch whose rows are whole vectors (HSp = HS rounded up to a vector, zero padded):
//   qp [kB][HSp] queries   kt [HSp][kB] keys transposed   vp [kB][HSp] values   st [kB][kB] scores
// Every product in forward and backward is then C (+)= A B with B's rows contiguous and aligned,
// done by one register-blocked micro-kernel (4 rows x up to 4 vectors = 16 accumulators, which fit
// in the 32 zmm registers of AVX-512). Partial blocks are computed rounded up to 4 rows / one
// vector of keys, so a decoding step (Tq = 1) costs 4 rows, not 64.
//
// Forward (online softmax, per row): m = running max, l = running sum of exp(x - m), o = running
// sum of exp(x - m) v. A new block with scores x: m' = max(m, max x), a = exp(m - m'),
// p = exp(x - m'), l' = a l + sum p, o' = a o + p V. At the end out = o / l, lse = m + log l.
// Backward (FlashAttention-2): with P = exp(x - lse) recomputed per tile and D = rowsum(dO * O),
// dV += P^T dO, dP = dO V^T, dS = P (dP - D), dbias += dS, dQ += scale dS K, dK += scale dS^T Q.
// Segments mask like padding, per element; a tile whose query and key blocks have disjoint
// ranges of segment ids is skipped in both passes (all its P are 0).

#include "llmkit/kernels/cpu/attention.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>

#include "llmkit/core/error.h"
#include "llmkit/core/parallel.h"

namespace llmkit::kernels {
namespace {

constexpr int64_t kB = kAttentionBlock;
// Widest vector the target has (64 bytes = one zmm with -march=native here); a wider GCC vector
// type than the target supports would change the calling convention (-Wpsabi).
#if defined(__AVX512F__)
constexpr int kVecBytes = 64;
#elif defined(__AVX__)
constexpr int kVecBytes = 32;
#else
constexpr int kVecBytes = 16;
#endif
constexpr int kRows = 4;     // micro-kernel rows
constexpr int kMaxVecs = 4;  // micro-kernel vectors per row

template <typename T>
struct VecOf;
template <>
struct VecOf<float> {
  typedef float type __attribute__((vector_size(kVecBytes)));
  typedef int32_t itype __attribute__((vector_size(kVecBytes)));
};
template <>
struct VecOf<double> {
  typedef double type __attribute__((vector_size(kVecBytes)));
};
template <typename T>
using Vec = typename VecOf<T>::type;
template <typename T>
constexpr int64_t kW = kVecBytes / sizeof(T);  // lanes per vector

template <typename T>
constexpr T kNegInf = -std::numeric_limits<T>::infinity();

inline int64_t round_up(int64_t x, int64_t m) {
  return (x + m - 1) / m * m;
}

template <typename V, typename T>
inline V load(const T* p) {
  V v;
  std::memcpy(&v, p, sizeof(V));
  return v;
}
template <typename V, typename T>
inline void store(T* p, V v) {
  std::memcpy(p, &v, sizeof(V));
}

// exp on a vector. float: Cody-Waite reduction x = n ln2 + r, |r| <= ln2/2, degree-6 Taylor
// polynomial (error < 2 ulp) and 2^n built in the exponent bits, so the loop stays in registers
// (std::exp does not vectorise without -ffast-math). Inputs below -87 (including -inf, a masked
// score) give exactly 0. double: std::exp per lane, so the double path is exact-math for tests.
inline Vec<float> vexp(Vec<float> x) {
  using V = Vec<float>;
  using VI = VecOf<float>::itype;
  const float lo = -87.0f, hi = 88.0f;
  const float shifter = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer in the mantissa
  V xc = x < lo ? V{} + lo : x;
  xc = xc > hi ? V{} + hi : xc;
  const V t = xc * 1.44269504088896341f + shifter;
  const V n = t - shifter;
  const VI ni = load<VI>(&t) - 0x4B400000;
  V r = xc - n * 0.693145751953125f;  // ln2 split into a short high part and a correction
  r = r - n * 1.428606765330187e-06f;
  V p = V{} + (1.0f / 720);
  p = p * r + (1.0f / 120);
  p = p * r + (1.0f / 24);
  p = p * r + (1.0f / 6);
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const VI bits = (ni + 127) << 23;
  const V res = p * load<V>(&bits);
  return x < lo ? V{} : res;
}
inline Vec<double> vexp(Vec<double> x) {
  for (int i = 0; i < kW<double>; ++i) x[i] = std::exp(x[i]);
  return x;
}
inline float scalar_log(float x) {
  return std::log(x);
}
inline double scalar_log(double x) {
  return std::log(x);
}

// C[kRows x NV*W] (+)= sum_k A(r, k) B[k][:], A(r, k) = a[r*ars + k*aks]. The accumulators stay
// in registers for the whole k loop.
template <typename T, int NV, bool kAcc>
inline void micro_kernel(T* __restrict c, int64_t ldc, const T* __restrict a, int64_t ars,
                         int64_t aks, const T* __restrict b, int64_t ldb, int64_t kdim) {
  using V = Vec<T>;
  constexpr int64_t W = kW<T>;
  V acc[kRows][NV];
#pragma GCC unroll 4
  for (int r = 0; r < kRows; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[r][v] = kAcc ? load<V>(c + r * ldc + v * W) : V{};
  for (int64_t k = 0; k < kdim; ++k) {
    V bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) bv[v] = load<V>(b + k * ldb + v * W);
#pragma GCC unroll 4
    for (int r = 0; r < kRows; ++r) {
      const V av = V{} + a[r * ars + k * aks];
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[r][v] += av * bv[v];
    }
  }
#pragma GCC unroll 4
  for (int r = 0; r < kRows; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) store(c + r * ldc + v * W, acc[r][v]);
}

// C[m x n] (+)= A[m x kdim] B[kdim x n], m a multiple of kRows, n a multiple of the vector width,
// B and C aligned scratch. Column chunks outside, so a chunk of B stays in L1 across the rows.
template <typename T, bool kAcc>
void tile_gemm(T* c, int64_t ldc, const T* a, int64_t ars, int64_t aks, const T* b, int64_t ldb,
               int64_t m, int64_t n, int64_t kdim) {
  constexpr int64_t W = kW<T>;
  for (int64_t c0 = 0; c0 < n; c0 += kMaxVecs * W) {
    const int64_t nv = std::min<int64_t>(kMaxVecs, (n - c0) / W);
    for (int64_t r = 0; r < m; r += kRows) {
      T* cc = c + r * ldc + c0;
      const T* aa = a + r * ars;
      const T* bb = b + c0;
      switch (nv) {
        case 4:
          micro_kernel<T, 4, kAcc>(cc, ldc, aa, ars, aks, bb, ldb, kdim);
          break;
        case 3:
          micro_kernel<T, 3, kAcc>(cc, ldc, aa, ars, aks, bb, ldb, kdim);
          break;
        case 2:
          micro_kernel<T, 2, kAcc>(cc, ldc, aa, ars, aks, bb, ldb, kdim);
          break;
        default:
          micro_kernel<T, 1, kAcc>(cc, ldc, aa, ars, aks, bb, ldb, kdim);
          break;
      }
    }
  }
}

// Per-thread scratch, 64-byte aligned, kept for the thread's lifetime and grown to the largest
// request: fresh pages are expensive, so steady-state calls allocate nothing.
template <typename T>
T* thread_scratch(int64_t n) {
  struct Free {
    void operator()(T* p) const { std::free(p); }
  };
  thread_local std::unique_ptr<T[], Free> buf;
  thread_local int64_t cap = 0;
  if (cap < n) {
    buf.reset(static_cast<T*>(std::aligned_alloc(64, round_up(n * sizeof(T), 64))));
    LLMKIT_CHECK(buf != nullptr, "attention: out of memory for ", n, " scratch elements");
    cap = n;
  }
  return buf.get();
}

// dst[r][0:HSp] = src[r][0:HS] for r < rows, zero padding; rows up to rows_pad are zero.
template <typename T>
void pack_rows(T* __restrict dst, int64_t hsp, const T* __restrict src, int64_t hs, int64_t rows,
               int64_t rows_pad) {
  for (int64_t r = 0; r < rows; ++r) {
    std::memcpy(dst + r * hsp, src + r * hs, hs * sizeof(T));
    std::fill(dst + r * hsp + hs, dst + (r + 1) * hsp, T(0));
  }
  std::fill(dst + rows * hsp, dst + rows_pad * hsp, T(0));
}

// dst[d][c] = src[c][d] for c < cols, d < HS; columns cols..cols_pad are zero.
template <typename T>
void pack_transposed(T* __restrict dst, const T* __restrict src, int64_t hs, int64_t cols,
                     int64_t cols_pad) {
  for (int64_t d = 0; d < hs; ++d) {
    T* row = dst + d * kB;
    for (int64_t c = 0; c < cols; ++c) row[c] = src[c * hs + d];
    std::fill(row + cols, row + cols_pad, T(0));
  }
}

// Turns a row of raw scores q.k into masked logits x = scale * s + bias; columns at or past
// `lim` (causal limit or end of keys), padded keys and keys of another segment than the query's
// (srow[c] != seg) become -inf. Returns max x.
template <typename T>
T logits_row(T* __restrict x, int64_t ncols_pad, int64_t lim, T scale, const T* __restrict brow,
             const uint8_t* __restrict mrow, const int32_t* __restrict srow, int32_t seg) {
  using V = Vec<T>;
  lim = std::max<int64_t>(lim, 0);
  for (int64_t c = 0; c < lim; ++c) x[c] *= scale;
  if (brow != nullptr)
    for (int64_t c = 0; c < lim; ++c) x[c] += brow[c];
  if (mrow != nullptr)
    for (int64_t c = 0; c < lim; ++c) x[c] = mrow[c] ? x[c] : kNegInf<T>;
  if (srow != nullptr)
    for (int64_t c = 0; c < lim; ++c) x[c] = srow[c] == seg ? x[c] : kNegInf<T>;
  for (int64_t c = lim; c < ncols_pad; ++c) x[c] = kNegInf<T>;
  V vm = V{} + kNegInf<T>;
  for (int64_t c = 0; c < ncols_pad; c += kW<T>) {
    const V xv = load<V>(x + c);
    vm = xv > vm ? xv : vm;
  }
  T m = vm[0];
  for (int i = 1; i < kW<T>; ++i) m = std::max(m, vm[i]);
  return m;
}

// x[c] = exp(x[c] - shift) in place; returns the sum (lane partial sums, fixed order).
template <typename T>
T exp_row(T* __restrict x, int64_t ncols_pad, T shift) {
  using V = Vec<T>;
  V vs{};
  for (int64_t c = 0; c < ncols_pad; c += kW<T>) {
    const V p = vexp(load<V>(x + c) - shift);
    store(x + c, p);
    vs += p;
  }
  T sum = 0;
  for (int i = 0; i < kW<T>; ++i) sum += vs[i];
  return sum;
}

void check_shape(const AttentionShape& s, const char* op) {
  LLMKIT_CHECK(s.B >= 0 && s.NH >= 1 && s.NKV >= 1 && s.Tq >= 0 && s.Tk >= 0 && s.HS >= 1, op,
               ": bad shape B=", s.B, " NH=", s.NH, " NKV=", s.NKV, " Tq=", s.Tq, " Tk=", s.Tk,
               " HS=", s.HS);
  LLMKIT_CHECK(s.NH % s.NKV == 0, op, ": query heads NH=", s.NH,
               " not a multiple of key/value heads NKV=", s.NKV);
}

// Keys [0, key_end) can be seen by some query in rows [i0, i0 + nq).
int64_t key_end(const AttentionShape& s, int64_t i0, int64_t nq) {
  if (!s.causal) return s.Tk;
  return std::clamp<int64_t>(i0 + nq + (s.Tk - s.Tq), 0, s.Tk);
}
// Number of keys of block [j0, j0 + nk) that query qi sees (a prefix of the block).
int64_t visible_keys(const AttentionShape& s, int64_t qi, int64_t j0, int64_t nk) {
  if (!s.causal) return nk;
  return std::clamp<int64_t>(qi + (s.Tk - s.Tq) - j0 + 1, 0, nk);
}

// Whether no query of rows [i0, i0 + nq) shares a segment with a key of [j0, j0 + nk): their
// ranges of segment ids do not overlap, so the whole tile is masked. seg is one batch row [T];
// without segments (nullptr) never.
bool segments_disjoint(const int32_t* seg, int64_t i0, int64_t nq, int64_t j0, int64_t nk) {
  if (seg == nullptr) return false;
  const auto [qlo, qhi] = std::minmax_element(seg + i0, seg + i0 + nq);
  const auto [klo, khi] = std::minmax_element(seg + j0, seg + j0 + nk);
  return *qhi < *klo || *khi < *qlo;
}

// One (batch b, head h, query block starting at i0) of the forward pass.
template <typename T>
void forward_block(T* out, T* lse, const T* q, const T* k, const T* v, const uint8_t* key_mask,
                   const int32_t* segments, const T* bias, const AttentionShape& s, int64_t b,
                   int64_t h, int64_t i0) {
  const int64_t HS = s.HS, Tq = s.Tq, Tk = s.Tk, hsp = round_up(HS, kW<T>);
  const int64_t nq = std::min(kB, Tq - i0), mq = round_up(nq, kRows);
  const int64_t kvh = h / (s.NH / s.NKV);
  const T scale = static_cast<T>(s.scale);

  T* qp = thread_scratch<T>(4 * kB * hsp + kB * kB + 2 * kB);
  T* kt = qp + kB * hsp;
  T* vp = kt + kB * hsp;
  T* o = vp + kB * hsp;
  T* st = o + kB * hsp;
  T* m = st + kB * kB;
  T* l = m + kB;

  const int64_t qrow0 = (b * s.NH + h) * Tq + i0;  // first row index into [B*NH*Tq]
  pack_rows(qp, hsp, q + qrow0 * HS, HS, nq, mq);
  std::fill(o, o + mq * hsp, T(0));
  std::fill(m, m + kB, kNegInf<T>);
  std::fill(l, l + kB, T(0));

  const T* kbase = k + (b * s.NKV + kvh) * Tk * HS;
  const T* vbase = v + (b * s.NKV + kvh) * Tk * HS;
  const int32_t* seg = segments ? segments + b * Tk : nullptr;  // [T]; Tq == Tk with segments
  const int64_t jend = key_end(s, i0, nq);
  for (int64_t j0 = 0; j0 < jend; j0 += kB) {
    const int64_t nk = std::min(kB, Tk - j0), nkp = round_up(nk, kW<T>);
    if (segments_disjoint(seg, i0, nq, j0, nk)) continue;  // every score masked: adds nothing
    pack_transposed(kt, kbase + j0 * HS, HS, nk, nkp);
    pack_rows(vp, hsp, vbase + j0 * HS, HS, nk, nkp);
    tile_gemm<T, false>(st, kB, qp, hsp, 1, kt, kB, mq, nkp, HS);  // st = q k^T
    for (int64_t r = 0; r < nq; ++r) {
      const int64_t qi = i0 + r;
      T* x = st + r * kB;
      const T* brow = bias ? bias + (h * Tq + qi) * Tk + j0 : nullptr;
      const uint8_t* mrow = key_mask ? key_mask + b * Tk + j0 : nullptr;
      const T mx = logits_row(x, nkp, visible_keys(s, qi, j0, nk), scale, brow, mrow,
                              seg ? seg + j0 : nullptr, seg ? seg[qi] : 0);
      const T m_new = std::max(m[r], mx);
      if (m_new == kNegInf<T>) {  // nothing visible yet: this block adds nothing to the row
        std::fill(x, x + nkp, T(0));
        continue;
      }
      const T alpha = m[r] == kNegInf<T> ? T(0) : std::exp(m[r] - m_new);
      l[r] = alpha * l[r] + exp_row(x, nkp, m_new);
      m[r] = m_new;
      if (alpha != T(1))
        for (int64_t d = 0; d < hsp; ++d) o[r * hsp + d] *= alpha;
    }
    for (int64_t r = nq; r < mq; ++r) std::fill(st + r * kB, st + r * kB + nkp, T(0));
    tile_gemm<T, true>(o, hsp, st, kB, 1, vp, hsp, mq, hsp, nk);  // o += p v
  }

  for (int64_t r = 0; r < nq; ++r) {
    T* orow = out + (qrow0 + r) * HS;
    if (l[r] > T(0)) {
      const T inv = T(1) / l[r];
      for (int64_t d = 0; d < HS; ++d) orow[d] = o[r * hsp + d] * inv;
      lse[qrow0 + r] = m[r] + scalar_log(l[r]);
    } else {  // the row sees no key
      std::fill(orow, orow + HS, T(0));
      lse[qrow0 + r] = kNegInf<T>;
    }
  }
}

// Scratch of one backward task: tiles for one key block and one query block.
template <typename T>
struct BackwardTiles {
  T *qp, *dop, *kt, *kp, *vt, *dqt, *dkacc, *dvacc, *st, *dst, *dd;
  explicit BackwardTiles(int64_t hsp) {
    const int64_t t = kB * hsp;
    qp = thread_scratch<T>(8 * t + 2 * kB * kB + kB);
    dop = qp + t, kt = dop + t, kp = kt + t, vt = kp + t, dqt = vt + t;
    dkacc = dqt + t, dvacc = dkacc + t, st = dvacc + t, dst = st + kB * kB, dd = dst + kB * kB;
  }
};

// One tile step of the backward pass: key block [j0, j0 + nk) (already packed in w) against the
// query block [i0, i0 + nq) of head h in batch b. seg: batch b's segment ids [T] or nullptr.
template <typename T>
void backward_tile(T* dq, T* dbias, const T* dout, const T* q, const T* out, const T* lse,
                   const uint8_t* key_mask, const int32_t* seg, const T* bias,
                   const AttentionShape& s, const BackwardTiles<T>& w, int64_t b, int64_t h,
                   int64_t i0, int64_t j0, int64_t nk) {
  const int64_t HS = s.HS, Tq = s.Tq, Tk = s.Tk, hsp = round_up(HS, kW<T>);
  const int64_t nq = std::min(kB, Tq - i0), mq = round_up(nq, kRows), nkp = round_up(nk, kW<T>);
  const T scale = static_cast<T>(s.scale);
  const int64_t row0 = (b * s.NH + h) * Tq + i0;

  pack_rows(w.qp, hsp, q + row0 * HS, HS, nq, mq);
  pack_rows(w.dop, hsp, dout + row0 * HS, HS, nq, mq);
  for (int64_t r = 0; r < nq; ++r) {  // D = rowsum(dO * O)
    const T* o = out + (row0 + r) * HS;
    const T* g = w.dop + r * hsp;
    T acc = 0;
    for (int64_t d = 0; d < HS; ++d) acc += g[d] * o[d];
    w.dd[r] = acc;
  }

  tile_gemm<T, false>(w.st, kB, w.qp, hsp, 1, w.kt, kB, mq, nkp, HS);  // st = q k^T
  for (int64_t r = 0; r < mq; ++r) {                                   // st = P
    T* x = w.st + r * kB;
    const T lr = r < nq ? lse[row0 + r] : kNegInf<T>;
    if (lr == kNegInf<T>) {  // padding row, or a row that sees no key
      std::fill(x, x + nkp, T(0));
      continue;
    }
    const int64_t qi = i0 + r;
    const T* brow = bias ? bias + (h * Tq + qi) * Tk + j0 : nullptr;
    const uint8_t* mrow = key_mask ? key_mask + b * Tk + j0 : nullptr;
    logits_row(x, nkp, visible_keys(s, qi, j0, nk), scale, brow, mrow, seg ? seg + j0 : nullptr,
               seg ? seg[qi] : 0);
    exp_row(x, nkp, lr);
  }
  tile_gemm<T, true>(w.dvacc, hsp, w.st, 1, kB, w.dop, hsp, nkp, hsp, nq);  // dV += P^T dO
  tile_gemm<T, false>(w.dst, kB, w.dop, hsp, 1, w.vt, kB, mq, nkp, HS);     // dP = dO V^T
  for (int64_t r = 0; r < mq; ++r) {                                        // dS = P (dP - D)
    T* ds = w.dst + r * kB;
    const T* p = w.st + r * kB;
    const T dr = r < nq ? w.dd[r] : T(0);
    for (int64_t c = 0; c < nkp; ++c) ds[c] = p[c] * (ds[c] - dr);
    if (dbias != nullptr && r < nq) {
      T* gb = dbias + (h * Tq + i0 + r) * Tk + j0;
      for (int64_t c = 0; c < nk; ++c) gb[c] += ds[c];
    }
    for (int64_t c = 0; c < nkp; ++c) ds[c] *= scale;
  }
  tile_gemm<T, false>(w.dqt, hsp, w.dst, kB, 1, w.kp, hsp, mq, hsp, nk);  // dQ += scale dS K
  for (int64_t r = 0; r < nq; ++r) {
    T* g = dq + (row0 + r) * HS;
    const T* t = w.dqt + r * hsp;
    for (int64_t d = 0; d < HS; ++d) g[d] += t[d];
  }
  tile_gemm<T, true>(w.dkacc, hsp, w.dst, 1, kB, w.qp, hsp, nkp, hsp, nq);  // dK += scale dS^T Q
}

// All of the backward pass for kv head kvh of batch b: dk/dv of that head and dq of the query
// heads that read it.
template <typename T>
void backward_group(T* dq, T* dk, T* dv, T* dbias, const T* dout, const T* q, const T* k,
                    const T* v, const T* out, const T* lse, const uint8_t* key_mask,
                    const int32_t* segments, const T* bias, const AttentionShape& s, int64_t b,
                    int64_t kvh) {
  const int64_t HS = s.HS, Tk = s.Tk, hsp = round_up(HS, kW<T>), group = s.NH / s.NKV;
  const BackwardTiles<T> w(hsp);
  const int64_t kv0 = (b * s.NKV + kvh) * Tk;  // first row of this head in [B*NKV*Tk]
  const int32_t* seg = segments ? segments + b * Tk : nullptr;
  for (int64_t j0 = 0; j0 < Tk; j0 += kB) {
    const int64_t nk = std::min(kB, Tk - j0), nkp = round_up(nk, kW<T>);
    pack_transposed(w.kt, k + (kv0 + j0) * HS, HS, nk, nkp);
    pack_rows(w.kp, hsp, k + (kv0 + j0) * HS, HS, nk, nkp);
    pack_transposed(w.vt, v + (kv0 + j0) * HS, HS, nk, nkp);
    std::fill(w.dkacc, w.dkacc + nkp * hsp, T(0));
    std::fill(w.dvacc, w.dvacc + nkp * hsp, T(0));
    // Causal: query qi sees key j0 iff qi >= j0 - (Tk - Tq); earlier query blocks are skipped.
    const int64_t ifirst = s.causal ? std::max<int64_t>(0, j0 - (Tk - s.Tq)) : 0;
    for (int64_t h = kvh * group; h < (kvh + 1) * group; ++h)
      for (int64_t i0 = ifirst / kB * kB; i0 < s.Tq; i0 += kB) {
        if (segments_disjoint(seg, i0, std::min(kB, s.Tq - i0), j0, nk)) continue;  // all masked
        backward_tile(dq, dbias, dout, q, out, lse, key_mask, seg, bias, s, w, b, h, i0, j0, nk);
      }
    for (int64_t c = 0; c < nk; ++c) {
      T* gk = dk + (kv0 + j0 + c) * HS;
      T* gv = dv + (kv0 + j0 + c) * HS;
      for (int64_t d = 0; d < HS; ++d) {
        gk[d] += w.dkacc[c * hsp + d];
        gv[d] += w.dvacc[c * hsp + d];
      }
    }
  }
}

}  // namespace

template <typename T>
void attention_forward(T* out, T* lse, const T* q, const T* k, const T* v, const uint8_t* key_mask,
                       const int32_t* segments, const T* bias, const AttentionShape& s) {
  check_shape(s, "attention_forward");
  LLMKIT_CHECK(segments == nullptr || s.Tq == s.Tk,
               "attention_forward: segments need Tq == Tk, got Tq=", s.Tq, " Tk=", s.Tk);
  const int64_t nqb = (s.Tq + kB - 1) / kB, ntask = s.B * s.NH * nqb;
  if (ntask == 0) return;
  LLMKIT_CHECK(out && lse && q && (s.Tk == 0 || (k && v)), "attention_forward: null tensor");
  const int nt = static_cast<int>(std::min<int64_t>(num_threads(), ntask));
  // Dynamic schedule, last (costliest under a causal mask) query blocks first; each task writes
  // its own rows, so the schedule does not change the result.
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
  for (int64_t t = 0; t < ntask; ++t) {
    const int64_t bh = t / nqb, ib = nqb - 1 - t % nqb;
    forward_block(out, lse, q, k, v, key_mask, segments, bias, s, bh / s.NH, bh % s.NH, ib * kB);
  }
}

template <typename T>
void attention_backward(T* dq, T* dk, T* dv, T* dbias, const T* dout, const T* q, const T* k,
                        const T* v, const T* out, const T* lse, const uint8_t* key_mask,
                        const int32_t* segments, const T* bias, const AttentionShape& s) {
  check_shape(s, "attention_backward");
  LLMKIT_CHECK(segments == nullptr || s.Tq == s.Tk,
               "attention_backward: segments need Tq == Tk, got Tq=", s.Tq, " Tk=", s.Tk);
  if (s.B == 0 || s.Tq == 0 || s.Tk == 0) return;
  LLMKIT_CHECK(dq && dk && dv && dout && q && k && v && out && lse,
               "attention_backward: null tensor");
  // dbias is shared by the whole batch: then a task owns a kv head across all batches.
  const int64_t nb = dbias ? 1 : s.B, ntask = nb * s.NKV;
  const int nt = static_cast<int>(std::min<int64_t>(num_threads(), ntask));
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
  for (int64_t t = 0; t < ntask; ++t) {
    const int64_t kvh = t % s.NKV;
    for (int64_t b = (dbias ? 0 : t / s.NKV); b < (dbias ? s.B : t / s.NKV + 1); ++b)
      backward_group(dq, dk, dv, dbias, dout, q, k, v, out, lse, key_mask, segments, bias, s, b,
                     kvh);
  }
}

template void attention_forward<float>(float*, float*, const float*, const float*, const float*,
                                       const uint8_t*, const int32_t*, const float*,
                                       const AttentionShape&);
template void attention_forward<double>(double*, double*, const double*, const double*,
                                        const double*, const uint8_t*, const int32_t*,
                                        const double*, const AttentionShape&);
template void attention_backward<float>(float*, float*, float*, float*, const float*, const float*,
                                        const float*, const float*, const float*, const float*,
                                        const uint8_t*, const int32_t*, const float*,
                                        const AttentionShape&);
template void attention_backward<double>(double*, double*, double*, double*, const double*,
                                         const double*, const double*, const double*, const double*,
                                         const double*, const uint8_t*, const int32_t*,
                                         const double*, const AttentionShape&);

}  // namespace llmkit::kernels
