// The AVX-512 kernels of qmatmul (qmatmul.h): VNNI (vpdpbusd / vpdpwssd) integer dot products
// for the block types, F16C + FMA for f16, vdpbf16ps for bf16, FMA for f32. Compiled when the
// target has AVX-512 F/BW/VL/VNNI/VBMI (and BF16 for the bf16 kernel); otherwise every entry
// point declines and qmatmul.cpp's portable code runs.
//
// Q4_0 ... Q8_0 (32-element blocks) go two blocks per 512-bit step. The activations are first
// rearranged into "pair panels" (PairX): the 64 quants of two blocks, each block's scale spread
// over its 8 int32 lanes, and a per-lane integer correction for the weight's bias (Q4_0: q - 8,
// Q5_0: q - 16, Q8_0: q + 128 to make it unsigned): vpdpbusd takes unsigned weights times signed
// activations, so sum (q - b) x = sum q x - b sum x, and -b * sum x (per 4-byte lane) starts the
// accumulator. Q4_1 / Q5_1 keep their d * sum(q x) + m * s form; the m * s terms go 16 blocks
// at a time (minimums gathered from the weight row, each block's s stored after the pairs).
// The K-quants read Q8_K blocks as ggml lays them out: 64 elements per step, vpmaddubsw pairs
// then vpdpwssd by the 6-bit (Q4_K / Q5_K) or int8 (Q6_K) sub-block scales, the minimums (and
// Q6_K's bias 32) through the activations' bsums.
//
// Tiles: R weight rows x T tokens per call of a kernel; each output is computed by the same
// instruction sequence in every tile shape (its own accumulator, the blocks in order, one final
// reduction), so results do not depend on the tiling or on how rows are split among threads.
// CPUs with AVX2 but not this set get qmatmul_avx2.cpp instead.
#include "llmkit/kernels/cpu/qmatmul_kernels.h"

#if defined(LLMKIT_QMATMUL_AVX512)

#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "llmkit/core/error.h"

// Products and sums are explicit intrinsics; keep the few scalar float expressions unfused so
// every tile shape rounds alike.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif
// GCC 12's intrinsic headers start some casts and conversions from _mm*_undefined_*(), which its
// flow analysis reports as uninitialised when inlined (a false positive, as in quant.cpp).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace llmkit::kernels::detail {
namespace {

// ---- activations ------------------------------------------------------------------------------

// One Q8_0 / Q8_1 block of 32 floats, exactly as the portable quantize_q8_0_1: d = amax / 127,
// q = x * (127 / amax) rounded to nearest even (cvtps2dq under the default MXCSR rounding).
struct Q8Block {
  float d;      // unrounded scale (Q8_1's s is computed from it)
  uint16_t dh;  // fp16 scale as stored
  int sum;      // sum of the quants
};

inline Q8Block q8_block(const float* x, int8_t* q) {
  const __m512 a = _mm512_loadu_ps(x), b = _mm512_loadu_ps(x + 16);
  const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(a), _mm512_abs_ps(b)));
  const float d = amax / 127.0f;
  const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
  const __m512 vid = _mm512_set1_ps(id);
  const __m512i qa = _mm512_cvtps_epi32(_mm512_mul_ps(a, vid));
  const __m512i qb = _mm512_cvtps_epi32(_mm512_mul_ps(b, vid));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(q), _mm512_cvtsepi32_epi8(qa));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(q + 16), _mm512_cvtsepi32_epi8(qb));
  return {d, _cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT),
          _mm512_reduce_add_epi32(_mm512_add_epi32(qa, qb))};
}

// One Q8_K block of 256 floats, as the portable quantize_q8_k.
void q8k_block(const float* x, BlockQ8_K* y) {
  __m512 m = _mm512_setzero_ps();
  for (int i = 0; i < 16; ++i) m = _mm512_max_ps(m, _mm512_abs_ps(_mm512_loadu_ps(x + 16 * i)));
  const float amax = _mm512_reduce_max_ps(m);
  if (amax == 0.0f) {
    std::memset(y, 0, sizeof(BlockQ8_K));
    return;
  }
  float max = 0.0f;  // the first element of largest magnitude, with its sign
  for (int i = 0; i < 16; ++i) {
    const __mmask16 k = _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_loadu_ps(x + 16 * i)),
                                           _mm512_set1_ps(amax), _CMP_EQ_OQ);
    if (k) {
      max = x[16 * i + __builtin_ctz(k)];
      break;
    }
  }
  const float iscale = -127.0f / max;
  const __m512 vs = _mm512_set1_ps(iscale);
  for (int i = 0; i < 16; ++i) {
    __m512i q = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + 16 * i), vs));
    q = _mm512_min_epi32(q, _mm512_set1_epi32(127));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y->qs + 16 * i), _mm512_cvtsepi32_epi8(q));
    y->bsums[i] = static_cast<int16_t>(_mm512_reduce_add_epi32(q));
  }
  y->d = 1.0f / iscale;
}

