// Quantised matrix products (qmatmul.h): the activations' quantisation, the per-type dot
// products and the threaded driver. This file holds the portable code; the AVX-512 kernels
// (qmatmul_avx512.cpp) or the AVX2 ones (qmatmul_avx2.cpp) are picked here when compiled in.
//
// Every dot product is written from the block layouts in quant.h the way ggml defines the
// result: the integer sum of weight and activation quants of a block, times the product of the
// two block scales (plus the weight minimum times the activations' s for Q4_1 / Q5_1, minus
// dmin * sum(m * bsums) for the K-quants).
#include "llmkit/kernels/cpu/qmatmul.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "llmkit/core/dtype.h"
#include "llmkit/core/error.h"
#include "llmkit/core/parallel.h"
#include "llmkit/kernels/cpu/gemm.h"
#include "llmkit/kernels/cpu/qmatmul_kernels.h"
#include "llmkit/kernels/cpu/quantize.h"

#if defined(__F16C__)
#include <immintrin.h>
#endif

namespace llmkit::kernels {

namespace {

inline uint16_t load_u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

// ---- activations --------------------------------------------------------------------------
// Q8_0 / Q8_1 as ggml's x86 quantize_row_q8_0 / q8_1 compute them: d = amax / 127 stored as
// fp16, q = x * (127 / amax) rounded to nearest, ties to even (the SIMD rounding mode; ggml's
// portable reference rounds ties away from zero, which differs only on exact .5 ties).
void quantize_q8_0_1(const float* x, uint8_t* dst, int64_t n, bool with_sum) {
  const size_t bytes = with_sum ? sizeof(BlockQ8_1) : sizeof(BlockQ8_0);
  for (int64_t i = 0; i < n / kQK; ++i, x += kQK, dst += bytes) {
    float amax = 0.0f;
    for (int j = 0; j < kQK; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.0f;
    const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
    const uint16_t dh = f32_to_fp16(d);
    std::memcpy(dst, &dh, 2);
    int8_t* qs = reinterpret_cast<int8_t*>(dst + (with_sum ? 4 : 2));
    int sum = 0;
    for (int j = 0; j < kQK; ++j) {
      qs[j] = static_cast<int8_t>(std::nearbyint(x[j] * id));
      sum += qs[j];
    }
    if (with_sum) {
      const uint16_t sh = f32_to_fp16(d * static_cast<float>(sum));
      std::memcpy(dst + 2, &sh, 2);
    }
  }
}

// ggml's round-to-nearest-even trick (nearest_int), valid for |v| < 2^22.
inline int nearest_int(float v) {
  const float t = v + 12582912.0f;
  int32_t i;
  std::memcpy(&i, &t, 4);
  return (i & 0x007fffff) - 0x00400000;
}

// Q8_K as quantize_row_q8_K_ref: the scale comes from the element of largest magnitude `max`
// (with its sign): iscale = -127 / max, q = min(127, round(iscale * x)), d = 1 / iscale. So the
// quants are the negated values and d is negative when max is positive; a q of -128 cannot occur
// (|iscale * x| <= 127), 127 is clamped for the rounding of values just above |max|.
void quantize_q8_k(const float* x, BlockQ8_K* y, int64_t n) {
  for (int64_t i = 0; i < n / kQKK; ++i, x += kQKK, ++y) {
    float max = 0.0f, amax = 0.0f;
    for (int j = 0; j < kQKK; ++j) {
      const float ax = std::fabs(x[j]);
      if (ax > amax) {
        amax = ax;
        max = x[j];
      }
    }
    if (amax == 0.0f) {
      std::memset(y, 0, sizeof(BlockQ8_K));
      continue;
    }
    const float iscale = -127.0f / max;
    for (int j = 0; j < kQKK; ++j)
      y->qs[j] = static_cast<int8_t>(std::min(127, nearest_int(iscale * x[j])));
    for (int j = 0; j < kQKK / 16; ++j) {
      int sum = 0;
      for (int l = 0; l < 16; ++l) sum += y->qs[16 * j + l];
      y->bsums[j] = static_cast<int16_t>(sum);
    }
    y->d = 1.0f / iscale;
  }
}

// ---- portable dot products: one weight row (n elements) with its quantised activations ----

float dot_q4_0(int64_t n, const uint8_t* w, const uint8_t* x) {
  float sum = 0.0f;
  for (int64_t b = 0; b < n / kQK; ++b, w += sizeof(BlockQ4_0), x += sizeof(BlockQ8_0)) {
    const uint8_t* qs = w + 2;
    const int8_t* qx = reinterpret_cast<const int8_t*>(x + 2);
    int s = 0;
    for (int j = 0; j < 16; ++j) s += ((qs[j] & 0xF) - 8) * qx[j] + ((qs[j] >> 4) - 8) * qx[j + 16];
    sum += static_cast<float>(s) * (load_fp16(w) * load_fp16(x));
  }
  return sum;
}

float dot_q4_1(int64_t n, const uint8_t* w, const uint8_t* x) {
  float sum = 0.0f;
  for (int64_t b = 0; b < n / kQK; ++b, w += sizeof(BlockQ4_1), x += sizeof(BlockQ8_1)) {
    const uint8_t* qs = w + 4;
    const int8_t* qx = reinterpret_cast<const int8_t*>(x + 4);
    int s = 0;
    for (int j = 0; j < 16; ++j) s += (qs[j] & 0xF) * qx[j] + (qs[j] >> 4) * qx[j + 16];
    const float dd = load_fp16(w) * load_fp16(x);
    const float ms = load_fp16(w + 2) * load_fp16(x + 2);
    sum += static_cast<float>(s) * dd + ms;
  }
  return sum;
}

// Q5_0 (bias 16, Q8_0 activations) and Q5_1 (minimum, Q8_1 activations).
float dot_q5(int64_t n, const uint8_t* w, const uint8_t* x, bool with_min) {
  const size_t wb = with_min ? sizeof(BlockQ5_1) : sizeof(BlockQ5_0);
  const size_t xb = with_min ? sizeof(BlockQ8_1) : sizeof(BlockQ8_0);
  const int bias = with_min ? 0 : 16;
  float sum = 0.0f;
  for (int64_t b = 0; b < n / kQK; ++b, w += wb, x += xb) {
    const uint8_t* p = w + (with_min ? 4 : 2);
    uint32_t qh;
    std::memcpy(&qh, p, 4);
    const uint8_t* qs = p + 4;
    const int8_t* qx = reinterpret_cast<const int8_t*>(x + (with_min ? 4 : 2));
    int s = 0;
    for (int j = 0; j < 16; ++j) {
      const int h0 = static_cast<int>((qh >> j) & 1) << 4,
                h1 = static_cast<int>((qh >> (j + 16)) & 1) << 4;
      s += (((qs[j] & 0xF) | h0) - bias) * qx[j] + (((qs[j] >> 4) | h1) - bias) * qx[j + 16];
    }
    const float dd = load_fp16(w) * load_fp16(x);
    if (with_min)
      sum += static_cast<float>(s) * dd + load_fp16(w + 2) * load_fp16(x + 2);
    else
      sum += static_cast<float>(s) * dd;
  }
  return sum;
}

float dot_q8_0(int64_t n, const uint8_t* w, const uint8_t* x) {
  float sum = 0.0f;
  for (int64_t b = 0; b < n / kQK; ++b, w += sizeof(BlockQ8_0), x += sizeof(BlockQ8_0)) {
    const int8_t* qw = reinterpret_cast<const int8_t*>(w + 2);
    const int8_t* qx = reinterpret_cast<const int8_t*>(x + 2);
    int s = 0;
    for (int j = 0; j < kQK; ++j) s += qw[j] * qx[j];
    sum += static_cast<float>(s) * (load_fp16(w) * load_fp16(x));
  }
  return sum;
}

// Q4_K / Q5_K: the 256 unsigned quants of a super-block and its 8 scales and minimums.
void unpack_q45_k(const uint8_t* b, bool five, uint8_t* q, int* sc, int* m) {
  const uint8_t* scales = b + 4;
  for (int j = 0; j < 8; ++j) {
    if (j < 4) {
      sc[j] = scales[j] & 63;
      m[j] = scales[j + 4] & 63;
    } else {
      sc[j] = (scales[j + 4] & 0xF) | ((scales[j - 4] >> 6) << 4);
      m[j] = (scales[j + 4] >> 4) | ((scales[j] >> 6) << 4);
    }
  }
  const uint8_t* qh = b + 16;
  const uint8_t* ql = b + (five ? 48 : 16);
  for (int g = 0; g < 4; ++g, ql += 32, q += 64) {
    for (int l = 0; l < 32; ++l) {
      q[l] = ql[l] & 0xF;
      q[l + 32] = ql[l] >> 4;
      if (five) {
        q[l] |= ((qh[l] >> (2 * g)) & 1) << 4;
        q[l + 32] |= ((qh[l] >> (2 * g + 1)) & 1) << 4;
      }
    }
  }
}

float dot_q45_k(int64_t n, const uint8_t* w, const BlockQ8_K* x, bool five) {
  const size_t wb = five ? sizeof(BlockQ5_K) : sizeof(BlockQ4_K);
  float sum = 0.0f;
  uint8_t q[kQKK];
  int sc[8], m[8];
  for (int64_t b = 0; b < n / kQKK; ++b, w += wb, ++x) {
    unpack_q45_k(w, five, q, sc, m);
    int sumi = 0, summ = 0;
    for (int j = 0; j < 8; ++j) {
      int s = 0;
      for (int l = 0; l < 32; ++l) s += q[32 * j + l] * x->qs[32 * j + l];
      sumi += sc[j] * s;
      summ += m[j] * (x->bsums[2 * j] + x->bsums[2 * j + 1]);
    }
    const float d = load_fp16(w) * x->d, dmin = load_fp16(w + 2) * x->d;
    sum += d * static_cast<float>(sumi) - dmin * static_cast<float>(summ);
  }
  return sum;
}

float dot_q6_k(int64_t n, const uint8_t* w, const BlockQ8_K* x) {
  float sum = 0.0f;
  int8_t q[kQKK];
  for (int64_t b = 0; b < n / kQKK; ++b, w += sizeof(BlockQ6_K), ++x) {
    const uint8_t* ql = w;
    const uint8_t* qh = w + 128;
    const int8_t* sc = reinterpret_cast<const int8_t*>(w + 192);
    for (int h = 0; h < 2; ++h) {
      for (int l = 0; l < 32; ++l) {
        const uint8_t a = ql[64 * h + l], c = ql[64 * h + l + 32], hb = qh[32 * h + l];
        int8_t* o = q + 128 * h;
        o[l] = static_cast<int8_t>(((a & 0xF) | ((hb & 3) << 4)) - 32);
        o[l + 32] = static_cast<int8_t>(((c & 0xF) | (((hb >> 2) & 3) << 4)) - 32);
        o[l + 64] = static_cast<int8_t>(((a >> 4) | (((hb >> 4) & 3) << 4)) - 32);
        o[l + 96] = static_cast<int8_t>(((c >> 4) | (((hb >> 6) & 3) << 4)) - 32);
      }
    }
    int sumi = 0;
    for (int i = 0; i < 16; ++i) {
      int s = 0;
      for (int l = 0; l < 16; ++l) s += q[16 * i + l] * x->qs[16 * i + l];
      sumi += sc[i] * s;
    }
    sum += load_fp16(w + 208) * x->d * static_cast<float>(sumi);
  }
  return sum;
}

float dot_f16(int64_t n, const uint8_t* w, const uint8_t* x) {
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) sum += load_fp16(w + 2 * i) * load_fp16(x + 2 * i);
  return sum;
}

float bf16_bits_to_f32(uint16_t h) {
  const uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

float dot_bf16(int64_t n, const uint8_t* w, const uint8_t* x) {
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i)
    sum += bf16_bits_to_f32(load_u16(w + 2 * i)) * bf16_bits_to_f32(load_u16(x + 2 * i));
  return sum;
}

// Rows may sit at any byte offset (vec_dot's contract), so the floats are loaded by memcpy.
float dot_f32(int64_t n, const uint8_t* w, const uint8_t* x) {
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) {
    float a, b;
    std::memcpy(&a, w + 4 * i, 4);
    std::memcpy(&b, x + 4 * i, 4);
    sum += a * b;
  }
  return sum;
}

void check_type(GgmlType t, const char* what) {
  LLMKIT_CHECK(qmatmul_supports(t), what, ": weight type ", ggml_type_name(t), " (",
               static_cast<uint32_t>(t),
               ") is not supported (F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, "
               "Q6_K are)");
}

void check_args(const QMatrix& W, int64_t M, const float* X, int64_t ldx, const float* Y,
                int64_t ldy, const char* what) {
  check_type(W.type, what);
  LLMKIT_CHECK(W.rows >= 0 && W.cols >= 0, what, ": weight shape [", W.rows, ", ", W.cols,
               "] is negative");
  LLMKIT_CHECK(W.cols % ggml_block_size(W.type) == 0, what, ": ", W.cols,
               " columns are not a multiple of ", ggml_type_name(W.type), "'s block of ",
               ggml_block_size(W.type));
  LLMKIT_CHECK(M >= 0, what, ": M = ", M, " is negative");
  LLMKIT_CHECK(M <= 1 || ldx >= W.cols, what, ": ldx = ", ldx, " is less than the ", W.cols,
               " columns");
  LLMKIT_CHECK(M <= 1 || ldy >= W.rows, what, ": ldy = ", ldy, " is less than the ", W.rows,
               " rows");
  LLMKIT_CHECK(
      M == 0 || W.rows == 0 || (X != nullptr && Y != nullptr && (W.cols == 0 || W.data != nullptr)),
      what, ": null pointer");
}

// Prefill (M >= kBlasMinTokens) goes through OpenBLAS's sgemm on weights dequantised to f32 into
// a per-thread buffer, up to kBlasChunk floats (4 MiB) of rows at a time: sgemm packs the whole
// activation matrix again for every call, so the chunks are as large as the cache allows (a
// 128-row chunk cost 60% more than one call at 1536 x 576). Measured on one core at 1536 x 576
// (bench/qmatmul.cpp BM_tokens, CPU time): the int8 VNNI tiles cost ~18 us a token whatever M;
// sgemm ~12-14.5 us a token plus the dequantisation, so they tie near M = 64 and sgemm wins
// above. The result is the f32 product (no activation quantisation), closer to
// qmatmul_reference than ggml's. Chunk boundaries depend only on the shape; within a chunk
// OpenBLAS's own threads may partition the product by thread count (its kernels for the edges of
// a partition sum in another order on some CPUs), so the bits are fixed for a thread count.
constexpr int64_t kBlasMinTokens = 64;
constexpr int64_t kBlasChunk = int64_t{1} << 20;

void qmatmul_blas(const QMatrix& W, int64_t M, const float* X, int64_t ldx, float* Y, int64_t ldy) {
  const int64_t chunk = std::max<int64_t>(16, kBlasChunk / W.cols);
  const int64_t nchunks = (W.rows + chunk - 1) / chunk;
  const bool nested = omp_in_parallel() != 0;
  const bool one_task = nested || num_threads() <= 1 || nchunks == 1;
  // Chunks [c0, c1); `inner`: this thread owns the machine, so the dequantisation is split
  // over the threads and sgemm uses BLAS's own threads.
  auto work = [&](int64_t c0, int64_t c1, bool inner) {
    thread_local std::vector<float> wf;  // grown, never shrunk
    for (int64_t c = c0; c < c1; ++c) {
      const int64_t r0 = c * chunk, n = std::min(chunk, W.rows - r0);
      const float* w = static_cast<const float*>(W.row(r0));
      if (W.type != GgmlType::F32) {
        const size_t need = static_cast<size_t>(n * W.cols);
        if (wf.size() < need) wf.resize(need);
        float* out = wf.data();
        auto rows = [&](int64_t a, int64_t b) {
          for (int64_t r = a; r < b; ++r)
            dequantize_row(W.type, W.row(r0 + r), out + r * W.cols, W.cols);
        };
        if (inner) {
          parallel_for(n, 64, rows);
        } else {
          rows(0, n);
        }
        w = out;
      }
      gemm(false, true, M, n, W.cols, 1.0f, X, ldx, w, W.cols, 0.0f, Y + r0, ldy);
    }
  };
  if (one_task) {
    work(0, nchunks, !nested);
  } else {  // one chunk per task; gemm inside the parallel region runs in its calling thread
    parallel_for(nchunks, 1, [&](int64_t c0, int64_t c1) { work(c0, c1, false); });
  }
}

}  // namespace

