// Quantisation of f32 rows into ggml's block formats (quantize.h), written from the formats'
// definitions so that every byte equals what ggml's reference quantisers write without an
// importance matrix. Exactness rests on three things: each float operation is the one the
// reference does, in its order, rounded separately (contraction is off, as in quant.cpp: ggml's
// ggml-base is built for baseline x86-64, where no FMA exists to fuse into); fp16 conversion
// rounds to nearest even; and "nearest integer" means the two different things ggml uses
// (nearest_int below for the K-quants, roundf for Q8_0, truncation after +0.5 for Q4/Q5).
#include "llmkit/kernels/cpu/quantize.h"

#include <cmath>
#include <cstring>

#if defined(__F16C__)
#include <immintrin.h>
#endif

#include "llmkit/core/dtype.h"
#include "llmkit/core/error.h"

#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace llmkit::kernels {

namespace {

// ---- scalar helpers ---------------------------------------------------------------------------

// IEEE binary16 bits of f, rounded to nearest even (overflow -> inf), stored little-endian at p.
inline void put_fp16(uint8_t* p, float f) {
#if defined(__F16C__)
  const uint16_t h = _cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT);
#else
  const uint16_t h = float_to_f16(f).bits;
#endif
  std::memcpy(p, &h, 2);
}

inline float get_fp16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
#if defined(__F16C__)
  return _cvtsh_ss(h);
#else
  return f16_to_float(f16{h});
#endif
}

// The K-quants' rounding: adding 1.5 * 2^23 leaves round-to-nearest-even(v) in the low mantissa
// bits (the FPU does the rounding), valid for |v| < 2^22. Outside that range the result is
// garbage, but the same garbage ggml computes, which is what matters for identical files.
inline int nearest_int(float v) {
  const float shifted = v + 12582912.0f;
  int32_t bits;
  std::memcpy(&bits, &shifted, 4);
  return (bits & 0x007fffff) - 0x00400000;
}

inline int clamp_int(int v, int lo, int hi) {
  return v < lo ? lo : (v > hi ? hi : v);
}

// ---- 32-element blocks ------------------------------------------------------------------------

// The value of largest magnitude, sign kept (the first one on ties).
inline float signed_absmax(const float* x) {
  float amax = 0.0f, max = 0.0f;
  for (int j = 0; j < kQK; ++j)
    if (std::fabs(x[j]) > amax) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  return max;
}

inline void min_max(const float* x, float* lo, float* hi) {
  float mn = x[0], mx = x[0];
  for (int j = 1; j < kQK; ++j) {
    if (x[j] < mn) mn = x[j];
    if (x[j] > mx) mx = x[j];
  }
  *lo = mn;
  *hi = mx;
}

// Q8_0: d = amax / 127, q = round-half-away(x / d) computed as x * (1 / d).
void block_q8_0(const float* x, uint8_t* b) {
  float amax = 0.0f;
  for (int j = 0; j < kQK; ++j) amax = std::fmax(amax, std::fabs(x[j]));
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  put_fp16(b, d);
  for (int j = 0; j < kQK; ++j)
    b[2 + j] = static_cast<uint8_t>(static_cast<int8_t>(std::round(x[j] * id)));
}

// Q4_0 / Q5_0: the largest-magnitude value maps to the extreme level -2^(bits-1) exactly (so
// d = max / -8 or / -16 can be negative); q = trunc(x / d + offset + 0.5), capped at the top
// level. kBits 4 or 5; Q5_0's fifth bits go to qh (bit j for element j).
template <int kBits>
void block_q_0(const float* x, uint8_t* b) {
  constexpr int kOffset = 1 << (kBits - 1), kTop = (1 << kBits) - 1;
  const float max = signed_absmax(x);
  const float d = max / static_cast<float>(-kOffset);
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  put_fp16(b, d);
  uint8_t* qs = b + (kBits == 5 ? 6 : 2);
  uint32_t qh = 0;
  for (int j = 0; j < kQK / 2; ++j) {
    const int q0 = std::min<int>(kTop, static_cast<int8_t>(x[j] * id + (kOffset + 0.5f)));
    const int q1 = std::min<int>(kTop, static_cast<int8_t>(x[j + 16] * id + (kOffset + 0.5f)));
    qs[j] = static_cast<uint8_t>((q0 & 0xF) | (q1 & 0xF) << 4);
    qh |= static_cast<uint32_t>(q0 >> 4 & 1) << j | static_cast<uint32_t>(q1 >> 4 & 1) << (j + 16);
  }
  if (kBits == 5) std::memcpy(b + 2, &qh, 4);
}