// f32 -> bf16 bits, round to nearest even, NaN kept quiet: as float_to_bf16 (core/dtype.h).
inline __m256i to_bf16(__m512 v) {
  const __m512i u = _mm512_castps_si512(v);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  __m512i r =
      _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7fff)), lsb), 16);
  const __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)),
                                                _mm512_set1_epi32(0x7f800000));
  r = _mm512_mask_or_epi32(r, nan, _mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40));
  return _mm512_cvtepi32_epi16(r);
}

inline __mmask16 tail16(int64_t left) {
  return left >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << left) - 1);
}

// ---- pair panels for the 32-element block types ------------------------------------------------

struct alignas(64) PairX {
  int8_t x[64];   // quants of blocks 2p (0..31) and 2p + 1 (32..63)
  float dx[16];   // their scales, lanes 0-7 and 8-15
  int32_t c[16];  // -bias * (sum of the 4 quants of the lane); 0 for Q8_1
};
// A token's panel row: the pairs, then (Q8_1) each block's s, zero-padded to 16 blocks.
inline int64_t panel_pairs(int64_t nblocks) {
  return (nblocks + 1) / 2;
}
inline float* panel_s(PairX* row, int64_t nblocks) {
  return reinterpret_cast<float*>(row + panel_pairs(nblocks));
}
inline const float* panel_s(const PairX* row, int64_t nblocks) {
  return reinterpret_cast<const float*>(row + panel_pairs(nblocks));
}
inline int64_t round16(int64_t n) {
  return (n + 15) / 16 * 16;
}

// bias: 8, 16 or 128 (Q4_0, Q5_0, Q8_0), 0 for the types with a minimum (q81: s after the pairs).
void panel_from_q8(const uint8_t* xq, bool q81, int64_t nblocks, int bias, PairX* out) {
  if (q81) std::memset(panel_s(out, nblocks), 0, sizeof(float) * round16(nblocks));
  const size_t bs = q81 ? sizeof(BlockQ8_1) : sizeof(BlockQ8_0);
  const size_t qoff = q81 ? 4 : 2;
  for (int64_t p = 0; p < (nblocks + 1) / 2; ++p) {
    PairX& o = out[p];
    std::memset(&o, 0, sizeof o);
    for (int h = 0; h < 2 && 2 * p + h < nblocks; ++h) {
      const uint8_t* b = xq + (2 * p + h) * bs;
      uint16_t dh, sh;
      std::memcpy(&dh, b, 2);
      std::memcpy(o.x + 32 * h, b + qoff, 32);
      const float d = _cvtsh_ss(dh);
      for (int l = 0; l < 8; ++l) o.dx[8 * h + l] = d;
      if (q81) {
        std::memcpy(&sh, b + 2, 2);
        panel_s(out, nblocks)[2 * p + h] = _cvtsh_ss(sh);
      }
    }
    if (bias != 0) {
      const __m512i sums =
          _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8(1), _mm512_load_si512(o.x));
      _mm512_store_si512(o.c, _mm512_mullo_epi32(sums, _mm512_set1_epi32(-bias)));
    }
  }
}

// The same straight from f32: quantise (bytes as quantize_activations) into the panel.
void panel_from_f32(const float* x, bool q81, int64_t nblocks, int bias, PairX* out) {
  if (q81) std::memset(panel_s(out, nblocks), 0, sizeof(float) * round16(nblocks));
  for (int64_t p = 0; p < (nblocks + 1) / 2; ++p) {
    PairX& o = out[p];
    std::memset(&o, 0, sizeof o);
    for (int h = 0; h < 2 && 2 * p + h < nblocks; ++h) {
      const Q8Block q = q8_block(x + 32 * (2 * p + h), o.x + 32 * h);
      const float d = _cvtsh_ss(q.dh);
      for (int l = 0; l < 8; ++l) o.dx[8 * h + l] = d;
      if (q81)
        panel_s(out, nblocks)[2 * p + h] =
            _cvtsh_ss(_cvtss_sh(q.d * static_cast<float>(q.sum), _MM_FROUND_TO_NEAREST_INT));
    }
    if (bias != 0) {
      const __m512i sums =
          _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8(1), _mm512_load_si512(o.x));
      _mm512_store_si512(o.c, _mm512_mullo_epi32(sums, _mm512_set1_epi32(-bias)));
    }
  }
}

