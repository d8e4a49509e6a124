// Quantisation of f32 rows into ggml's block formats (quantize.h), written from the formats'
// definitions so that every byte equals what ggml's reference quantisers write without an
// importance matrix. Exactness rests on three things: each float operation is the one the
// reference does, in its order, rounded separately (contraction is off, as in quant.cpp: ggml's
// ggml-base is built for baseline x86-64, where no FMA exists to fuse into); fp16 conversion
// rounds to nearest even; and "nearest integer" means the three different things ggml uses
// (nearest_int below for the K-quants, roundf for Q8_0, truncation after +0.5 for Q4/Q5). An
// FMA build of ggml would round some Q4_0/Q5_0 ties differently (gguf-py's numpy code emulates
// one); llama.cpp's own libggml-base is not one, and is what the tests compare with.
#include "llmkit/kernels/cpu/quantize.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
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

// The K-quants' rounding: adding 1.5 * 2^23 leaves round-to-nearest-even(v) in the low mantissa
// bits (the FPU does the rounding), valid for |v| < 2^22. Outside that range the result is
// garbage, but the same garbage ggml computes, which is what matters for identical files.
inline int nearest_int(float v) {
  const float shifted = v + 12582912.0f;
  int32_t bits;
  std::memcpy(&bits, &shifted, 4);
  return (bits & 0x007fffff) - 0x00400000;
}

// float -> int32 as x86's cvttss2si (and so ggml's casts, built for x86) computes it: truncation,
// and INT32_MIN for NaN and values out of range, where C++ leaves the cast undefined. Such values
// reach the casts below only for blocks whose scale is so small that 1 / d overflows (float
// subnormals); what the block then decodes to is 0 whatever its levels, but the bytes must match.
inline int32_t trunc_int(float v) {
  return v > -2147483904.0f && v < 2147483648.0f ? static_cast<int32_t>(v) : INT32_MIN;
}

inline int clamp_int(int v, int lo, int hi) {
  return v < lo ? lo : (v > hi ? hi : v);
}

// ---- SIMD vectors of one register: 16 floats with AVX-512, 8 with AVX, 4 otherwise (GCC / clang
// vector extensions; wider ones split into several registers compile far worse). Each lane does
// exactly the scalar operations. --------------------------------------------------------------

#if defined(__AVX512F__)
constexpr int kLanes = 16;
#elif defined(__AVX__)
constexpr int kLanes = 8;
#else
constexpr int kLanes = 4;
#endif
typedef float Vf __attribute__((vector_size(4 * kLanes)));
typedef int32_t Vi __attribute__((vector_size(4 * kLanes)));

inline Vi splat_i(int v) {
  return Vi{} + v;
}

inline Vf vabs(Vf v) {
  return reinterpret_cast<Vf>(reinterpret_cast<Vi>(v) & 0x7fffffff);
}

inline Vi nearest_int(Vf v) {  // the scalar nearest_int, per lane
  const Vf shifted = v + 12582912.0f;
  return (reinterpret_cast<Vi>(shifted) & 0x007fffff) - 0x00400000;
}

inline Vf clamped_level(Vf v, int lo, int hi) {  // float(clamp(nearest_int(v), lo, hi))
  Vi l = nearest_int(v);
  l = l < lo ? splat_i(lo) : l;
  l = l > hi ? splat_i(hi) : l;
  return __builtin_convertvector(l, Vf);
}

inline bool any(Vi mask) {
  int r = 0;
  for (int k = 0; k < kLanes; ++k) r |= mask[k];
  return r != 0;
}