// Q4_1 / Q5_1: d = (max - min) / (2^bits - 1), m = min; q = trunc((x - min) / d + 0.5). Q4_1
// caps q at 15; ggml's Q5_1 does not cap (the value cannot pass 31 + 0.5 for finite input).
template <int kBits>
void block_q_1(const float* x, uint8_t* b) {
  constexpr int kTop = (1 << kBits) - 1;
  float mn, mx;
  min_max(x, &mn, &mx);
  const float d = (mx - mn) / static_cast<float>(kTop);
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  put_fp16(b, d);
  put_fp16(b + 2, mn);
  uint8_t* qs = b + (kBits == 5 ? 8 : 4);
  uint32_t qh = 0;
  for (int j = 0; j < kQK / 2; ++j) {
    int q0 = static_cast<uint8_t>((x[j] - mn) * id + 0.5f);
    int q1 = static_cast<uint8_t>((x[j + 16] - mn) * id + 0.5f);
    if (kBits == 4) {
      q0 = std::min(q0, kTop);
      q1 = std::min(q1, kTop);
    }
    qs[j] = static_cast<uint8_t>((q0 & 0xF) | (q1 & 0xF) << 4);
    qh |= static_cast<uint32_t>(q0 >> 4 & 1) << j | static_cast<uint32_t>(q1 >> 4 & 1) << (j + 16);
  }
  if (kBits == 5) std::memcpy(b + 4, &qh, 4);
}

// ---- K-quants: Q4_K and Q5_K ------------------------------------------------------------------

// Asymmetric fit of one 32-element sub-block to levels 0..nmax (ggml's make_qkx2_quants, no
// importance matrix): x ~ scale * L - neg_min, with neg_min >= 0 (the minimum is never above 0).
// Weighted least squares with weights w: start from the plain min/max grid, then try nstep + 1
// grids iscale = (nmax + rmin + rdelta * is) / (max - min), refit scale and min in closed form for
// each one's levels, and keep the one with the smallest weighted squared error. Returns scale,
// writes the levels to L and -min to *neg_min.
float fit_scale_min(int nmax, const float* x, const float* w, uint8_t* L, float* neg_min,
                    float rmin, float rdelta, int nstep) {
  constexpr int n = 32;
  float mn = x[0], mx = x[0];
  float sum_w = w[0];
  float sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    if (x[i] < mn) mn = x[i];
    if (x[i] > mx) mx = x[i];
    sum_w += w[i];
    sum_x += w[i] * x[i];
  }
  if (mn > 0) mn = 0;
  if (mx == mn) {
    std::memset(L, 0, n);
    *neg_min = -mn;
    return 0.0f;
  }
  float iscale = static_cast<float>(nmax) / (mx - mn);
  float scale = 1 / iscale;
  float best_error = 0;
  for (int i = 0; i < n; ++i) {
    L[i] = static_cast<uint8_t>(clamp_int(nearest_int(iscale * (x[i] - mn)), 0, nmax));
    const float diff = scale * static_cast<float>(L[i]) + mn - x[i];
    best_error += w[i] * (diff * diff);
  }
  uint8_t Laux[n];
  for (int is = 0; is <= nstep; ++is) {
    iscale = (rmin + rdelta * static_cast<float>(is) + static_cast<float>(nmax)) / (mx - mn);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      const int l = clamp_int(nearest_int(iscale * (x[i] - mn)), 0, nmax);
      Laux[i] = static_cast<uint8_t>(l);
      const float wl = w[i] * static_cast<float>(l);
      sum_l += wl;
      sum_l2 += wl * static_cast<float>(l);
      sum_xl += wl * x[i];
    }
    const float D = sum_w * sum_l2 - sum_l * sum_l;
    if (D > 0) {
      float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
      float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
      if (this_min > 0) {
        this_min = 0;
        this_scale = sum_xl / sum_l2;
      }
      float cur_error = 0;
      for (int i = 0; i < n; ++i) {
        const float diff = this_scale * static_cast<float>(Laux[i]) + this_min - x[i];
        cur_error += w[i] * (diff * diff);
      }
      if (cur_error < best_error) {
        std::memcpy(L, Laux, n);
        best_error = cur_error;
        scale = this_scale;
        mn = this_min;
      }
    }
  }
  *neg_min = -mn;
  return scale;
}

