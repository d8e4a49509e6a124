// Dequantisation of ggml blocks (quant.h). Each type has a portable block decoder written as
// ggml's reference (plain loops the compiler vectorises) and hand-vectorised versions with the
// same arithmetic in the same order: AVX-512 for all quantised types, AVX2 (when AVX-512 is not
// compiled in) for those whose portable loops vectorise poorly with 8 lanes. Blocks are read
// through memcpy / byte pointers, so any source alignment works.
#include "llmkit/kernels/cpu/quant.h"

#include <cstring>

#if defined(__AVX512F__) && defined(__AVX512BW__)
#define LLMKIT_QUANT_AVX512 1
#elif defined(__AVX2__)
#define LLMKIT_QUANT_AVX2 1
#endif
#if defined(LLMKIT_QUANT_AVX512) || defined(LLMKIT_QUANT_AVX2) || defined(__F16C__)
#include <immintrin.h>
#endif

#include "llmkit/core/dtype.h"
#include "llmkit/core/error.h"

// ggml and numpy round every product before adding. For these formats the products that are
// added to (q * d, d * sc, (d * sc) * q of Q4_K/Q5_K) are exact in float anyway (an 11-bit fp16
// mantissa times at most two small integers: <= 22 bits), so an FMA would give the same bits
// today; contraction (which GCC and clang do by default at -march=native) is still turned off so
// that a kernel added later cannot drift from the reference silently.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
// GCC 12 then reports the intrinsics' own `__Y = __Y` placeholders as maybe-uninitialized.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace llmkit::kernels {