bool qmatmul_supports(GgmlType t) {
  return ggml_can_quantize(t);  // the types quantize_row writes are the ones multiplied here
}

GgmlType vec_dot_type(GgmlType t) {
  check_type(t, "vec_dot_type");
  switch (t) {
    case GgmlType::Q4_0:
    case GgmlType::Q5_0:
    case GgmlType::Q8_0:
      return GgmlType::Q8_0;
    case GgmlType::Q4_1:
    case GgmlType::Q5_1:
      return GgmlType::Q8_1;
    case GgmlType::Q4_K:
    case GgmlType::Q5_K:
    case GgmlType::Q6_K:
      return GgmlType::Q8_K;
    default:
      return t;  // F32, F16, BF16
  }
}

void quantize_activations_generic(GgmlType w, const float* x, void* dst, int64_t n) {
  const GgmlType t = vec_dot_type(w);
  LLMKIT_CHECK(n >= 0 && n % ggml_block_size(t) == 0, "quantize_activations: ", n,
               " elements are not a multiple of ", ggml_type_name(t), "'s block of ",
               ggml_block_size(t));
  uint8_t* out = static_cast<uint8_t*>(dst);
  switch (t) {
    case GgmlType::Q8_0:
      return quantize_q8_0_1(x, out, n, false);
    case GgmlType::Q8_1:
      return quantize_q8_0_1(x, out, n, true);
    case GgmlType::Q8_K:
      return quantize_q8_k(x, reinterpret_cast<BlockQ8_K*>(out), n);
    case GgmlType::F16:
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = f32_to_fp16(x[i]);
        std::memcpy(out + 2 * i, &h, 2);
      }
      return;
    case GgmlType::BF16:
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = float_to_bf16(x[i]).bits;
        std::memcpy(out + 2 * i, &h, 2);
      }
      return;
    default:
      std::memcpy(out, x, static_cast<size_t>(n) * sizeof(float));
  }
}