// Q4_K (kBits 4) / Q5_K (kBits 5) super-block of 256: fit each sub-block of 32 with weights
// rms(sub-block) + |x|, quantise the 8 scales and 8 mins to 6 bits against their maxima (d and
// dmin = max / 63 in fp16), then requantise every element against the scale and min as stored.
template <int kBits>
void block_q45_k(const float* x, uint8_t* b) {
  constexpr int nmax = (1 << kBits) - 1;
  const float rmin = kBits == 4 ? -1.0f : -0.5f;
  const int nstep = kBits == 4 ? 20 : 15;
  uint8_t L[kQKK];
  float scales[8], mins[8], w[32];
  float max_scale = 0, max_min = 0;
  for (int j = 0; j < 8; ++j) {
    const float* xs = x + 32 * j;
    float sum_x2 = 0;
    for (int l = 0; l < 32; ++l) sum_x2 += xs[l] * xs[l];
    const float av_x = std::sqrt(sum_x2 / 32.0f);
    for (int l = 0; l < 32; ++l) w[l] = av_x + std::fabs(xs[l]);
    scales[j] = fit_scale_min(nmax, xs, w, L + 32 * j, &mins[j], rmin, 0.1f, nstep);
    if (scales[j] > max_scale) max_scale = scales[j];
    if (mins[j] > max_min) max_min = mins[j];
  }
  const float inv_scale = max_scale > 0 ? 63.0f / max_scale : 0.0f;
  const float inv_min = max_min > 0 ? 63.0f / max_min : 0.0f;
  uint8_t* packed = b + 4;  // 12 bytes, layout in quant.h
  std::memset(packed, 0, 12);
  uint8_t sc[8], m[8];
  for (int j = 0; j < 8; ++j) {
    // ggml stores nearest_int's result in a uint8_t before capping at 63.
    sc[j] = std::min<uint8_t>(63, static_cast<uint8_t>(nearest_int(inv_scale * scales[j])));
    m[j] = std::min<uint8_t>(63, static_cast<uint8_t>(nearest_int(inv_min * mins[j])));
    if (j < 4) {
      packed[j] = sc[j];
      packed[j + 4] = m[j];
    } else {
      packed[j + 4] = static_cast<uint8_t>((sc[j] & 0xF) | (m[j] & 0xF) << 4);
      packed[j - 4] |= static_cast<uint8_t>((sc[j] >> 4) << 6);
      packed[j] |= static_cast<uint8_t>((m[j] >> 4) << 6);
    }
  }
  put_fp16(b, max_scale / 63.0f);
  put_fp16(b + 2, max_min / 63.0f);
  const float d_all = get_fp16(b), dmin_all = get_fp16(b + 2);
  for (int j = 0; j < 8; ++j) {
    const float d = d_all * static_cast<float>(sc[j]);
    if (d == 0.0f) continue;  // keep the fit's levels (they decode to -dm either way)
    const float dm = dmin_all * static_cast<float>(m[j]);
    for (int l = 0; l < 32; ++l)
      L[32 * j + l] =
          static_cast<uint8_t>(clamp_int(nearest_int((x[32 * j + l] + dm) / d), 0, nmax));
  }
  // Pack: sub-blocks 2g and 2g + 1 share 32 bytes of nibbles (low, high); Q5_K's fifth bit of
  // element l of sub-block s is bit s of qh[l].
  uint8_t* qh = b + 16;
  uint8_t* qs = b + (kBits == 5 ? 48 : 16);
  if (kBits == 5) std::memset(qh, 0, 32);
  for (int g = 0; g < 4; ++g) {
    for (int l = 0; l < 32; ++l) {
      const int lo = L[64 * g + l], hi = L[64 * g + 32 + l];
      qs[32 * g + l] = static_cast<uint8_t>((lo & 0xF) | (hi & 0xF) << 4);
      if (kBits == 5)
        qh[l] |= static_cast<uint8_t>((lo >> 4) << (2 * g) | (hi >> 4) << (2 * g + 1));
    }
  }
}