namespace {

struct TypeInfo {
  GgmlType type;
  const char* name;
  int64_t block;
  size_t bytes;
  bool dequant;
};

constexpr TypeInfo kTypes[] = {
    {GgmlType::F32, "F32", 1, 4, true},
    {GgmlType::F16, "F16", 1, 2, true},
    {GgmlType::Q4_0, "Q4_0", kQK, sizeof(BlockQ4_0), true},
    {GgmlType::Q4_1, "Q4_1", kQK, sizeof(BlockQ4_1), true},
    {GgmlType::Q5_0, "Q5_0", kQK, sizeof(BlockQ5_0), true},
    {GgmlType::Q5_1, "Q5_1", kQK, sizeof(BlockQ5_1), true},
    {GgmlType::Q8_0, "Q8_0", kQK, sizeof(BlockQ8_0), true},
    {GgmlType::Q8_1, "Q8_1", kQK, sizeof(BlockQ8_1), false},
    {GgmlType::Q2_K, "Q2_K", kQKK, 84, false},
    {GgmlType::Q3_K, "Q3_K", kQKK, 110, false},
    {GgmlType::Q4_K, "Q4_K", kQKK, sizeof(BlockQ4_K), true},
    {GgmlType::Q5_K, "Q5_K", kQKK, sizeof(BlockQ5_K), true},
    {GgmlType::Q6_K, "Q6_K", kQKK, sizeof(BlockQ6_K), true},
    {GgmlType::Q8_K, "Q8_K", kQKK, 292, false},
    {GgmlType::BF16, "BF16", 1, 2, true},
};

// ggml's other type numbers, for error messages only (4 and 5 were Q4_2 / Q4_3, removed).
const char* other_type_name(uint32_t t) {
  switch (t) {
    case 4:
      return "Q4_2 (removed from ggml)";
    case 5:
      return "Q4_3 (removed from ggml)";
    case 16:
      return "IQ2_XXS";
    case 17:
      return "IQ2_XS";
    case 18:
      return "IQ3_XXS";
    case 19:
      return "IQ1_S";
    case 20:
      return "IQ4_NL";
    case 21:
      return "IQ3_S";
    case 22:
      return "IQ2_S";
    case 23:
      return "IQ4_XS";
    case 24:
      return "I8";
    case 25:
      return "I16";
    case 26:
      return "I32";
    case 27:
      return "I64";
    case 28:
      return "F64";
    case 29:
      return "IQ1_M";
    case 31:
      return "Q4_0_4_4 (removed from ggml)";
    case 32:
      return "Q4_0_4_8 (removed from ggml)";
    case 33:
      return "Q4_0_8_8 (removed from ggml)";
    case 34:
      return "TQ1_0";
    case 35:
      return "TQ2_0";
    default:
      return "unknown";
  }
}

const TypeInfo& info(GgmlType t) {
  for (const TypeInfo& i : kTypes)
    if (i.type == t) return i;
  fail("ggml type ", ggml_type_name(t), " (", static_cast<uint32_t>(t),
       ") is not one llmkit reads");
}

// ---- portable block decoders: y[0..block) from one block at b --------------------------------

void block_q4_0(const uint8_t* __restrict b, float* __restrict y) {
  const float d = load_fp16(b);
  const uint8_t* qs = b + 2;
  for (int j = 0; j < 16; ++j) {
    y[j] = static_cast<float>((qs[j] & 0xF) - 8) * d;
    y[j + 16] = static_cast<float>((qs[j] >> 4) - 8) * d;
  }
}

void block_q4_1(const uint8_t* __restrict b, float* __restrict y) {
  const float d = load_fp16(b), m = load_fp16(b + 2);
  const uint8_t* qs = b + 4;
  for (int j = 0; j < 16; ++j) {
    y[j] = static_cast<float>(qs[j] & 0xF) * d + m;
    y[j + 16] = static_cast<float>(qs[j] >> 4) * d + m;
  }
}

void block_q5_0(const uint8_t* __restrict b, float* __restrict y) {
  const float d = load_fp16(b);
  uint32_t qh;
  std::memcpy(&qh, b + 2, 4);
  const uint8_t* qs = b + 6;
  for (int j = 0; j < 16; ++j) {
    const int h0 = static_cast<int>((qh >> j) << 4 & 0x10),
              h1 = static_cast<int>(qh >> (j + 12) & 0x10);
    y[j] = static_cast<float>(((qs[j] & 0xF) | h0) - 16) * d;
    y[j + 16] = static_cast<float>(((qs[j] >> 4) | h1) - 16) * d;
  }
}

void block_q5_1(const uint8_t* __restrict b, float* __restrict y) {
  const float d = load_fp16(b), m = load_fp16(b + 2);
  uint32_t qh;
  std::memcpy(&qh, b + 4, 4);
  const uint8_t* qs = b + 8;
  for (int j = 0; j < 16; ++j) {
    const int h0 = static_cast<int>((qh >> j) << 4 & 0x10),
              h1 = static_cast<int>(qh >> (j + 12) & 0x10);
    y[j] = static_cast<float>((qs[j] & 0xF) | h0) * d + m;
    y[j + 16] = static_cast<float>((qs[j] >> 4) | h1) * d + m;
  }
}

void block_q8_0(const uint8_t* __restrict b, float* __restrict y) {
  const float d = load_fp16(b);
  const int8_t* qs = reinterpret_cast<const int8_t*>(b + 2);
  for (int j = 0; j < 32; ++j) y[j] = static_cast<float>(qs[j]) * d;
}

// The 6-bit scale and minimum of sub-block j of a Q4_K / Q5_K super-block (get_scale_min_k4).
inline void scale_min_k4(int j, const uint8_t* q, int* sc, int* m) {
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

void block_q4_k(const uint8_t* __restrict b, float* __restrict y) {
  const float d = load_fp16(b), dmin = load_fp16(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* q = b + 16;
  for (int g = 0; g < 4; ++g, q += 32, y += 64) {
    int sc, m;
    scale_min_k4(2 * g, scales, &sc, &m);
    const float d1 = d * static_cast<float>(sc), m1 = dmin * static_cast<float>(m);
    scale_min_k4(2 * g + 1, scales, &sc, &m);
    const float d2 = d * static_cast<float>(sc), m2 = dmin * static_cast<float>(m);
    for (int l = 0; l < 32; ++l) y[l] = d1 * static_cast<float>(q[l] & 0xF) - m1;
    for (int l = 0; l < 32; ++l) y[l + 32] = d2 * static_cast<float>(q[l] >> 4) - m2;
  }
}

void block_q5_k(const uint8_t* __restrict b, float* __restrict y) {
  const float d = load_fp16(b), dmin = load_fp16(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* qh = b + 16;
  const uint8_t* ql = b + 48;
  for (int g = 0; g < 4; ++g, ql += 32, y += 64) {
    int sc, m;
    scale_min_k4(2 * g, scales, &sc, &m);
    const float d1 = d * static_cast<float>(sc), m1 = dmin * static_cast<float>(m);
    scale_min_k4(2 * g + 1, scales, &sc, &m);
    const float d2 = d * static_cast<float>(sc), m2 = dmin * static_cast<float>(m);
    const int s1 = 2 * g, s2 = 2 * g + 1;  // qh bits of the two sub-blocks
    for (int l = 0; l < 32; ++l)
      y[l] = d1 * static_cast<float>((ql[l] & 0xF) | ((qh[l] >> s1) & 1) << 4) - m1;
    for (int l = 0; l < 32; ++l)
      y[l + 32] = d2 * static_cast<float>((ql[l] >> 4) | ((qh[l] >> s2) & 1) << 4) - m2;
  }
}

void block_q6_k(const uint8_t* __restrict b, float* __restrict y) {
  const float d = load_fp16(b + 208);
  const uint8_t* ql = b;
  const uint8_t* qh = b + 128;
  const int8_t* sc = reinterpret_cast<const int8_t*>(b + 192);
  // ggml's loop computes the four outputs l, l+32, l+64, l+96 together; here each run of 16
  // outputs (one scale) is its own loop, which the compiler vectorises. Same values.
  for (int h = 0; h < 2; ++h, ql += 64, qh += 32, sc += 8, y += 128) {
    for (int part = 0; part < 4; ++part) {  // outputs 32 * part + l, l < 32
      const uint8_t* lo = ql + (part % 2) * 32;
      const int nibble = (part / 2) * 4, high = 2 * part;
      for (int k = 0; k < 2; ++k) {
        const float s = d * static_cast<float>(sc[2 * part + k]);
        for (int l = 16 * k; l < 16 * k + 16; ++l) {
          const int q = (((lo[l] >> nibble) & 0xF) | ((qh[l] >> high) & 3) << 4) - 32;
          y[32 * part + l] = s * static_cast<float>(q);
        }
      }
    }
  }
}

using BlockFn = void (*)(const uint8_t*, float*);

template <BlockFn F>
void blocks(const uint8_t* src, float* dst, int64_t nb, size_t bytes, int64_t block) {
  for (int64_t i = 0; i < nb; ++i) F(src + i * bytes, dst + i * block);
}

void row_f16(const uint8_t* src, float* dst, int64_t n) {
  int64_t i = 0;
#if defined(LLMKIT_QUANT_AVX512)
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(
        dst + i,
        _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + 2 * i))));
#elif defined(__F16C__) && defined(__AVX__)
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(
        dst + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 2 * i))));
