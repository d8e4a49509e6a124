// The AVX2 kernels of qmatmul (qmatmul.h), for x86 CPUs without AVX-512 VNNI (AMD Zen 2 / 3,
// Intel before Ice Lake): vpmaddubsw integer dot products for the 32-element block types (Q4_0,
// Q4_1, Q5_0, Q5_1, Q8_0) and the K-quants (Q4_K, Q5_K, Q6_K), F16C + FMA for f16 and f32.
// Compiled when the target has AVX2, FMA and F16C and not the AVX-512 set qmatmul_avx512.cpp
// needs; bf16 declines here and runs qmatmul.cpp's portable loop.
//
// Per block, as ggml's AVX2 ggml_vec_dot_<type>_q8_<k>: vpmaddubsw multiplies unsigned bytes by
// signed bytes and adds pairs to int16, vpmaddwd by ones adds pairs again to 8 int32 lanes, the
// lanes go to float and are scaled by d_w * d_x into a float accumulator. Q4_1 / Q5_1 (0..15,
// 0..31) are unsigned already; Q4_0 / Q5_0 / Q8_0 are signed, so the weights' magnitudes are
// multiplied by the activations carrying the weights' signs (vpsignb): |w| <= 128 and |x| <= 127,
// so a pair sum fits in int16 (vpmaddubsw saturates). Q4_1 / Q5_1 add m_w * s_x per block.
//
// Tiles: R weight rows x T tokens per kernel call; a weight block is unpacked once and used for T
// tokens, which is what makes several sequences decoded together cheaper than one after another.
// Each output gets its own accumulator and the same instruction sequence in every tile shape, so
// results do not depend on the tiling, on the token count or on how rows are split among threads.
#include "llmkit/kernels/cpu/qmatmul_kernels.h"

#if defined(LLMKIT_QMATMUL_AVX2)

#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

// Products and sums are explicit intrinsics; keep the scalar float expressions unfused so every
// tile shape rounds alike.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace llmkit::kernels::detail {
namespace {

inline float fp16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline int hsum_i32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 1));
  return _mm_cvtsi128_si32(s);
}

// ---- activations ------------------------------------------------------------------------------
// A token's panel row for the block types: the 32 quants of every block (32-byte aligned), then
// each block's scale d as f32, then (Q8_1) each block's s as f32. The values are those of the
// Q8_0 / Q8_1 bytes quantize_activations writes, fp16 scales widened once here rather than per
// weight row.
struct Panel {
  int8_t* q;
  float* d;
  float* s;
};
inline int64_t round8(int64_t n) {
  return (n + 7) / 8 * 8;
}
inline size_t small_panel_bytes(int64_t nblocks) {
  return static_cast<size_t>(nblocks) * 32 + static_cast<size_t>(round8(nblocks)) * 8;
}
inline Panel panel_at(uint8_t* base, int64_t nblocks) {
  float* d = reinterpret_cast<float*>(base + nblocks * 32);
  return {reinterpret_cast<int8_t*>(base), d, d + round8(nblocks)};
}
struct ConstPanel {
  const int8_t* q;
  const float* d;
  const float* s;
};
inline ConstPanel panel_at(const uint8_t* base, int64_t nblocks) {
  const float* d = reinterpret_cast<const float*>(base + nblocks * 32);
  return {reinterpret_cast<const int8_t*>(base), d, d + round8(nblocks)};
}