// ---- weight loaders for two 32-element blocks --------------------------------------------------
// Each produces the 64 unsigned quants in the panel's order, the 16 lane scales (fp16 -> f32)
// and, for the types with a minimum, the minimums in lanes 0-7 / 8-15.

constexpr __mmask64 bytes_mask(int n) {
  return n >= 64 ? ~__mmask64{0} : ((__mmask64{1} << n) - 1);
}

template <int kBB, int kQs, int kM, int kQh, int kBias>
struct Small {
  static constexpr int kBlockBytes = kBB;
  static constexpr int bias = kBias;
  static constexpr bool has_min = kM >= 0;
  static constexpr int kMinOffset = kM;

  struct Consts {
    __m512i idx_q, idx_d, low4, bit4;
    Consts() {
      alignas(64) uint8_t q[64];
      alignas(64) uint16_t d[32];
      for (int i = 0; i < 64; ++i) q[i] = static_cast<uint8_t>((i < 32 ? 0 : kBB) + kQs + (i % 16));
      for (int i = 0; i < 32; ++i) {
        d[i] = static_cast<uint16_t>(i < 8 ? 0 : kBB / 2);
      }
      idx_q = _mm512_load_si512(q);
      idx_d = _mm512_load_si512(d);
      low4 = _mm512_set1_epi8(0x0F);
      bit4 = _mm512_set1_epi8(0x10);
    }
  };

  template <bool two>
  static inline void load(const Consts& k, const uint8_t* p, __m512i& q, __m512& d) {
    const __m512i raw = _mm512_maskz_loadu_epi8(two ? bytes_mask(2 * kBB) : bytes_mask(kBB), p);
    __m512i t = _mm512_permutexvar_epi8(k.idx_q, raw);
    t = _mm512_mask_srli_epi16(t, 0xFF00FF00u, t, 4);  // bytes 16-31, 48-63: high nibbles
    q = _mm512_and_si512(t, k.low4);
    if constexpr (kQh >= 0) {
      uint32_t ha, hb = 0;
      std::memcpy(&ha, p + kQh, 4);
      if constexpr (two) std::memcpy(&hb, p + kBB + kQh, 4);
      // bit 4 is clear: adding 16 sets it (there is no byte-masked OR).
      q = _mm512_mask_add_epi8(q, _cvtu64_mask64(ha | static_cast<uint64_t>(hb) << 32), q, k.bit4);
    }
    d = _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutexvar_epi16(k.idx_d, raw)));
  }
};

using KQ4_0 = Small<18, 2, -1, -1, 8>;
using KQ4_1 = Small<20, 4, 2, -1, 0>;
using KQ5_0 = Small<22, 6, -1, 2, 16>;
using KQ5_1 = Small<24, 8, 2, 4, 0>;

// Q8_0: 68 bytes a pair, signed quants made unsigned by +128 (bias 128 in the panel).
struct KQ8_0 {
  static constexpr int kBlockBytes = 34;
  static constexpr int bias = 128;
  static constexpr bool has_min = false;
  static constexpr int kMinOffset = -1;
  struct Consts {
    __m512i idx_d, flip;
    Consts() {
      alignas(64) uint16_t d[32];
      for (int i = 0; i < 32; ++i) d[i] = static_cast<uint16_t>(i < 8 ? 0 : 17);
      idx_d = _mm512_load_si512(d);
      flip = _mm512_set1_epi8(static_cast<char>(0x80));
    }
  };
  template <bool two>
  static inline void load(const Consts& k, const uint8_t* p, __m512i& q, __m512& d) {
    const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 2));
    // A pair is 68 bytes: with two blocks, plain loads stay inside it.
    const __m256i b =
        two ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 36)) : _mm256_setzero_si256();
    q = _mm512_xor_si512(_mm512_inserti64x4(_mm512_castsi256_si512(a), b, 1), k.flip);
    const __m512i raw = two ? _mm512_loadu_si512(p) : _mm512_maskz_loadu_epi8(0x3, p);
    d = _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutexvar_epi16(k.idx_d, raw)));
  }
};