#endif
  for (; i < n; ++i) dst[i] = load_fp16(src + 2 * i);
}

void row_bf16(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {  // vectorised by the compiler
    uint16_t h;
    std::memcpy(&h, src + 2 * i, 2);
    const uint32_t u = static_cast<uint32_t>(h) << 16;
    std::memcpy(dst + i, &u, 4);
  }
}

#if defined(LLMKIT_QUANT_AVX512)

// 16 bytes -> 16 int32 lanes.
inline __m512i widen_u8(__m128i v) {
  return _mm512_cvtepu8_epi32(v);
}

void row_q8_0_avx512(const uint8_t* src, float* dst, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, src += sizeof(BlockQ8_0), dst += kQK) {
    const __m512 d = _mm512_set1_ps(load_fp16(src));
    for (int k = 0; k < 2; ++k) {
      const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 2 + 16 * k));
      _mm512_storeu_ps(dst + 16 * k, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q)), d));
    }
  }
}

// Q4_0 / Q4_1 / Q5_0 / Q5_1: lanes 0-15 from the low nibbles, 16-31 from the high ones; `bias`
// is subtracted from q (8 / 16 for the symmetric types, 0 for the ones with a minimum).
template <bool kMin, bool kFive>
void row_q4q5_avx512(const uint8_t* src, float* dst, int64_t nb, size_t bytes) {
  const __m128i low4 = _mm_set1_epi8(0xF);
  const __m512i bias = _mm512_set1_epi32(kMin ? 0 : (kFive ? 16 : 8));
  const __m512i sixteen = _mm512_set1_epi32(16);
  const int qs_at = (kMin ? 4 : 2) + (kFive ? 4 : 0);
  for (int64_t i = 0; i < nb; ++i, src += bytes, dst += kQK) {
    const __m512 d = _mm512_set1_ps(load_fp16(src));
    const __m512 m = _mm512_set1_ps(kMin ? load_fp16(src + 2) : 0.0f);
    const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + qs_at));
    __m512i q[2] = {widen_u8(_mm_and_si128(raw, low4)),
                    widen_u8(_mm_and_si128(_mm_srli_epi16(raw, 4), low4))};
    if constexpr (kFive) {
      uint32_t qh;
      std::memcpy(&qh, src + (kMin ? 4 : 2), 4);
      q[0] = _mm512_mask_add_epi32(q[0], static_cast<__mmask16>(qh), q[0], sixteen);
      q[1] = _mm512_mask_add_epi32(q[1], static_cast<__mmask16>(qh >> 16), q[1], sixteen);
    }
    for (int k = 0; k < 2; ++k) {
      __m512 y = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(q[k], bias)), d);
      if constexpr (kMin) y = _mm512_add_ps(y, m);
      _mm512_storeu_ps(dst + 16 * k, y);
    }
  }
}