// One Q8_0 / Q8_1 block of 32 floats, as the portable quantize_q8_0_1: d = amax / 127,
// q = x * (127 / amax) rounded to nearest even (cvtps2dq under the default MXCSR rounding).
// Returns the fp16 bits of d; *sum gets the sum of the quants.
inline uint16_t q8_block(const float* x, int8_t* q, float* d_out, int* sum) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  __m256 v[4];
  __m256 m = _mm256_setzero_ps();
  for (int i = 0; i < 4; ++i) {
    v[i] = _mm256_loadu_ps(x + 8 * i);
    m = _mm256_max_ps(m, _mm256_andnot_ps(sign, v[i]));
  }
  __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
  m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
  m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
  const float amax = _mm_cvtss_f32(m4);
  const float d = amax / 127.0f;
  const __m256 id = _mm256_set1_ps(amax != 0.0f ? 127.0f / amax : 0.0f);
  __m256i i[4];
  for (int k = 0; k < 4; ++k) i[k] = _mm256_cvtps_epi32(_mm256_mul_ps(v[k], id));
  *sum = hsum_i32(_mm256_add_epi32(_mm256_add_epi32(i[0], i[1]), _mm256_add_epi32(i[2], i[3])));
  // int32 -> int8: the packs interleave 128-bit lanes; the permute puts the 32 back in order.
  const __m256i p16a = _mm256_packs_epi32(i[0], i[1]), p16b = _mm256_packs_epi32(i[2], i[3]);
  const __m256i p8 = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(p16a, p16b),
                                                 _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(q), p8);
  *d_out = d;
  return _cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT);
}

// The fp16 s of a Q8_1 block: d * sum(q), as quantize_q8_0_1.
inline uint16_t q81_s(float d, int sum) {
  return _cvtss_sh(d * static_cast<float>(sum), _MM_FROUND_TO_NEAREST_INT);
}

void panel_from_f32(const float* x, bool q81, int64_t nblocks, uint8_t* dst) {
  const Panel p = panel_at(dst, nblocks);
  for (int64_t b = 0; b < nblocks; ++b) {
    float d;
    int sum;
    const uint16_t dh = q8_block(x + 32 * b, p.q + 32 * b, &d, &sum);
    p.d[b] = _cvtsh_ss(dh);
    if (q81) p.s[b] = _cvtsh_ss(q81_s(d, sum));
  }
}

// The same from Q8_0 / Q8_1 bytes (vec_dot's activations).
void panel_from_q8(const uint8_t* xq, bool q81, int64_t nblocks, uint8_t* dst) {
  const Panel p = panel_at(dst, nblocks);
  const size_t bs = q81 ? sizeof(BlockQ8_1) : sizeof(BlockQ8_0);
  for (int64_t b = 0; b < nblocks; ++b, xq += bs) {
    std::memcpy(p.q + 32 * b, xq + (q81 ? 4 : 2), 32);
    p.d[b] = fp16(xq);
    if (q81) p.s[b] = fp16(xq + 2);
  }
}

// ---- weight blocks -----------------------------------------------------------------------------
// Each loader turns one block into its 32 quants in element order (low nibbles are elements 0-15,
// high nibbles 16-31, as quant.h lays them out) and its scale (and minimum).

// 32 nibbles of 16 bytes: low nibbles first.
inline __m256i nibbles(const uint8_t* qs) {
  const __m128i t = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m256i b = _mm256_insertf128_si256(_mm256_castsi128_si256(t), _mm_srli_epi16(t, 4), 1);
  return _mm256_and_si256(b, _mm256_set1_epi8(0x0F));
}

// Byte i = 0xFF where bit i of the 32 bits at p is set.
inline __m256i bits_to_bytes(const uint8_t* p) {
  uint32_t h;
  std::memcpy(&h, p, 4);
  const __m256i shuf = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101,
                                         0x0000000000000000);
  const __m256i b = _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(h)), shuf);
  const __m256i bit = _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe);
  return _mm256_cmpeq_epi8(_mm256_or_si256(b, bit), _mm256_set1_epi64x(-1));
}

// kSigned: the quants are signed (q - bias), multiplied by sign trick; else unsigned with a
// minimum m (fp16 at offset 2).
struct KQ4_0 {
  static constexpr int kBytes = 18;
  static constexpr bool kSigned = true;
  static __m256i quants(const uint8_t* b) {
    return _mm256_sub_epi8(nibbles(b + 2), _mm256_set1_epi8(8));
  }
};
struct KQ4_1 {
  static constexpr int kBytes = 20;
  static constexpr bool kSigned = false;
  static __m256i quants(const uint8_t* b) { return nibbles(b + 4); }
};
struct KQ5_0 {
  static constexpr int kBytes = 22;
  static constexpr bool kSigned = true;
  // (q | h << 4) - 16: a clear high bit sets the top nibble (q - 16 in two's complement).
  static __m256i quants(const uint8_t* b) {
    const __m256i hi = _mm256_andnot_si256(bits_to_bytes(b + 2), _mm256_set1_epi8(-16));
    return _mm256_or_si256(nibbles(b + 6), hi);
  }
};
struct KQ5_1 {
  static constexpr int kBytes = 24;
  static constexpr bool kSigned = false;
  static __m256i quants(const uint8_t* b) {
    const __m256i hi = _mm256_and_si256(bits_to_bytes(b + 4), _mm256_set1_epi8(0x10));
    return _mm256_or_si256(nibbles(b + 8), hi);
  }
};
struct KQ8_0 {
  static constexpr int kBytes = 34;
  static constexpr bool kSigned = true;
  static __m256i quants(const uint8_t* b) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 2));
  }
};