// R rows x T tokens of a 32-element block type: out[r * T + t].
template <class K, int R, int T>
void tile_small(const typename K::Consts& k, const uint8_t* const* w, const PairX* const* x,
                int64_t nblocks, float* out) {
  __m512 acc[R][T];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) acc[r][t] = _mm512_setzero_ps();
  // Pair p (blocks 2p and 2p + 1; kTwo = false: the last block alone).
  auto step = [&]<bool kTwo>(int64_t p) {
    __m512i q[R];
    __m512 d[R];
    for (int r = 0; r < R; ++r)
      K::template load<kTwo>(k, w[r] + p * 2 * K::kBlockBytes, q[r], d[r]);
    for (int t = 0; t < T; ++t) {
      const PairX& xp = x[t][p];
      const __m512i xv = _mm512_load_si512(xp.x);
      const __m512 dx = _mm512_load_ps(xp.dx);
      const __m512i c = _mm512_load_si512(xp.c);
      for (int r = 0; r < R; ++r) {
        const __m512i s = _mm512_dpbusd_epi32(c, q[r], xv);
        acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(d[r], dx), acc[r][t]);
      }
    }
  };
  for (int64_t p = 0; p < nblocks / 2; ++p) step.template operator()<true>(p);
  if (nblocks % 2 != 0) step.template operator()<false>(nblocks / 2);
  if constexpr (K::has_min) {
    // sum over blocks of m * s, 16 blocks at a time: the minimums gathered (4 bytes from each
    // block's m field, which lies inside the block), the s values contiguous in the panel.
    const __m512i idx =
        _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                           _mm512_set1_epi32(K::kBlockBytes));
    for (int64_t b = 0; b < nblocks; b += 16) {
      const __mmask16 km = tail16(nblocks - b);
      for (int r = 0; r < R; ++r) {
        const __m512i raw = _mm512_mask_i32gather_epi32(
            _mm512_setzero_si512(), km, idx, w[r] + b * K::kBlockBytes + K::kMinOffset, 1);
        const __m512 m = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(raw));
        for (int t = 0; t < T; ++t)
          acc[r][t] = _mm512_fmadd_ps(m, _mm512_loadu_ps(panel_s(x[t], nblocks) + b), acc[r][t]);
      }
    }
  }
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) out[r * T + t] = _mm512_reduce_add_ps(acc[r][t]);
}

// ---- K-quants
// -------------------------------------------------------------------------------------

// The 8 scales (words 0-7) and 8 minimums (words 8-15) of a Q4_K / Q5_K super-block as 16-bit
// words: the 12 packed bytes regrouped 32 bits at a time (see quant.h for the packing).
inline __m256i k4_scales(const uint8_t* s12) {
  uint32_t u[4];
  std::memcpy(u, s12, 12);
  const uint32_t m6 = 0x3f3f3f3f, m4 = 0x0f0f0f0f, m2 = 0x03030303;
  const uint32_t sc_lo = u[0] & m6;                                       // sc 0-3
  const uint32_t sc_hi = (u[2] & m4) | (((u[0] >> 6) & m2) << 4);         // sc 4-7
  const uint32_t mn_lo = u[1] & m6;                                       // m 0-3
  const uint32_t mn_hi = ((u[2] >> 4) & m4) | (((u[1] >> 6) & m2) << 4);  // m 4-7
  return _mm256_cvtepu8_epi16(_mm_set_epi32(static_cast<int>(mn_hi), static_cast<int>(mn_lo),
                                            static_cast<int>(sc_hi), static_cast<int>(sc_lo)));
}

struct KConsts {
  __m512i idx_sc[4];  // words: scale 2g x16, scale 2g+1 x16 (Q4_K / Q5_K)
  __m256i idx_min;    // words: m0 m0 m1 m1 ... m7 m7
  __m512i idx6[4];    // words: Q6_K scales 4c .. 4c+3, 8 each
  __m512i low4, sel_hi[4], b30;
  KConsts() {
    alignas(64) uint16_t a[32];
    for (int g = 0; g < 4; ++g) {
      for (int i = 0; i < 32; ++i) a[i] = static_cast<uint16_t>(2 * g + i / 16);
      idx_sc[g] = _mm512_load_si512(a);
      for (int i = 0; i < 32; ++i) a[i] = static_cast<uint16_t>(4 * g + i / 8);
      idx6[g] = _mm512_load_si512(a);
      alignas(64) uint8_t b[64];
      for (int i = 0; i < 64; ++i) b[i] = static_cast<uint8_t>(1u << (2 * g + i / 32));
      sel_hi[g] = _mm512_load_si512(b);
    }
    alignas(32) uint16_t mi[16];
    for (int i = 0; i < 16; ++i) mi[i] = static_cast<uint16_t>(8 + i / 2);
    idx_min = _mm256_load_si256(reinterpret_cast<const __m256i*>(mi));
    low4 = _mm512_set1_epi8(0x0F);
    b30 = _mm512_set1_epi8(0x30);
  }
};

inline __m512i load64(const void* p) {
  return _mm512_loadu_si512(p);
}