// Q4_K / Q5_K: y = d_i * q - m_i per sub-block of 32 (two 16-lane halves).
template <bool kFive>
void row_q4k_q5k_avx512(const uint8_t* src, float* dst, int64_t nb) {
  const size_t bytes = kFive ? sizeof(BlockQ5_K) : sizeof(BlockQ4_K);
  const __m128i low4 = _mm_set1_epi8(0xF);
  const __m128i one = _mm_set1_epi8(1);
  for (int64_t i = 0; i < nb; ++i, src += bytes) {
    const float d = load_fp16(src), dmin = load_fp16(src + 2);
    const uint8_t* scales = src + 4;
    const uint8_t* qh = src + 16;
    const uint8_t* q = src + (kFive ? 48 : 16);
    for (int s = 0; s < 8; ++s, dst += 32) {  // sub-block s: nibble s % 2 of group s / 2
      int sc, m;
      scale_min_k4(s, scales, &sc, &m);
      const __m512 ds = _mm512_set1_ps(d * static_cast<float>(sc));
      const __m512 ms = _mm512_set1_ps(dmin * static_cast<float>(m));
      const uint8_t* g = q + 32 * (s / 2);
      for (int k = 0; k < 2; ++k) {
        __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(g + 16 * k));
        if (s % 2) raw = _mm_srli_epi16(raw, 4);
        raw = _mm_and_si128(raw, low4);
        if constexpr (kFive) {
          __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qh + 16 * k));
          h = _mm_and_si128(_mm_srl_epi16(h, _mm_cvtsi32_si128(s)), one);
          raw = _mm_or_si128(raw, _mm_slli_epi16(h, 4));
        }
        const __m512 qf = _mm512_cvtepi32_ps(widen_u8(raw));
        _mm512_storeu_ps(dst + 16 * k, _mm512_sub_ps(_mm512_mul_ps(ds, qf), ms));
      }
    }
  }
}