// R rows x T tokens of a 32-element block type: out[r * T + t].
template <class K, int R, int T>
void tile_small(const uint8_t* const* w, const ConstPanel* x, int64_t nblocks, float* out) {
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 acc[R][T];
  float summs[R][T];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) {
      acc[r][t] = _mm256_setzero_ps();
      summs[r][t] = 0.0f;
    }
  for (int64_t b = 0; b < nblocks; ++b) {
    __m256i q[R], a[R];
    float dw[R], mw[R];
    for (int r = 0; r < R; ++r) {
      const uint8_t* blk = w[r] + b * K::kBytes;
      q[r] = K::quants(blk);
      if constexpr (K::kSigned) a[r] = _mm256_sign_epi8(q[r], q[r]);
      dw[r] = fp16(blk);
      if constexpr (!K::kSigned) mw[r] = fp16(blk + 2);
    }
    for (int t = 0; t < T; ++t) {
      const __m256i xv = _mm256_load_si256(reinterpret_cast<const __m256i*>(x[t].q + 32 * b));
      const float dx = x[t].d[b];
      for (int r = 0; r < R; ++r) {
        const __m256i p16 = K::kSigned ? _mm256_maddubs_epi16(a[r], _mm256_sign_epi8(xv, q[r]))
                                       : _mm256_maddubs_epi16(q[r], xv);
        const __m256 f = _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, ones));
        acc[r][t] = _mm256_fmadd_ps(_mm256_set1_ps(dw[r] * dx), f, acc[r][t]);
        if constexpr (!K::kSigned) summs[r][t] += mw[r] * x[t].s[b];
      }
    }
  }
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) out[r * T + t] = hsum(acc[r][t]) + summs[r][t];
}

// ---- K-quants ----------------------------------------------------------------------------------
// Per super-block of 256 and per token, the exact integer sums of the portable dot_q45_k /
// dot_q6_k (vpmaddubsw of unsigned quants by the Q8_K quants, vpmaddwd by the sub-block scales),
// then the same float expression, here unfused (the portable build may contract it into an FMA:
// last-bit differences).

// The 6-bit scales and minimums of a Q4_K / Q5_K super-block, as unpack_q45_k.
inline void k4_scales(const uint8_t* s, int* sc, int* m) {
  for (int j = 0; j < 4; ++j) {
    sc[j] = s[j] & 63;
    m[j] = s[j + 4] & 63;
    sc[j + 4] = (s[j + 8] & 0xF) | ((s[j] >> 6) << 4);
    m[j + 4] = (s[j + 8] >> 4) | ((s[j + 4] >> 6) << 4);
  }
}