// roundf per lane in a form that vectorises: truncation, then a step away from zero when the
// (exact) remainder is at least 0.5.
// Out-of-range lanes give INT32_MIN, as trunc_int.
inline Vi round_half_away(Vf v) {
  const Vi in_range = (v > -2147483904.0f) & (v < 2147483648.0f);
  const Vi t = __builtin_convertvector(in_range ? v : Vf{}, Vi);
  const Vi up = vabs(v - __builtin_convertvector(t, Vf)) >= 0.5f;
  return in_range ? t + (up & (v < 0 ? splat_i(-1) : splat_i(1))) : splat_i(INT32_MIN);
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

// Q8_0: d = amax / 127, q = round-half-away(x / d) computed as x * (1 / d). The 32 elements
// in vectors (amax is a maximum: the order of comparisons cannot change it).
void block_q8_0(const float* x, uint8_t* b) {
  constexpr int nv = kQK / kLanes;
  Vf v[nv];
  std::memcpy(v, x, sizeof v);
  Vf m = vabs(v[0]);
  for (int h = 1; h < nv; ++h) m = vabs(v[h]) > m ? vabs(v[h]) : m;
  float amax = 0.0f;
  for (int k = 0; k < kLanes; ++k) amax = amax > m[k] ? amax : m[k];
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  store_fp16(b, d);
  for (int h = 0; h < nv; ++h) {
    const Vi q = round_half_away(v[h] * id);
    for (int k = 0; k < kLanes; ++k) b[2 + kLanes * h + k] = static_cast<uint8_t>(q[k]);
  }
}

// The same one element at a time with roundf, as ggml's reference writes it (for
// quantize_row_generic).
void block_q8_0_generic(const float* x, uint8_t* b) {
  float amax = 0.0f;
  for (int j = 0; j < kQK; ++j) amax = amax > std::fabs(x[j]) ? amax : std::fabs(x[j]);
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  store_fp16(b, d);
  for (int j = 0; j < kQK; ++j) b[2 + j] = static_cast<uint8_t>(trunc_int(std::round(x[j] * id)));
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
  store_fp16(b, d);
  uint8_t* qs = b + (kBits == 5 ? 6 : 2);
  uint32_t qh = 0;
  for (int j = 0; j < kQK / 2; ++j) {
    const int q0 =
        std::min<int>(kTop, static_cast<int8_t>(trunc_int(x[j] * id + (kOffset + 0.5f))));
    const int q1 =
        std::min<int>(kTop, static_cast<int8_t>(trunc_int(x[j + 16] * id + (kOffset + 0.5f))));
    qs[j] = static_cast<uint8_t>((q0 & 0xF) | (q1 & 0xF) << 4);
    qh |= static_cast<uint32_t>(q0 >> 4 & 1) << j | static_cast<uint32_t>(q1 >> 4 & 1) << (j + 16);
  }
  if (kBits == 5) std::memcpy(b + 2, &qh, 4);
}

// Q4_1 / Q5_1: d = (max - min) / (2^bits - 1), m = min; q = trunc((x - min) / d + 0.5). Q4_1
// caps q at 15; ggml's Q5_1 does not cap (the value cannot pass 31 + 0.5 for finite 1 / d).
template <int kBits>
void block_q_1(const float* x, uint8_t* b) {
  constexpr int kTop = (1 << kBits) - 1;
  float mn, mx;
  min_max(x, &mn, &mx);
  const float d = (mx - mn) / static_cast<float>(kTop);
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  store_fp16(b, d);
  store_fp16(b + 2, mn);
  uint8_t* qs = b + (kBits == 5 ? 8 : 4);
  uint32_t qh = 0;
  for (int j = 0; j < kQK / 2; ++j) {
    // ggml: Q4_1 caps an int8 cast at 15, Q5_1 takes a uint8 cast as it is.
    int q0 = trunc_int((x[j] - mn) * id + 0.5f), q1 = trunc_int((x[j + 16] - mn) * id + 0.5f);
    if (kBits == 4) {
      q0 = std::min<int>(kTop, static_cast<int8_t>(q0));
      q1 = std::min<int>(kTop, static_cast<int8_t>(q1));
    } else {
      q0 = static_cast<uint8_t>(q0);
      q1 = static_cast<uint8_t>(q1);
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

// Q4_K (kBits 4) / Q5_K (kBits 5), step 1, one sub-block at a time: each sub-block of 32 of the
// super-block at x is fitted with weights rms(sub-block) + |x| (make_qkx2_quants' arguments as
// ggml's reference passes them); scales[8], mins[8] (as -min) and the levels L[256] out.
template <int kBits>
void fit_q45_k_generic(const float* x, float* scales, float* mins, uint8_t* L) {
  float w[32];
  for (int j = 0; j < 8; ++j) {
    const float* xs = x + 32 * j;
    float sum_x2 = 0;
    for (int l = 0; l < 32; ++l) sum_x2 += xs[l] * xs[l];
    const float av_x = std::sqrt(sum_x2 / 32.0f);
    for (int l = 0; l < 32; ++l) w[l] = av_x + std::fabs(xs[l]);
    scales[j] = fit_scale_min((1 << kBits) - 1, xs, w, L + 32 * j, &mins[j],
                              kBits == 4 ? -1.0f : -0.5f, 0.1f, kBits == 4 ? 20 : 15);
  }
}

// Step 2: quantise the 8 scales and 8 mins to 6 bits against their maxima (d and dmin =
// max / 63 in fp16), requantise every element against the scale and min as stored, pack.
template <int kBits>
void finish_q45_k(const float* x, const float* scales, const float* mins, uint8_t* L, uint8_t* b) {
  constexpr int nmax = (1 << kBits) - 1;
  float max_scale = 0, max_min = 0;
  for (int j = 0; j < 8; ++j) {
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
  store_fp16(b, max_scale / 63.0f);
  store_fp16(b + 2, max_min / 63.0f);
  const float d_all = load_fp16(b), dmin_all = load_fp16(b + 2);
  for (int j = 0; j < 8; ++j) {
    const float d = d_all * static_cast<float>(sc[j]);
    if (d == 0.0f) continue;  // keep the fit's levels (they decode to -dm either way)
    const float dm = dmin_all * static_cast<float>(m[j]);
    for (int l = 0; l < 32; ++l)
      L[32 * j + l] =
          static_cast<uint8_t>(clamp_int(nearest_int((x[32 * j + l] + dm) / d), 0, nmax));
  }
  // Sub-blocks 2g and 2g + 1 share 32 bytes of nibbles (low, high); Q5_K's fifth bit of
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

// Q6_K step 1, one sub-block at a time: scales[16] and levels L[256] (level + 32).
void fit_q6_k_generic(const float* x, float* scales, int8_t* L) {
  for (int ib = 0; ib < 16; ++ib) scales[ib] = fit_scale_q6(x + 16 * ib, L + 16 * ib);
}

// Step 2: quantise the 16 scales to int8 against the one of largest magnitude (which maps to
// -128; d = 1 / iscale in fp16), requantise the elements against the stored scales, pack
// (layout in quant.h).
void finish_q6_k(const float* x, const float* scales, int8_t* L, uint8_t* b) {
  float max_scale = 0, max_abs_scale = 0;
  for (int ib = 0; ib < 16; ++ib)
    if (std::fabs(scales[ib]) > max_abs_scale) {
      max_abs_scale = std::fabs(scales[ib]);
      max_scale = scales[ib];
    }
  if (max_abs_scale < kGroupMaxEps) {
    std::memset(b, 0, sizeof(BlockQ6_K));
    store_fp16(b + 208, 0.0f);
    return;
  }
  uint8_t* ql = b;
  uint8_t* qh = b + 128;
  int8_t* sc = reinterpret_cast<int8_t*>(b + 192);
  const float iscale = -128.0f / max_scale;
  store_fp16(b + 208, 1 / iscale);
  for (int ib = 0; ib < 16; ++ib)
    sc[ib] = static_cast<int8_t>(std::min(127, nearest_int(iscale * scales[ib])));
  const float d_all = load_fp16(b + 208);
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

// ---- the K-quants' searches, kLanes sub-blocks side by side ----------------------------------
//
// The searches above are independent per sub-block and each is a fixed sequence of float
// operations. Run in SIMD lanes, one sub-block per lane, every lane does the same operations in
// the same order as the scalar code, so it computes the same bits; the data-dependent branches
// become per-lane selects (a lane where `if` would not run keeps its values). About 8x faster
// than one sub-block at a time.

// fit_q45_k_generic's search for the kLanes consecutive sub-blocks of 32 at x: scales[kLanes],
// mins[kLanes], L[32 * kLanes], the same values.
template <int kBits>
void fit_q45_k_lanes(const float* x, float* scales, float* mins, uint8_t* L) {
  constexpr int nmax = (1 << kBits) - 1;
  constexpr float rmin = kBits == 4 ? -1.0f : -0.5f, rdelta = 0.1f;
  constexpr int nstep = kBits == 4 ? 20 : 15;
  Vf xv[32], w[32];  // xv[i][k] = element i of sub-block k
  for (int i = 0; i < 32; ++i)
    for (int k = 0; k < kLanes; ++k) xv[i][k] = x[32 * k + i];
  Vf sum_x2 = {};
  for (int i = 0; i < 32; ++i) sum_x2 += xv[i] * xv[i];
  Vf av_x = sum_x2 / 32.0f;
  for (int k = 0; k < kLanes; ++k) av_x[k] = std::sqrt(av_x[k]);
  for (int i = 0; i < 32; ++i) w[i] = av_x + vabs(xv[i]);

  // fit_scale_min, per lane.
  Vf mn = xv[0], mx = xv[0], sum_w = w[0], sum_x = sum_w * xv[0];
  for (int i = 1; i < 32; ++i) {
    mn = xv[i] < mn ? xv[i] : mn;
    mx = xv[i] > mx ? xv[i] : mx;
    sum_w += w[i];
    sum_x += w[i] * xv[i];
  }
  const Vf zero = {};
  mn = mn > 0 ? zero : mn;
  const Vf mn0 = mn;
  const Vi flat = mx == mn;  // these lanes' results are replaced at the end
  Vf iscale = static_cast<float>(nmax) / (mx - mn);
  Vf scale = 1.0f / iscale;
  Vf best_error = {};
  Vf Lbest[32], Laux[32];
  for (int i = 0; i < 32; ++i) {
    Lbest[i] = clamped_level(iscale * (xv[i] - mn), 0, nmax);
    const Vf diff = scale * Lbest[i] + mn - xv[i];
    best_error += w[i] * (diff * diff);
  }
  for (int is = 0; is <= nstep; ++is) {
    iscale = (rmin + rdelta * static_cast<float>(is) + static_cast<float>(nmax)) / (mx - mn);
    Vf sum_l = {}, sum_l2 = {}, sum_xl = {};
    for (int i = 0; i < 32; ++i) {
      Laux[i] = clamped_level(iscale * (xv[i] - mn), 0, nmax);
      const Vf wl = w[i] * Laux[i];
      sum_l += wl;
      sum_l2 += wl * Laux[i];
      sum_xl += wl * xv[i];
    }
    const Vf D = sum_w * sum_l2 - sum_l * sum_l;
    Vf this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
    Vf this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
    const Vi min_above_zero = this_min > 0;
    this_scale = min_above_zero ? sum_xl / sum_l2 : this_scale;
    this_min = min_above_zero ? zero : this_min;
    Vf cur_error = {};
    for (int i = 0; i < 32; ++i) {
      const Vf diff = this_scale * Laux[i] + this_min - xv[i];
      cur_error += w[i] * (diff * diff);
    }
    const Vi better = (D > 0) & (cur_error < best_error);
    if (!any(better)) continue;
    for (int i = 0; i < 32; ++i) Lbest[i] = better ? Laux[i] : Lbest[i];
    best_error = better ? cur_error : best_error;
    scale = better ? this_scale : scale;
    mn = better ? this_min : mn;
  }
  for (int k = 0; k < kLanes; ++k) {
    scales[k] = flat[k] ? 0.0f : scale[k];
    mins[k] = flat[k] ? -mn0[k] : -mn[k];
    for (int i = 0; i < 32; ++i)
      L[32 * k + i] = flat[k] ? 0 : static_cast<uint8_t>(static_cast<int>(Lbest[i][k]));
  }
}

// fit_q6_k_generic's search for the kLanes consecutive sub-blocks of 16 at x: scales[kLanes],
// L[16 * kLanes], the same values.
void fit_q6_k_lanes(const float* x, float* scales, int8_t* L) {
  Vf xv[16], w[16], wx[16];
  for (int i = 0; i < 16; ++i)
    for (int k = 0; k < kLanes; ++k) xv[i][k] = x[16 * k + i];
  Vf amax = {}, max = {};
  for (int i = 0; i < 16; ++i) {
    const Vf ax = vabs(xv[i]);
    const Vi gt = ax > amax;
    amax = gt ? ax : amax;
    max = gt ? xv[i] : max;
    w[i] = xv[i] * xv[i];
    wx[i] = w[i] * xv[i];  // the scalar code's (w * x) * l, first product
  }
  const Vi all_zero = amax < kGroupMaxEps;
  auto sums = [&](Vf iscale, Vf* sumlx, Vf* suml2) {
    *sumlx = Vf{};
    *suml2 = Vf{};
    for (int i = 0; i < 16; ++i) {
      const Vf l = clamped_level(iscale * xv[i], -32, 31);
      *sumlx += wx[i] * l;
      *suml2 += w[i] * l * l;
    }
  };
  Vf iscale = -32.0f / max, sumlx, suml2;
  sums(iscale, &sumlx, &suml2);
  const Vf zero = {};
  Vf scale = suml2 != 0 ? sumlx / suml2 : zero;
  Vf best = scale * sumlx;
  Vf best_iscale = iscale;
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    iscale = -(32.0f + 0.1f * static_cast<float>(is)) / max;
    sums(iscale, &sumlx, &suml2);
    const Vi better = (suml2 > 0) & (sumlx * sumlx > best * suml2);
    const Vf s = sumlx / suml2;
    scale = better ? s : scale;
    best = better ? s * sumlx : best;
    best_iscale = better ? iscale : best_iscale;
  }
  for (int i = 0; i < 16; ++i) {
    const Vf l = clamped_level(best_iscale * xv[i], -32, 31) + 32.0f;
    for (int k = 0; k < kLanes; ++k)
      L[16 * k + i] = all_zero[k] ? 0 : static_cast<int8_t>(static_cast<int>(l[k]));
  }
  for (int k = 0; k < kLanes; ++k) scales[k] = all_zero[k] ? 0.0f : scale[k];
}

// ---- rows -------------------------------------------------------------------------------------

using BlockFn = void (*)(const float*, uint8_t*);

void blocks(BlockFn f, const float* src, uint8_t* dst, int64_t nb, size_t bytes) {
  for (int64_t i = 0; i < nb; ++i) f(src + i * kQK, dst + static_cast<size_t>(i) * bytes);
}

// Through the lanes, kGroup super-blocks at a time (a last incomplete group padded with zeros),
// or one by one.
template <int kBits>
void row_q45_k(const float* x, uint8_t* dst, int64_t nb, bool lanes) {
  constexpr size_t bytes = kBits == 4 ? sizeof(BlockQ4_K) : sizeof(BlockQ5_K);
  constexpr int kGroup = kLanes > 8 ? kLanes / 8 : 1;
  float scales[8 * kGroup], mins[8 * kGroup];
  uint8_t L[kQKK * kGroup];
  if (!lanes) {
    for (int64_t i = 0; i < nb; ++i) {
      fit_q45_k_generic<kBits>(x + i * kQKK, scales, mins, L);
      finish_q45_k<kBits>(x + i * kQKK, scales, mins, L, dst + static_cast<size_t>(i) * bytes);
    }
    return;
  }
  float padded[kQKK * kGroup];
  for (int64_t i = 0; i < nb; i += kGroup) {
    const int here = static_cast<int>(std::min<int64_t>(kGroup, nb - i));
    const float* xi = x + i * kQKK;
    if (here < kGroup) {
      std::memset(padded, 0, sizeof padded);
      std::memcpy(padded, xi, sizeof(float) * kQKK * here);
      xi = padded;
    }
    for (int s = 0; s < 8 * kGroup; s += kLanes)
      fit_q45_k_lanes<kBits>(xi + 32 * s, scales + s, mins + s, L + 32 * s);
    for (int g = 0; g < here; ++g)
      finish_q45_k<kBits>(xi + g * kQKK, scales + 8 * g, mins + 8 * g, L + kQKK * g,
                          dst + static_cast<size_t>(i + g) * bytes);
  }
}

void row_q6_k(const float* x, uint8_t* dst, int64_t nb, bool lanes) {
  float scales[16];
  int8_t L[kQKK];
  for (int64_t i = 0; i < nb; ++i) {
    if (lanes)
      for (int s = 0; s < 16; s += kLanes)
        fit_q6_k_lanes(x + i * kQKK + 16 * s, scales + s, L + 16 * s);
    else
      fit_q6_k_generic(x + i * kQKK, scales, L);
    finish_q6_k(x + i * kQKK, scales, L, dst + static_cast<size_t>(i) * sizeof(BlockQ6_K));
  }
}

// Whether no element is NaN or Inf (exponent bits all ones), in a loop that vectorises.
bool all_finite(const float* x, int64_t n) {
  uint32_t bad = 0;
  for (int64_t i = 0; i < n; ++i) {
    uint32_t u;
    std::memcpy(&u, x + i, 4);
    bad |= (u & 0x7f800000u) == 0x7f800000u;
  }
  return bad == 0;
}

void quantize(GgmlType t, const float* src, void* dst_, int64_t n, bool lanes) {
  if (!ggml_can_quantize(t))
    fail("quantize: cannot write ggml type ", ggml_type_name(t), " (", static_cast<uint32_t>(t),
         ")");
  const int64_t block = ggml_block_size(t);
  if (n < 0 || n % block != 0)
    fail("quantize: a row of ", n, " elements is not a whole number of ", block,
         "-element blocks of ggml type ", ggml_type_name(t));
  if (!all_finite(src, n))
    for (int64_t i = 0; i < n; ++i)
      if (!std::isfinite(src[i]))
        fail("quantize: ", ggml_type_name(t), " row has a non-finite value (", src[i],
             ") at element ", i);
  auto* dst = static_cast<uint8_t*>(dst_);
  const int64_t nb = n / block;
  const size_t bytes = ggml_type_size(t);
  switch (t) {
    case GgmlType::F32:
      if (n > 0) std::memcpy(dst, src, static_cast<size_t>(n) * 4);
      return;
    case GgmlType::F16:
      for (int64_t i = 0; i < n; ++i) store_fp16(dst + 2 * i, src[i]);
      return;
    case GgmlType::BF16:
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = float_to_bf16(src[i]).bits;
        std::memcpy(dst + 2 * i, &h, 2);
      }
      return;
    case GgmlType::Q8_0:
      return blocks(lanes ? block_q8_0 : block_q8_0_generic, src, dst, nb, bytes);
    case GgmlType::Q4_0:
      return blocks(block_q_0<4>, src, dst, nb, bytes);
    case GgmlType::Q5_0:
      return blocks(block_q_0<5>, src, dst, nb, bytes);
    case GgmlType::Q4_1:
      return blocks(block_q_1<4>, src, dst, nb, bytes);
    case GgmlType::Q5_1:
      return blocks(block_q_1<5>, src, dst, nb, bytes);
    case GgmlType::Q4_K:
      return row_q45_k<4>(src, dst, nb, lanes);
    case GgmlType::Q5_K:
      return row_q45_k<5>(src, dst, nb, lanes);
    case GgmlType::Q6_K:
      return row_q6_k(src, dst, nb, lanes);
    default:
      fail("quantize: internal: no kernel for ", ggml_type_name(t));
  }
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

void quantize_row(GgmlType t, const float* src, void* dst, int64_t n) {
  quantize(t, src, dst, n, true);
}

void quantize_row_generic(GgmlType t, const float* src, void* dst, int64_t n) {
  quantize(t, src, dst, n, false);
}

}  // namespace llmkit::kernels