// Q6_K: each 16-lane piece of the output is one sub-block with one scale.
void row_q6k_avx512(const uint8_t* src, float* dst, int64_t nb) {
  const __m128i low4 = _mm_set1_epi8(0xF), three = _mm_set1_epi8(3);
  const __m512i bias = _mm512_set1_epi32(32);
  for (int64_t i = 0; i < nb; ++i, src += sizeof(BlockQ6_K)) {
    const float d = load_fp16(src + 208);
    const int8_t* sc = reinterpret_cast<const int8_t*>(src + 192);
    for (int h = 0; h < 2; ++h, dst += 128) {
      const uint8_t* ql = src + 64 * h;
      const uint8_t* qh = src + 128 + 32 * h;
      for (int part = 0; part < 4; ++part) {  // outputs 32 * part .. + 32
        const uint8_t* lo = ql + (part % 2) * 32;
        for (int k = 0; k < 2; ++k) {
          __m128i l = _mm_loadu_si128(reinterpret_cast<const __m128i*>(lo + 16 * k));
          if (part >= 2) l = _mm_srli_epi16(l, 4);
          l = _mm_and_si128(l, low4);
          __m128i hb = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qh + 16 * k));
          hb = _mm_and_si128(_mm_srl_epi16(hb, _mm_cvtsi32_si128(2 * part)), three);
          const __m128i q = _mm_or_si128(l, _mm_slli_epi16(hb, 4));
          const __m512i qi = _mm512_sub_epi32(widen_u8(q), bias);
          const __m512 ds = _mm512_set1_ps(d * static_cast<float>(sc[8 * h + 2 * part + k]));
          _mm512_storeu_ps(dst + 32 * part + 16 * k, _mm512_mul_ps(ds, _mm512_cvtepi32_ps(qi)));
        }
      }
    }
  }
}

#endif  // LLMKIT_QUANT_AVX512

#if defined(LLMKIT_QUANT_AVX2)

// AVX2 (no AVX-512): the 32-element types and Q6_K, whose generic loops the compiler vectorises
// poorly with 8 lanes; 8 outputs per step, the same arithmetic as above.

// Lanes 8 * part .. + 8 of 16 bytes, widened to int32.
inline __m256i widen8_u8(__m128i v, int part) {
  return _mm256_cvtepu8_epi32(part == 0 ? v : _mm_srli_si128(v, 8));
}

void row_q8_0_avx2(const uint8_t* src, float* dst, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, src += sizeof(BlockQ8_0), dst += kQK) {
    const __m256 d = _mm256_set1_ps(load_fp16(src));
    for (int k = 0; k < 4; ++k) {
      const __m128i q = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(src + 2 + 8 * k));
      _mm256_storeu_ps(dst + 8 * k, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q)), d));
    }
  }
}

template <bool kMin, bool kFive>
void row_q4q5_avx2(const uint8_t* src, float* dst, int64_t nb, size_t bytes) {
  const __m128i low4 = _mm_set1_epi8(0xF);
  const __m256i bias = _mm256_set1_epi32(kMin ? 0 : (kFive ? 16 : 8));
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), one = _mm256_set1_epi32(1);
  const int qs_at = (kMin ? 4 : 2) + (kFive ? 4 : 0);
  for (int64_t i = 0; i < nb; ++i, src += bytes, dst += kQK) {
    const __m256 d = _mm256_set1_ps(load_fp16(src));
    const __m256 m = _mm256_set1_ps(kMin ? load_fp16(src + 2) : 0.0f);
    const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + qs_at));
    const __m128i nib[2] = {_mm_and_si128(raw, low4), _mm_and_si128(_mm_srli_epi16(raw, 4), low4)};
    uint32_t qh = 0;
    if constexpr (kFive) std::memcpy(&qh, src + (kMin ? 4 : 2), 4);
    for (int k = 0; k < 4; ++k) {  // outputs 8k .. 8k + 8
      __m256i q = widen8_u8(nib[k / 2], k % 2);
      if constexpr (kFive) {  // bit 8k + lane of qh -> 16
        const __m256i h =
            _mm256_srlv_epi32(_mm256_set1_epi32(static_cast<int>(qh >> (8 * k))), lane);
        q = _mm256_or_si256(q, _mm256_slli_epi32(_mm256_and_si256(h, one), 4));
      }
      __m256 y = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(q, bias)), d);
      if constexpr (kMin) y = _mm256_add_ps(y, m);
      _mm256_storeu_ps(dst + 8 * k, y);
    }
  }
}