// Q4_K (kFive = false) / Q5_K, 1 row x T tokens.
template <bool kFive, int T>
void tile_q45k(const uint8_t* w, const BlockQ8_K* const* x, int64_t nsb, float* out) {
  constexpr size_t kBytes = kFive ? sizeof(BlockQ5_K) : sizeof(BlockQ4_K);
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  float sum[T] = {};
  for (int64_t b = 0; b < nsb; ++b, w += kBytes) {
    int sc[8], m[8];
    k4_scales(w + 4, sc, m);
    const uint8_t* ql = w + (kFive ? 48 : 16);
    __m256i hb;
    if constexpr (kFive) hb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 16));
    __m256i acc[T];
    for (int t = 0; t < T; ++t) acc[t] = _mm256_setzero_si256();
    for (int g = 0; g < 4; ++g) {
      const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql + 32 * g));
      __m256i lo = _mm256_and_si256(q, low4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), low4);
      if constexpr (kFive) {  // bit 2g of qh[l] on element l, bit 2g + 1 on element l + 32
        const __m256i one = _mm256_set1_epi8(1);
        const __m256i h0 = _mm256_and_si256(_mm256_srli_epi16(hb, 2 * g), one);
        const __m256i h1 = _mm256_and_si256(_mm256_srli_epi16(hb, 2 * g + 1), one);
        lo = _mm256_or_si256(lo, _mm256_slli_epi16(h0, 4));
        hi = _mm256_or_si256(hi, _mm256_slli_epi16(h1, 4));
      }
      const __m256i s0 = _mm256_set1_epi16(static_cast<int16_t>(sc[2 * g]));
      const __m256i s1 = _mm256_set1_epi16(static_cast<int16_t>(sc[2 * g + 1]));
      for (int t = 0; t < T; ++t) {
        const int8_t* xq = x[t][b].qs + 64 * g;
        const __m256i x0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq));
        const __m256i x1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + 32));
        const __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, x0), s0);
        const __m256i p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, x1), s1);
        acc[t] = _mm256_add_epi32(acc[t], _mm256_add_epi32(p0, p1));
      }
    }
    const float dw = fp16(w), dminw = fp16(w + 2);
    for (int t = 0; t < T; ++t) {
      const BlockQ8_K& xb = x[t][b];
      int summ = 0;
      for (int j = 0; j < 8; ++j) summ += m[j] * (xb.bsums[2 * j] + xb.bsums[2 * j + 1]);
      const float d = dw * xb.d, dmin = dminw * xb.d;
      sum[t] += d * static_cast<float>(hsum_i32(acc[t])) - dmin * static_cast<float>(summ);
    }
  }
  for (int t = 0; t < T; ++t) out[t] = sum[t];
}

// Q6_K, 1 row x T tokens: the 6-bit quants unsigned (0..63), the -32 through the bsums.
template <int T>
void tile_q6k(const uint8_t* w, const BlockQ8_K* const* x, int64_t nsb, float* out) {
  const __m256i low4 = _mm256_set1_epi8(0x0F), three = _mm256_set1_epi8(3);
  float sum[T] = {};
  for (int64_t b = 0; b < nsb; ++b, w += sizeof(BlockQ6_K)) {
    const int8_t* sc = reinterpret_cast<const int8_t*>(w + 192);
    __m256i acc[T];
    for (int t = 0; t < T; ++t) acc[t] = _mm256_setzero_si256();
    for (int h = 0; h < 2; ++h) {
      const __m256i A = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 64 * h));
      const __m256i B = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 64 * h + 32));
      const __m256i H = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 128 + 32 * h));
      auto top = [&](int shift) {
        return _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(H, shift), three), 4);
      };
      const __m256i v[4] = {
          _mm256_or_si256(_mm256_and_si256(A, low4), top(0)),
          _mm256_or_si256(_mm256_and_si256(B, low4), top(2)),
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(A, 4), low4), top(4)),
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(B, 4), low4), top(6))};
      for (int k = 0; k < 4; ++k) {
        // Elements 128h + 32k + (0..15) and (16..31): sub-blocks 8h + 2k and 8h + 2k + 1.
        const __m256i s = _mm256_set_m128i(_mm_set1_epi16(sc[8 * h + 2 * k + 1]),
                                           _mm_set1_epi16(sc[8 * h + 2 * k]));
        for (int t = 0; t < T; ++t) {
          const __m256i xv =
              _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[t][b].qs + 128 * h + 32 * k));
          acc[t] = _mm256_add_epi32(acc[t], _mm256_madd_epi16(_mm256_maddubs_epi16(v[k], xv), s));
        }
      }
    }
    const float dw = fp16(w + 208);
    for (int t = 0; t < T; ++t) {
      const BlockQ8_K& xb = x[t][b];
      int bias = 0;
      for (int i = 0; i < 16; ++i) bias += sc[i] * xb.bsums[i];
      sum[t] += dw * xb.d * static_cast<float>(hsum_i32(acc[t]) - 32 * bias);
    }
  }
  for (int t = 0; t < T; ++t) out[t] = sum[t];
}