// ---- K-quants: Q6_K ---------------------------------------------------------------------------

constexpr float kGroupMaxEps = 1e-15f;  // ggml's GROUP_MAX_EPS: below it a group is all zeros

// Symmetric fit of one 16-element sub-block to levels -32..31 (ggml's make_qx_quants with
// nmax 32 and weights x^2): the largest-magnitude value starts at level -32; 18 nearby grids
// -(32 + 0.1 is) / max are tried and the one maximising (sum w x l)^2 / sum w l^2 (the weighted
// least-squares fit's gain) kept. Returns the scale; L gets level + 32 (0..63).
float fit_scale_q6(const float* x, int8_t* L) {
  constexpr int n = 16, nmax = 32;
  float amax = 0, max = 0;
  for (int i = 0; i < n; ++i)
    if (std::fabs(x[i]) > amax) {
      amax = std::fabs(x[i]);
      max = x[i];
    }
  if (amax < kGroupMaxEps) {
    std::memset(L, 0, n);
    return 0.0f;
  }
  float iscale = static_cast<float>(-nmax) / max;
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = clamp_int(nearest_int(iscale * x[i]), -nmax, nmax - 1);
    L[i] = static_cast<int8_t>(l + nmax);
    const float w = x[i] * x[i];
    sumlx += w * x[i] * static_cast<float>(l);
    suml2 += w * static_cast<float>(l) * static_cast<float>(l);
  }
  float scale = suml2 != 0 ? sumlx / suml2 : 0.0f;
  float best = scale * sumlx;
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    iscale = -(static_cast<float>(nmax) + 0.1f * static_cast<float>(is)) / max;
    sumlx = suml2 = 0;
    for (int i = 0; i < n; ++i) {
      const int l = clamp_int(nearest_int(iscale * x[i]), -nmax, nmax - 1);
      const float w = x[i] * x[i];
      sumlx += w * x[i] * static_cast<float>(l);
      suml2 += w * static_cast<float>(l) * static_cast<float>(l);
    }
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      for (int i = 0; i < n; ++i)
        L[i] = static_cast<int8_t>(nmax + clamp_int(nearest_int(iscale * x[i]), -nmax, nmax - 1));
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

// Q6_K super-block of 256: fit the 16 sub-blocks, quantise their scales to int8 against the one
// of largest magnitude (which maps to -128; d = 1 / iscale in fp16), requantise the elements
// against the stored scales, pack (layout in quant.h).
void block_q6_k(const float* x, uint8_t* b) {
  int8_t L[kQKK];
  float scales[16];
  float max_scale = 0, max_abs_scale = 0;
  for (int ib = 0; ib < 16; ++ib) {
    scales[ib] = fit_scale_q6(x + 16 * ib, L + 16 * ib);
    if (std::fabs(scales[ib]) > max_abs_scale) {
      max_abs_scale = std::fabs(scales[ib]);
      max_scale = scales[ib];
    }
  }
  if (max_abs_scale < kGroupMaxEps) {
    std::memset(b, 0, sizeof(BlockQ6_K));
    put_fp16(b + 208, 0.0f);
    return;
  }
  uint8_t* ql = b;
  uint8_t* qh = b + 128;
  int8_t* sc = reinterpret_cast<int8_t*>(b + 192);
  const float iscale = -128.0f / max_scale;
  put_fp16(b + 208, 1 / iscale);
  for (int ib = 0; ib < 16; ++ib)
    sc[ib] = static_cast<int8_t>(std::min(127, nearest_int(iscale * scales[ib])));
  const float d_all = get_fp16(b + 208);
  for (int j = 0; j < 16; ++j) {
    const float d = d_all * static_cast<float>(sc[j]);
    if (d == 0.0f) continue;
    for (int i = 0; i < 16; ++i)
      L[16 * j + i] = static_cast<int8_t>(clamp_int(nearest_int(x[16 * j + i] / d), -32, 31) + 32);
  }
  for (int h = 0; h < 2; ++h, ql += 64, qh += 32) {
    const int8_t* Lh = L + 128 * h;
    for (int l = 0; l < 32; ++l) {
      const int q0 = Lh[l], q1 = Lh[l + 32], q2 = Lh[l + 64], q3 = Lh[l + 96];
      ql[l] = static_cast<uint8_t>((q0 & 0xF) | (q2 & 0xF) << 4);
      ql[l + 32] = static_cast<uint8_t>((q1 & 0xF) | (q3 & 0xF) << 4);
      qh[l] = static_cast<uint8_t>((q0 >> 4) | (q1 >> 4) << 2 | (q2 >> 4) << 4 | (q3 >> 4) << 6);
    }
  }
}