void quantize_activations(GgmlType w, const float* x, void* dst, int64_t n) {
  if (detail::quantize_activations_simd(w, x, dst, n)) return;
  quantize_activations_generic(w, x, dst, n);
}

float vec_dot_generic(GgmlType t, int64_t n, const void* w, const void* xq) {
  check_type(t, "vec_dot");
  LLMKIT_CHECK(n >= 0 && n % ggml_block_size(t) == 0, "vec_dot: ", n,
               " elements are not a multiple of ", ggml_type_name(t), "'s block of ",
               ggml_block_size(t));
  const uint8_t* a = static_cast<const uint8_t*>(w);
  const uint8_t* b = static_cast<const uint8_t*>(xq);
  switch (t) {
    case GgmlType::Q4_0:
      return dot_q4_0(n, a, b);
    case GgmlType::Q4_1:
      return dot_q4_1(n, a, b);
    case GgmlType::Q5_0:
      return dot_q5(n, a, b, false);
    case GgmlType::Q5_1:
      return dot_q5(n, a, b, true);
    case GgmlType::Q8_0:
      return dot_q8_0(n, a, b);
    case GgmlType::Q4_K:
      return dot_q45_k(n, a, reinterpret_cast<const BlockQ8_K*>(b), false);
    case GgmlType::Q5_K:
      return dot_q45_k(n, a, reinterpret_cast<const BlockQ8_K*>(b), true);
    case GgmlType::Q6_K:
      return dot_q6_k(n, a, reinterpret_cast<const BlockQ8_K*>(b));
    case GgmlType::F16:
      return dot_f16(n, a, b);
    case GgmlType::BF16:
      return dot_bf16(n, a, b);
    default:
      return dot_f32(n, a, b);
  }
}