// Q4_K (five = false) / Q5_K, R = 1 row x T tokens.
template <bool kFive, int T>
void tile_q45k(const KConsts& k, const uint8_t* w, const BlockQ8_K* const* x, int64_t nsb,
               float* out) {
  __m512 acc[T], accm[T];
  for (int t = 0; t < T; ++t) acc[t] = accm[t] = _mm512_setzero_ps();
  constexpr size_t wb = kFive ? sizeof(BlockQ5_K) : sizeof(BlockQ4_K);
  for (int64_t b = 0; b < nsb; ++b, w += wb) {
    const __m512i sm = _mm512_castsi256_si512(k4_scales(w + 4));
    const __m256i mins = _mm256_permutexvar_epi16(k.idx_min, _mm512_castsi512_si256(sm));
    const uint8_t* ql = w + (kFive ? 48 : 16);
    __m512i qh2;
    if constexpr (kFive) {
      const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 16));
      qh2 = _mm512_inserti64x4(_mm512_castsi256_si512(h), h, 1);
    }
    __m512i isum[T];
    for (int t = 0; t < T; ++t) isum[t] = _mm512_setzero_si512();
    for (int g = 0; g < 4; ++g) {
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql + 32 * g));
      __m512i q = _mm512_inserti64x4(_mm512_castsi256_si512(v), _mm256_srli_epi16(v, 4), 1);
      q = _mm512_and_si512(q, k.low4);
      if constexpr (kFive)
        q = _mm512_mask_add_epi8(q, _mm512_test_epi8_mask(qh2, k.sel_hi[g]), q,
                                 _mm512_set1_epi8(0x10));
      const __m512i sc = _mm512_permutexvar_epi16(k.idx_sc[g], sm);
      for (int t = 0; t < T; ++t) {
        const __m512i p16 = _mm512_maddubs_epi16(q, load64(x[t][b].qs + 64 * g));
        isum[t] = _mm512_dpwssd_epi32(isum[t], p16, sc);
      }
    }
    const float dw = load_fp16(w);
    const float mw = load_fp16(w + 2);
    for (int t = 0; t < T; ++t) {
      const BlockQ8_K& xb = x[t][b];
      acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[t]), _mm512_set1_ps(dw * xb.d), acc[t]);
      const __m256i bs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb.bsums));
      const __m512i mm = _mm512_castsi256_si512(_mm256_madd_epi16(bs, mins));
      accm[t] =
          _mm512_mask_fmadd_ps(_mm512_cvtepi32_ps(mm), 0x00FF, _mm512_set1_ps(mw * xb.d), accm[t]);
    }
  }
  for (int t = 0; t < T; ++t)
    out[t] =
        _mm512_reduce_add_ps(acc[t]) - _mm512_reduce_add_ps(_mm512_maskz_mov_ps(0x00FF, accm[t]));
}

// Q6_K, R = 1 row x T tokens: q = 6 bits - 32; the -32 goes through the bsums.
template <int T>
void tile_q6k(const KConsts& k, const uint8_t* w, const BlockQ8_K* const* x, int64_t nsb,
              float* out) {
  __m512 acc[T];
  for (int t = 0; t < T; ++t) acc[t] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nsb; ++b, w += sizeof(BlockQ6_K)) {
    const __m512i sc16 = _mm512_castsi256_si512(
        _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 192))));
    __m512i isum[T];
    for (int t = 0; t < T; ++t) isum[t] = _mm512_setzero_si512();
    for (int h = 0; h < 2; ++h) {
      const __m512i ql = load64(w + 64 * h);
      const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 128 + 32 * h));
      const __m512i qhx =
          _mm512_inserti64x4(_mm512_castsi256_si512(qh), _mm256_srli_epi16(qh, 2), 1);
      // 0xCA: A ? B : C bitwise, with A = 0x0F: the nibble from ql, bits 4-5 from qh.
      const __m512i q0 = _mm512_ternarylogic_epi32(
          k.low4, ql, _mm512_and_si512(_mm512_slli_epi16(qhx, 4), k.b30), 0xCA);
      const __m512i q1 = _mm512_ternarylogic_epi32(k.low4, _mm512_srli_epi16(ql, 4),
                                                   _mm512_and_si512(qhx, k.b30), 0xCA);
      const __m512i s0 = _mm512_permutexvar_epi16(k.idx6[2 * h], sc16);
      const __m512i s1 = _mm512_permutexvar_epi16(k.idx6[2 * h + 1], sc16);
      for (int t = 0; t < T; ++t) {
        const int8_t* xq = x[t][b].qs + 128 * h;
        isum[t] = _mm512_dpwssd_epi32(isum[t], _mm512_maddubs_epi16(q0, load64(xq)), s0);
        isum[t] = _mm512_dpwssd_epi32(isum[t], _mm512_maddubs_epi16(q1, load64(xq + 64)), s1);
      }
    }
    const float dw = load_fp16(w + 208);
    for (int t = 0; t < T; ++t) {
      const BlockQ8_K& xb = x[t][b];
      const __m256i bs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb.bsums));
      const __m256i corr = _mm256_madd_epi16(bs, _mm512_castsi512_si256(sc16));  // 8 lanes
      const __m512i tot =
          _mm512_sub_epi32(isum[t], _mm512_zextsi256_si512(_mm256_slli_epi32(corr, 5)));
      acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(tot), _mm512_set1_ps(dw * xb.d), acc[t]);
    }
  }
  for (int t = 0; t < T; ++t) out[t] = _mm512_reduce_add_ps(acc[t]);
}