// ---- rows -------------------------------------------------------------------------------------

using BlockFn = void (*)(const float*, uint8_t*);

void blocks(BlockFn f, const float* src, uint8_t* dst, int64_t n, int64_t block, size_t bytes) {
  for (int64_t i = 0; i < n / block; ++i) f(src + i * block, dst + static_cast<size_t>(i) * bytes);
}

}  // namespace

bool ggml_can_quantize(GgmlType t) {
  switch (t) {
    case GgmlType::F32:
    case GgmlType::F16:
    case GgmlType::BF16:
    case GgmlType::Q4_0:
    case GgmlType::Q4_1:
    case GgmlType::Q5_0:
    case GgmlType::Q5_1:
    case GgmlType::Q8_0:
    case GgmlType::Q4_K:
    case GgmlType::Q5_K:
    case GgmlType::Q6_K:
      return true;
    default:
      return false;
  }
}

void quantize_row(GgmlType t, const float* src, void* dst_, int64_t n) {
  if (!ggml_can_quantize(t))
    fail("quantize: cannot write ggml type ", ggml_type_name(t), " (", static_cast<uint32_t>(t),
         ")");
  const int64_t block = ggml_block_size(t);
  if (n < 0 || n % block != 0)
    fail("quantize: a row of ", n, " elements is not a whole number of ", block,
         "-element blocks of ggml type ", ggml_type_name(t));
  for (int64_t i = 0; i < n; ++i)
    if (!std::isfinite(src[i]))
      fail("quantize: ", ggml_type_name(t), " row has a non-finite value (", src[i],
           ") at element ", i);
  auto* dst = static_cast<uint8_t*>(dst_);
  const size_t bytes = ggml_type_size(t);
  switch (t) {
    case GgmlType::F32:
      if (n > 0) std::memcpy(dst, src, static_cast<size_t>(n) * 4);
      return;
    case GgmlType::F16:
      for (int64_t i = 0; i < n; ++i) put_fp16(dst + 2 * i, src[i]);
      return;
    case GgmlType::BF16:
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = float_to_bf16(src[i]).bits;
        std::memcpy(dst + 2 * i, &h, 2);
      }
      return;
    case GgmlType::Q8_0:
      return blocks(block_q8_0, src, dst, n, block, bytes);
    case GgmlType::Q4_0:
      return blocks(block_q_0<4>, src, dst, n, block, bytes);
    case GgmlType::Q5_0:
      return blocks(block_q_0<5>, src, dst, n, block, bytes);
    case GgmlType::Q4_1:
      return blocks(block_q_1<4>, src, dst, n, block, bytes);
    case GgmlType::Q5_1:
      return blocks(block_q_1<5>, src, dst, n, block, bytes);
    case GgmlType::Q4_K:
      return blocks(block_q45_k<4>, src, dst, n, block, bytes);
    case GgmlType::Q5_K:
      return blocks(block_q45_k<5>, src, dst, n, block, bytes);
    case GgmlType::Q6_K:
      return blocks(block_q6_k, src, dst, n, block, bytes);
    default:
      fail("quantize: internal: no kernel for ", ggml_type_name(t));
  }
}

}  // namespace llmkit::kernels