float vec_dot(GgmlType t, int64_t n, const void* w, const void* xq) {
  float r;
  if (detail::vec_dot_simd(t, n, w, xq, &r)) return r;
  return vec_dot_generic(t, n, w, xq);
}

bool qmatmul_is_vectorised() {
  return detail::qmatmul_simd_compiled();
}

void qmatmul(const QMatrix& W, int64_t M, const float* X, int64_t ldx, float* Y, int64_t ldy,
             QPath path) {
  check_args(W, M, X, ldx, Y, ldy, "qmatmul");
  if (M == 0 || W.rows == 0) return;
  if (path == QPath::kAuto && M >= kBlasMinTokens && W.cols > 0)
    return qmatmul_blas(W, M, X, ldx, Y, ldy);
  if (detail::qmatmul_simd(W, M, X, ldx, Y, ldy)) return;
  const GgmlType at = vec_dot_type(W.type);
  const size_t xrow = ggml_row_size(at, W.cols);
  // The quantised activations, [M, xrow] bytes: kept by the calling thread and grown, never
  // shrunk, so steady-state calls allocate nothing (fresh pages cost ~7 us / 4 KiB here).
  thread_local std::vector<uint8_t> scratch;
  const size_t need = xrow * static_cast<size_t>(M) + 64;
  if (scratch.size() < need) scratch.resize(need);
  uint8_t* xq = scratch.data();
  for (int64_t m = 0; m < M; ++m) quantize_activations(W.type, X + m * ldx, xq + m * xrow, W.cols);
  detail::QGemmArgs a{W, M, xq, xrow, Y, ldy};
  // Inside an OpenMP parallel region the caller's team already owns the cores: run here.
  const bool nested = omp_in_parallel() != 0;
  // Rows per chunk: at least ~64 KiB of weights per thread, so small products stay on one core.
  const int64_t grain = std::max<int64_t>(
      16, (64 << 10) / std::max<size_t>(1, W.row_bytes()) / std::max<int64_t>(1, M));
  if (nested) {
    detail::qgemm_rows_generic(a, 0, W.rows);
  } else {
    parallel_for(W.rows, grain,
                 [&](int64_t r0, int64_t r1) { detail::qgemm_rows_generic(a, r0, r1); });
  }
}