// ---- f16 / f32 ---------------------------------------------------------------------------------
// Activations in f32 (F16: rounded to f16 and widened, the values quantize_activations writes).

inline __m256i tail_mask(int64_t left) {
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(std::min<int64_t>(left, 8))), idx);
}

template <bool kF16>
inline __m256 load_w(const uint8_t* w, int64_t i, int64_t left) {
  if constexpr (kF16) {
    if (left >= 8)
      return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 2 * i)));
    alignas(16) uint16_t h[8] = {};
    std::memcpy(h, w + 2 * i, static_cast<size_t>(left) * 2);
    return _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(h)));
  } else {
    const float* p = reinterpret_cast<const float*>(w + 4 * i);  // rows may be unaligned
    if (left >= 8) return _mm256_loadu_ps(p);
    return _mm256_maskload_ps(p, tail_mask(left));
  }
}

template <bool kF16, int R, int T>
void tile_float(const uint8_t* const* w, const float* const* x, int64_t n, float* out) {
  __m256 acc[R][T];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) acc[r][t] = _mm256_setzero_ps();
  for (int64_t i = 0; i < n; i += 8) {
    const int64_t left = n - i;
    __m256 wv[R];
    for (int r = 0; r < R; ++r) wv[r] = load_w<kF16>(w[r], i, left);
    for (int t = 0; t < T; ++t) {
      const __m256 xv =
          left >= 8 ? _mm256_loadu_ps(x[t] + i) : _mm256_maskload_ps(x[t] + i, tail_mask(left));
      for (int r = 0; r < R; ++r) acc[r][t] = _mm256_fmadd_ps(wv[r], xv, acc[r][t]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) out[r * T + t] = hsum(acc[r][t]);
}

// ---- driver ------------------------------------------------------------------------------------

enum class Kind { kSmall, kK, kF32, kF16, kNone };

Kind kind_of(GgmlType t) {
  switch (t) {
    case GgmlType::Q4_0:
    case GgmlType::Q4_1:
    case GgmlType::Q5_0:
    case GgmlType::Q5_1:
    case GgmlType::Q8_0:
      return Kind::kSmall;
    case GgmlType::Q4_K:
    case GgmlType::Q5_K:
    case GgmlType::Q6_K:
      return Kind::kK;
    case GgmlType::F32:
      return Kind::kF32;
    case GgmlType::F16:
      return Kind::kF16;
    default:
      return Kind::kNone;
  }
}

bool uses_q8_1(GgmlType t) {
  return t == GgmlType::Q4_1 || t == GgmlType::Q5_1;
}

// The activations of one call: row m of `stride` bytes at data + m * stride.
struct Panels {
  const uint8_t* data;
  size_t stride;
  const uint8_t* row(int64_t m) const { return data + static_cast<size_t>(m) * stride; }
};

constexpr int kRowTile = 2;  // weight rows per tile
constexpr int kTokTile = 4;  // tokens per tile

// Rows [r0, r1) x tokens [0, M) in tiles of kRowTile x kTokTile, edges in smaller tiles:
// fn.template operator()<R, T>(r, t).
template <class Fn>
void for_tiles(int64_t r0, int64_t r1, int64_t M, Fn&& fn) {
  auto tokens = [&]<int R>(int64_t r) {
    int64_t t = 0;
    for (; t + kTokTile <= M; t += kTokTile) fn.template operator()<R, kTokTile>(r, t);
    switch (M - t) {
      case 3:
        return fn.template operator()<R, 3>(r, t);
      case 2:
        return fn.template operator()<R, 2>(r, t);
      case 1:
        return fn.template operator()<R, 1>(r, t);
      default:
        return;
    }
  };
  int64_t r = r0;
  for (; r + kRowTile <= r1; r += kRowTile) tokens.template operator()<kRowTile>(r);
  for (; r < r1; ++r) tokens.template operator()<1>(r);
}

template <class K>
void run_small(const QMatrix& W, int64_t M, const Panels& px, float* Y, int64_t ldy, int64_t r0,
               int64_t r1) {
  const int64_t nb = W.cols / 32;
  for_tiles(r0, r1, M, [&]<int R, int T>(int64_t r, int64_t t) {
    const uint8_t* w[R];
    for (int i = 0; i < R; ++i) w[i] = static_cast<const uint8_t*>(W.row(r + i));
    ConstPanel x[T];
    for (int j = 0; j < T; ++j) x[j] = panel_at(px.row(t + j), nb);
    float out[R * T];
    tile_small<K, R, T>(w, x, nb, out);
    for (int i = 0; i < R; ++i)
      for (int j = 0; j < T; ++j) Y[(t + j) * ldy + r + i] = out[i * T + j];
  });
}

void run_k(const QMatrix& W, int64_t M, const Panels& px, float* Y, int64_t ldy, int64_t r0,
           int64_t r1) {
  const int64_t nsb = W.cols / 256;
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* w = static_cast<const uint8_t*>(W.row(r));
    auto one = [&]<int T>(int64_t t) {
      const BlockQ8_K* x[T];
      for (int j = 0; j < T; ++j) x[j] = reinterpret_cast<const BlockQ8_K*>(px.row(t + j));
      float out[T];
      if (W.type == GgmlType::Q4_K)
        tile_q45k<false, T>(w, x, nsb, out);
      else if (W.type == GgmlType::Q5_K)
        tile_q45k<true, T>(w, x, nsb, out);
      else
        tile_q6k<T>(w, x, nsb, out);
      for (int j = 0; j < T; ++j) Y[(t + j) * ldy + r] = out[j];
    };
    int64_t t = 0;
    for (; t + kTokTile <= M; t += kTokTile) one.template operator()<kTokTile>(t);
    for (; t < M; ++t) one.template operator()<1>(t);
  }
}