// ---- f16 / f32 / bf16
// ------------------------------------------------------------------------------ Activations: f32
// (F32, and F16's f16 values widened exactly), or bf16 bits.

template <bool kF16, int R, int T>
void tile_float(const uint8_t* const* w, const float* const* x, int64_t n, float* out) {
  __m512 acc[R][T];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) acc[r][t] = _mm512_setzero_ps();
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 km = tail16(n - i);
    __m512 wv[R];
    for (int r = 0; r < R; ++r)
      wv[r] = kF16 ? _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(km, w[r] + 2 * i))
                   : _mm512_maskz_loadu_ps(km, w[r] + 4 * i);
    for (int t = 0; t < T; ++t) {
      const __m512 xv = _mm512_maskz_loadu_ps(km, x[t] + i);
      for (int r = 0; r < R; ++r) acc[r][t] = _mm512_fmadd_ps(wv[r], xv, acc[r][t]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) out[r * T + t] = _mm512_reduce_add_ps(acc[r][t]);
}

#if defined(__AVX512BF16__)
template <int R, int T>
void tile_bf16(const uint8_t* const* w, const uint16_t* const* x, int64_t n, float* out) {
  __m512 acc[R][T];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) acc[r][t] = _mm512_setzero_ps();
  for (int64_t i = 0; i < n; i += 32) {
    const int64_t left = n - i;
    const __mmask32 km = left >= 32 ? ~__mmask32{0} : static_cast<__mmask32>((1u << left) - 1);
    __m512i wv[R];
    for (int r = 0; r < R; ++r) wv[r] = _mm512_maskz_loadu_epi16(km, w[r] + 2 * i);
    for (int t = 0; t < T; ++t) {
      const __m512i xv = _mm512_maskz_loadu_epi16(km, x[t] + i);
      for (int r = 0; r < R; ++r)
        acc[r][t] = _mm512_dpbf16_ps(acc[r][t], (__m512bh)wv[r], (__m512bh)xv);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) out[r * T + t] = _mm512_reduce_add_ps(acc[r][t]);
}
#endif

// ---- driver
// --------------------------------------------------------------------------------------

enum class Kind { kSmall, kK, kF32, kF16, kBF16, kNone };

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
#if defined(__AVX512BF16__)
    case GgmlType::BF16:
      return Kind::kBF16;
#endif
    default:
      return Kind::kNone;
  }
}

int bias_of(GgmlType t) {
  return t == GgmlType::Q4_0 ? 8 : t == GgmlType::Q5_0 ? 16 : t == GgmlType::Q8_0 ? 128 : 0;
}

// The activations of one call, ready for the tiles: row m of `stride` bytes at data + m * stride.
struct Panels {
  const uint8_t* data;
  size_t stride;
  const void* row(int64_t m) const { return data + static_cast<size_t>(m) * stride; }
};

constexpr int kTokTile = 4;  // tokens per tile (prefill)

// Rows [r0, r1) x tokens [0, M): token tiles of kTokTile (then 1 by 1), row tiles of R.
template <int R, class Fn>
void for_tiles(int64_t r0, int64_t r1, int64_t M, Fn&& fn) {
  constexpr int64_t kTokBlock = 64;  // tokens whose panels stay in cache while rows stream by
  for (int64_t t0 = 0; t0 < M; t0 += kTokBlock) {
    const int64_t t1 = std::min(M, t0 + kTokBlock);
    int64_t r = r0;
    for (; r + R <= r1; r += R) fn.template operator()<R>(r, t0, t1);
    for (; r < r1; ++r) fn.template operator()<1>(r, t0, t1);
  }
}