namespace detail {

// Portable driver: one vec_dot per output.
void qgemm_rows_generic(const QGemmArgs& a, int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; ++r)
    for (int64_t m = 0; m < a.M; ++m)
      a.Y[m * a.ldy + r] = vec_dot(a.W.type, a.W.cols, a.W.row(r), a.xq + m * a.xrow);
}

#if !defined(LLMKIT_QMATMUL_AVX512) && !defined(LLMKIT_QMATMUL_AVX2)
// No vectorised kernels for this target: decline everything.
bool qmatmul_simd_compiled() {
  return false;
}
bool qmatmul_simd(const QMatrix&, int64_t, const float*, int64_t, float*, int64_t) {
  return false;
}
bool vec_dot_simd(GgmlType, int64_t, const void*, const void*, float*) {
  return false;
}
bool quantize_activations_simd(GgmlType, const float*, void*, int64_t) {
  return false;
}
#endif

}  // namespace detail

void qmatmul_reference(const QMatrix& W, int64_t M, const float* X, int64_t ldx, float* Y,
                       int64_t ldy) {
  check_args(W, M, X, ldx, Y, ldy, "qmatmul_reference");
  std::vector<float> w(static_cast<size_t>(W.cols));
  for (int64_t r = 0; r < W.rows; ++r) {
    dequantize_row(W.type, W.row(r), w.data(), W.cols);
    for (int64_t m = 0; m < M; ++m) {
      double s = 0.0;
      for (int64_t k = 0; k < W.cols; ++k) s += static_cast<double>(w[k]) * X[m * ldx + k];
      Y[m * ldy + r] = static_cast<float>(s);
    }
  }
}

}  // namespace llmkit::kernels