template <bool kF16>
void run_float(const QMatrix& W, int64_t M, const Panels& px, float* Y, int64_t ldy, int64_t r0,
               int64_t r1) {
  for_tiles(r0, r1, M, [&]<int R, int T>(int64_t r, int64_t t) {
    const uint8_t* w[R];
    for (int i = 0; i < R; ++i) w[i] = static_cast<const uint8_t*>(W.row(r + i));
    const float* x[T];
    for (int j = 0; j < T; ++j) x[j] = reinterpret_cast<const float*>(px.row(t + j));
    float out[R * T];
    tile_float<kF16, R, T>(w, x, W.cols, out);
    for (int i = 0; i < R; ++i)
      for (int j = 0; j < T; ++j) Y[(t + j) * ldy + r + i] = out[i * T + j];
  });
}

void run_rows(Kind kind, const QMatrix& W, int64_t M, const Panels& px, float* Y, int64_t ldy,
              int64_t r0, int64_t r1) {
  switch (kind) {
    case Kind::kSmall:
      switch (W.type) {
        case GgmlType::Q4_0:
          return run_small<KQ4_0>(W, M, px, Y, ldy, r0, r1);
        case GgmlType::Q4_1:
          return run_small<KQ4_1>(W, M, px, Y, ldy, r0, r1);
        case GgmlType::Q5_0:
          return run_small<KQ5_0>(W, M, px, Y, ldy, r0, r1);
        case GgmlType::Q5_1:
          return run_small<KQ5_1>(W, M, px, Y, ldy, r0, r1);
        default:
          return run_small<KQ8_0>(W, M, px, Y, ldy, r0, r1);
      }
    case Kind::kK:
      return run_k(W, M, px, Y, ldy, r0, r1);
    case Kind::kF32:
      return run_float<false>(W, M, px, Y, ldy, r0, r1);
    default:
      return run_float<true>(W, M, px, Y, ldy, r0, r1);
  }
}

// Bytes of one token's panel row (a multiple of 32, so every row's quants stay aligned).
size_t panel_bytes(Kind kind, int64_t cols) {
  const size_t n = kind == Kind::kSmall ? small_panel_bytes(cols / 32)
                   : kind == Kind::kK   ? static_cast<size_t>(cols / 256) * sizeof(BlockQ8_K)
                                        : static_cast<size_t>(cols) * sizeof(float);
  return (n + 31) / 32 * 32;
}