template <class K>
void run_small(const QMatrix& W, int64_t M, const Panels& px, float* Y, int64_t ldy, int64_t r0,
               int64_t r1) {
  static const typename K::Consts k;
  const int64_t nb = W.cols / 32;
  auto tile = [&]<int R>(int64_t r, int64_t t0, int64_t t1) {
    const uint8_t* w[R];
    for (int i = 0; i < R; ++i) w[i] = static_cast<const uint8_t*>(W.row(r + i));
    int64_t t = t0;
    for (; t + kTokTile <= t1; t += kTokTile) {
      const PairX* x[kTokTile];
      for (int j = 0; j < kTokTile; ++j) x[j] = static_cast<const PairX*>(px.row(t + j));
      float out[R * kTokTile];
      tile_small<K, R, kTokTile>(k, w, x, nb, out);
      for (int i = 0; i < R; ++i)
        for (int j = 0; j < kTokTile; ++j) Y[(t + j) * ldy + r + i] = out[i * kTokTile + j];
    }
    for (; t < t1; ++t) {
      const PairX* x[1] = {static_cast<const PairX*>(px.row(t))};
      float out[R];
      tile_small<K, R, 1>(k, w, x, nb, out);
      for (int i = 0; i < R; ++i) Y[t * ldy + r + i] = out[i];
    }
  };
  for_tiles<4>(r0, r1, M, tile);
}

template <int T>
void k_tile(GgmlType type, const KConsts& k, const uint8_t* w, const BlockQ8_K* const* x,
            int64_t nsb, float* out) {
  if (type == GgmlType::Q4_K) return tile_q45k<false, T>(k, w, x, nsb, out);
  if (type == GgmlType::Q5_K) return tile_q45k<true, T>(k, w, x, nsb, out);
  return tile_q6k<T>(k, w, x, nsb, out);
}

void run_k(const QMatrix& W, int64_t M, const Panels& px, float* Y, int64_t ldy, int64_t r0,
           int64_t r1) {
  static const KConsts k;
  const int64_t nsb = W.cols / 256;
  auto tile = [&]<int R>(int64_t r, int64_t t0, int64_t t1) {
    const uint8_t* w = static_cast<const uint8_t*>(W.row(r));
    int64_t t = t0;
    for (; t + kTokTile <= t1; t += kTokTile) {
      const BlockQ8_K* x[kTokTile];
      for (int j = 0; j < kTokTile; ++j) x[j] = static_cast<const BlockQ8_K*>(px.row(t + j));
      float out[kTokTile];
      k_tile<kTokTile>(W.type, k, w, x, nsb, out);
      for (int j = 0; j < kTokTile; ++j) Y[(t + j) * ldy + r] = out[j];
    }
    for (; t < t1; ++t) {
      const BlockQ8_K* x[1] = {static_cast<const BlockQ8_K*>(px.row(t))};
      k_tile<1>(W.type, k, w, x, nsb, Y + t * ldy + r);
    }
  };
  for_tiles<1>(r0, r1, M, tile);
}

template <Kind kKind>
void run_float(const QMatrix& W, int64_t M, const Panels& px, float* Y, int64_t ldy, int64_t r0,
               int64_t r1) {
  using X = std::conditional_t<kKind == Kind::kBF16, uint16_t, float>;
  auto tile = [&]<int R>(int64_t r, int64_t t0, int64_t t1) {
    const uint8_t* w[R];
    for (int i = 0; i < R; ++i) w[i] = static_cast<const uint8_t*>(W.row(r + i));
    auto one = [&]<int T>(int64_t t) {
      const X* x[T];
      for (int j = 0; j < T; ++j) x[j] = static_cast<const X*>(px.row(t + j));
      float out[R * T];
#if defined(__AVX512BF16__)
      if constexpr (kKind == Kind::kBF16)
        tile_bf16<R, T>(w, x, W.cols, out);
      else
#endif
        tile_float<kKind == Kind::kF16, R, T>(w, reinterpret_cast<const float* const*>(x), W.cols,
                                              out);
      for (int i = 0; i < R; ++i)
        for (int j = 0; j < T; ++j) Y[(t + j) * ldy + r + i] = out[i * T + j];
    };
    int64_t t = t0;
    for (; t + kTokTile <= t1; t += kTokTile) one.template operator()<kTokTile>(t);
    for (; t < t1; ++t) one.template operator()<1>(t);
  };
  for_tiles<4>(r0, r1, M, tile);
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
      return run_float<Kind::kF32>(W, M, px, Y, ldy, r0, r1);
    case Kind::kF16:
      return run_float<Kind::kF16>(W, M, px, Y, ldy, r0, r1);
    default:
      return run_float<Kind::kBF16>(W, M, px, Y, ldy, r0, r1);
  }
}