void row_q6k_avx2(const uint8_t* src, float* dst, int64_t nb) {
  const __m128i low4 = _mm_set1_epi8(0xF), three = _mm_set1_epi8(3);
  const __m256i bias = _mm256_set1_epi32(32);
  for (int64_t i = 0; i < nb; ++i, src += sizeof(BlockQ6_K)) {
    const float d = load_fp16(src + 208);
    const int8_t* sc = reinterpret_cast<const int8_t*>(src + 192);
    for (int h = 0; h < 2; ++h, dst += 128) {
      const uint8_t* ql = src + 64 * h;
      const uint8_t* qh = src + 128 + 32 * h;
      for (int part = 0; part < 4; ++part) {
        const uint8_t* lo = ql + (part % 2) * 32;
        for (int k = 0; k < 2; ++k) {  // 16 outputs, one scale
          __m128i l = _mm_loadu_si128(reinterpret_cast<const __m128i*>(lo + 16 * k));
          if (part >= 2) l = _mm_srli_epi16(l, 4);
          l = _mm_and_si128(l, low4);
          __m128i hb = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qh + 16 * k));
          hb = _mm_and_si128(_mm_srl_epi16(hb, _mm_cvtsi32_si128(2 * part)), three);
          const __m128i q = _mm_or_si128(l, _mm_slli_epi16(hb, 4));
          const __m256 ds = _mm256_set1_ps(d * static_cast<float>(sc[8 * h + 2 * part + k]));
          for (int e = 0; e < 2; ++e) {
            const __m256i qi = _mm256_sub_epi32(widen8_u8(q, e), bias);
            _mm256_storeu_ps(dst + 32 * part + 16 * k + 8 * e,
                             _mm256_mul_ps(ds, _mm256_cvtepi32_ps(qi)));
          }
        }
      }
    }
  }
}

#endif  // LLMKIT_QUANT_AVX2

}  // namespace

const char* ggml_type_name(GgmlType t) {
  for (const TypeInfo& i : kTypes)
    if (i.type == t) return i.name;
  return other_type_name(static_cast<uint32_t>(t));
}

bool ggml_type_known(uint32_t t) {
  for (const TypeInfo& i : kTypes)
    if (static_cast<uint32_t>(i.type) == t) return true;
  return false;
}

bool ggml_can_dequantize(GgmlType t) {
  for (const TypeInfo& i : kTypes)
    if (i.type == t) return i.dequant;
  return false;
}

int64_t ggml_block_size(GgmlType t) {
  return info(t).block;
}
size_t ggml_type_size(GgmlType t) {
  return info(t).bytes;
}

size_t ggml_row_size(GgmlType t, int64_t n) {
  const TypeInfo& ti = info(t);
  if (n < 0 || n % ti.block != 0)
    fail("ggml type ", ti.name, ": a row of ", n, " elements is not a whole number of ", ti.block,
         "-element blocks");
  const auto blocks = static_cast<size_t>(n / ti.block);
  if (blocks > SIZE_MAX / ti.bytes)
    fail("ggml type ", ti.name, ": a row of ", n, " elements does not fit in memory");
  return blocks * ti.bytes;
}

namespace {

// The checks both entry points share; returns the number of blocks.
int64_t check_dequantize(const TypeInfo& ti, int64_t n) {
  if (!ti.dequant)
    fail("dequantize: ggml type ", ti.name,
         " is not supported (llmkit dequantises F32, F16, BF16, ",
         "Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K)");
  return static_cast<int64_t>(ggml_row_size(ti.type, n) / ti.bytes);
}

}  // namespace