// One token's activations x[0..cols) into its panel row.
void make_panel(Kind kind, GgmlType t, const float* x, int64_t cols, uint8_t* dst) {
  switch (kind) {
    case Kind::kSmall:
      return panel_from_f32(x, uses_q8_1(t), cols / 32, dst);
    case Kind::kK:  // Q8_K blocks as the portable code writes them
      return quantize_activations_generic(t, x, dst, cols);
    case Kind::kF32:
      std::memcpy(dst, x, static_cast<size_t>(cols) * 4);
      return;
    default: {
      float* o = reinterpret_cast<float*>(dst);
      int64_t i = 0;
      for (; i + 8 <= cols; i += 8)
        _mm256_storeu_ps(o + i, _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_loadu_ps(x + i),
                                                                _MM_FROUND_TO_NEAREST_INT)));
      for (; i < cols; ++i) o[i] = _cvtsh_ss(_cvtss_sh(x[i], _MM_FROUND_TO_NEAREST_INT));
    }
  }
}

}  // namespace

bool qmatmul_simd_compiled() {
  return true;
}

bool qmatmul_simd(const QMatrix& W, int64_t M, const float* X, int64_t ldx, float* Y, int64_t ldy) {
  const Kind kind = kind_of(W.type);
  if (kind == Kind::kNone) return false;
  thread_local std::vector<uint8_t> scratch;
  const size_t stride = panel_bytes(kind, W.cols);
  uint8_t* panels = aligned_scratch(scratch, stride * static_cast<size_t>(M), 32);
  drive(
      W, M,
      [&](int64_t m0, int64_t m1) {
        for (int64_t m = m0; m < m1; ++m)
          make_panel(kind, W.type, X + m * ldx, W.cols, panels + static_cast<size_t>(m) * stride);
      },
      [&](int64_t r0, int64_t r1) {
        run_rows(kind, W, M, Panels{panels, stride}, Y, ldy, r0, r1);
      });
  return true;
}

bool vec_dot_simd(GgmlType t, int64_t n, const void* w, const void* xq, float* result) {
  const Kind kind = kind_of(t);
  if (kind == Kind::kNone) return false;
  const uint8_t* x = static_cast<const uint8_t*>(xq);
  const QMatrix W{t, 1, n, w};
  if (kind == Kind::kK || kind == Kind::kF32) {  // read the activations as they are
    run_rows(kind, W, 1, Panels{x, 0}, result, 1, 0, 1);
    return true;
  }
  thread_local std::vector<uint8_t> scratch;
  uint8_t* p = aligned_scratch(scratch, panel_bytes(kind, n), 32);
  if (kind == Kind::kSmall) {
    panel_from_q8(x, uses_q8_1(t), n / 32, p);
  } else {  // F16: the f16 activations widened to f32, as the panels hold them
    float* o = reinterpret_cast<float*>(p);
    for (int64_t i = 0; i < n; ++i) o[i] = fp16(x + 2 * i);
  }
  run_rows(kind, W, 1, Panels{p, 0}, result, 1, 0, 1);
  return true;
}

bool quantize_activations_simd(GgmlType w, const float* x, void* dst, int64_t n) {
  if (kind_of(w) != Kind::kSmall || n % 32 != 0) return false;  // portable code (and its errors)
  uint8_t* out = static_cast<uint8_t*>(dst);
  const bool q81 = uses_q8_1(w);
  const size_t bs = q81 ? sizeof(BlockQ8_1) : sizeof(BlockQ8_0);
  for (int64_t b = 0; b < n / 32; ++b, out += bs) {
    float d;
    int sum;
    const uint16_t dh =
        q8_block(x + 32 * b, reinterpret_cast<int8_t*>(out + (q81 ? 4 : 2)), &d, &sum);
    std::memcpy(out, &dh, 2);
    if (q81) {
      const uint16_t s = q81_s(d, sum);
      std::memcpy(out + 2, &s, 2);
    }
  }
  return true;
}

}  // namespace llmkit::kernels::detail

#endif  // LLMKIT_QMATMUL_AVX2