// Bytes of one token's panel row.
size_t panel_bytes(Kind kind, int64_t cols) {
  switch (kind) {
    case Kind::kSmall:  // the pairs, then the Q8_1 s values
      return static_cast<size_t>(panel_pairs(cols / 32)) * sizeof(PairX) +
             static_cast<size_t>(round16(cols / 32)) * sizeof(float);
    case Kind::kK:
      return static_cast<size_t>(cols / 256) * sizeof(BlockQ8_K);
    case Kind::kBF16:
      return (static_cast<size_t>(cols) * 2 + 63) / 64 * 64;
    default:
      return (static_cast<size_t>(cols) * 4 + 63) / 64 * 64;
  }
}

// One token's activations x[0..cols) into its panel row.
void make_panel(Kind kind, GgmlType t, const float* x, int64_t cols, uint8_t* dst) {
  switch (kind) {
    case Kind::kSmall:
      return panel_from_f32(x, t == GgmlType::Q4_1 || t == GgmlType::Q5_1, cols / 32, bias_of(t),
                            reinterpret_cast<PairX*>(dst));
    case Kind::kK:
      for (int64_t b = 0; b < cols / 256; ++b)
        q8k_block(x + 256 * b, reinterpret_cast<BlockQ8_K*>(dst) + b);
      return;
    case Kind::kF32:
      std::memcpy(dst, x, static_cast<size_t>(cols) * 4);
      return;
    case Kind::kF16: {
      float* o = reinterpret_cast<float*>(dst);
      for (int64_t i = 0; i < cols; i += 16) {
        const __mmask16 km = tail16(cols - i);
        const __m512 v = _mm512_maskz_loadu_ps(km, x + i);
        _mm512_mask_storeu_ps(o + i, km,
                              _mm512_cvtph_ps(_mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT)));
      }
      return;
    }
    default: {
      uint16_t* o = reinterpret_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < cols; i += 16) {
        const __mmask16 km = tail16(cols - i);
        _mm256_mask_storeu_epi16(o + i, km, to_bf16(_mm512_maskz_loadu_ps(km, x + i)));
      }
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
  uint8_t* panels = aligned_scratch(scratch, stride * static_cast<size_t>(M), 64);
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
  thread_local std::vector<uint8_t> scratch;
  const QMatrix W{t, 1, n, w};
  switch (kind) {
    case Kind::kSmall: {
      uint8_t* p = aligned_scratch(scratch, panel_bytes(kind, n), 64);
      panel_from_q8(x, t == GgmlType::Q4_1 || t == GgmlType::Q5_1, n / 32, bias_of(t),
                    reinterpret_cast<PairX*>(p));
      run_rows(kind, W, 1, Panels{p, 0}, result, 1, 0, 1);
      return true;
    }
    case Kind::kF16: {  // widen the f16 activations to f32, as the panels hold them
      float* p = reinterpret_cast<float*>(aligned_scratch(scratch, panel_bytes(kind, n), 64));
      for (int64_t i = 0; i < n; ++i) p[i] = load_fp16(static_cast<const uint8_t*>(x) + 2 * i);
      run_rows(kind, W, 1, Panels{reinterpret_cast<uint8_t*>(p), 0}, result, 1, 0, 1);
      return true;
    }
    default:  // K-quants, f32 and bf16 read the activations as quantize_activations wrote them
      run_rows(kind, W, 1, Panels{x, 0}, result, 1, 0, 1);
      return true;
  }
}

bool quantize_activations_simd(GgmlType w, const float* x, void* dst, int64_t n) {
  const Kind kind = kind_of(w);
  uint8_t* out = static_cast<uint8_t*>(dst);
  if (kind == Kind::kSmall) {
    if (n % 32 != 0) return false;  // the portable code reports the error
    const bool q81 = w == GgmlType::Q4_1 || w == GgmlType::Q5_1;
    const size_t bs = q81 ? sizeof(BlockQ8_1) : sizeof(BlockQ8_0);
    for (int64_t b = 0; b < n / 32; ++b, out += bs) {
      const Q8Block q = q8_block(x + 32 * b, reinterpret_cast<int8_t*>(out + (q81 ? 4 : 2)));
      std::memcpy(out, &q.dh, 2);
      if (q81) {
        const uint16_t s = _cvtss_sh(q.d * static_cast<float>(q.sum), _MM_FROUND_TO_NEAREST_INT);
        std::memcpy(out + 2, &s, 2);
      }
    }
    return true;
  }
  if (kind == Kind::kK) {
    if (n % 256 != 0) return false;
    for (int64_t b = 0; b < n / 256; ++b)
      q8k_block(x + 256 * b, reinterpret_cast<BlockQ8_K*>(out + b * sizeof(BlockQ8_K)));
    return true;
  }
  return false;  // f16 / bf16 / f32: the portable conversions
}

}  // namespace llmkit::kernels::detail

#endif  // LLMKIT_QMATMUL_AVX512