void dequantize_row_generic(GgmlType t, const void* src_, float* dst, int64_t n) {
  const TypeInfo& ti = info(t);
  const int64_t nb = check_dequantize(ti, n);
  const auto* src = static_cast<const uint8_t*>(src_);
  switch (t) {
    case GgmlType::F32:
      if (n > 0) std::memcpy(dst, src, static_cast<size_t>(n) * 4);
      return;
    case GgmlType::F16:
      return row_f16(src, dst, n);
    case GgmlType::BF16:
      return row_bf16(src, dst, n);
    case GgmlType::Q8_0:
      return blocks<block_q8_0>(src, dst, nb, ti.bytes, ti.block);
    case GgmlType::Q4_0:
      return blocks<block_q4_0>(src, dst, nb, ti.bytes, ti.block);
    case GgmlType::Q4_1:
      return blocks<block_q4_1>(src, dst, nb, ti.bytes, ti.block);
    case GgmlType::Q5_0:
      return blocks<block_q5_0>(src, dst, nb, ti.bytes, ti.block);
    case GgmlType::Q5_1:
      return blocks<block_q5_1>(src, dst, nb, ti.bytes, ti.block);
    case GgmlType::Q4_K:
      return blocks<block_q4_k>(src, dst, nb, ti.bytes, ti.block);
    case GgmlType::Q5_K:
      return blocks<block_q5_k>(src, dst, nb, ti.bytes, ti.block);
    case GgmlType::Q6_K:
      return blocks<block_q6_k>(src, dst, nb, ti.bytes, ti.block);
    default:
      break;
  }
  fail("dequantize: internal: no kernel for ", ti.name);
}

void dequantize_row(GgmlType t, const void* src_, float* dst, int64_t n) {
#if defined(LLMKIT_QUANT_AVX512)
  const TypeInfo& ti = info(t);
  const int64_t nb = check_dequantize(ti, n);
  const auto* src = static_cast<const uint8_t*>(src_);
  switch (t) {
    case GgmlType::Q8_0:
      return row_q8_0_avx512(src, dst, nb);
    case GgmlType::Q4_0:
      return row_q4q5_avx512<false, false>(src, dst, nb, ti.bytes);
    case GgmlType::Q4_1:
      return row_q4q5_avx512<true, false>(src, dst, nb, ti.bytes);
    case GgmlType::Q5_0:
      return row_q4q5_avx512<false, true>(src, dst, nb, ti.bytes);
    case GgmlType::Q5_1:
      return row_q4q5_avx512<true, true>(src, dst, nb, ti.bytes);
    case GgmlType::Q4_K:
      return row_q4k_q5k_avx512<false>(src, dst, nb);
    case GgmlType::Q5_K:
      return row_q4k_q5k_avx512<true>(src, dst, nb);
    case GgmlType::Q6_K:
      return row_q6k_avx512(src, dst, nb);
    default:
      break;  // F32, F16, BF16: the generic rows are already vectorised
  }
#elif defined(LLMKIT_QUANT_AVX2)
  const TypeInfo& ti = info(t);
  const int64_t nb = check_dequantize(ti, n);
  const auto* src = static_cast<const uint8_t*>(src_);
  switch (t) {
    case GgmlType::Q8_0:
      return row_q8_0_avx2(src, dst, nb);
    case GgmlType::Q4_0:
      return row_q4q5_avx2<false, false>(src, dst, nb, ti.bytes);
    case GgmlType::Q4_1:
      return row_q4q5_avx2<true, false>(src, dst, nb, ti.bytes);
    case GgmlType::Q5_0:
      return row_q4q5_avx2<false, true>(src, dst, nb, ti.bytes);
    case GgmlType::Q5_1:
      return row_q4q5_avx2<true, true>(src, dst, nb, ti.bytes);
    case GgmlType::Q6_K:
      return row_q6k_avx2(src, dst, nb);
    default:
      break;  // the generic loops vectorise well enough for the others
  }
#endif
  dequantize_row_generic(t, src_, dst, n);
}

bool dequantize_row_is_vectorised() {
#if defined(LLMKIT_QUANT_AVX512) || defined(LLMKIT_QUANT_AVX2)
  return true;
#else
  return false;
#endif
}

}  // namespace llmkit::kernels
