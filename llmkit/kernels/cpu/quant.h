// ggml's tensor types (the ones GGUF files carry) and dequantisation of a row of blocks to f32,
// bit for bit as ggml's dequantize_row_* (and the `gguf` Python package's numpy code) computes
// it: every product and sum is rounded to float separately, in ggml's order (quant.cpp turns
// floating-point contraction off), so the result does not depend on FMA.
// Plain kernels on raw pointers, one row per call; threading over rows belongs in the caller.
// Not here: quantisation and quantised dot products (the next issue), the GGUF container
// (llmkit/io/gguf.h). The block structs below are the on-disk layouts, little-endian.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "llmkit/core/dtype.h"

#if defined(__F16C__)
#include <immintrin.h>
#endif

namespace llmkit::kernels {

// The numbering is ggml's (ggml.h, enum ggml_type); GGUF stores it as a uint32.
enum class GgmlType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  BF16 = 30,
};

// "Q4_K"; also names ggml types llmkit does not read (IQ2_XXS, I32, ...), for error messages;
// "unknown" for numbers ggml does not define.
const char* ggml_type_name(GgmlType t);
// Whether `t` is one of the GgmlType values above (its block and byte sizes are known).
bool ggml_type_known(uint32_t t);
// Whether dequantize_row handles `t` (F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K,
// Q5_K, Q6_K).
bool ggml_can_dequantize(GgmlType t);
// Elements per block (1 for F32/F16/BF16, 32 for Q*_0/Q*_1, 256 for the K-quants).
int64_t ggml_block_size(GgmlType t);
// Bytes per block.
size_t ggml_type_size(GgmlType t);
// Bytes of a row of n elements; an Error when n is negative or not a multiple of the block size.
size_t ggml_row_size(GgmlType t, int64_t n);

// dst[0..n) = the values of the n elements at src (ggml_row_size(t, n) bytes, any alignment).
// An Error naming the type for types it cannot dequantise, or when n is not a multiple of the
// block size. Uses AVX-512 or AVX2 kernels where compiled in (-march=native), else the generic
// loops below.
void dequantize_row(GgmlType t, const void* src, float* dst, int64_t n);
// The same without the AVX-512 / AVX2 kernels: plain per-block loops as ggml's reference code
// writes them (the compiler vectorises some). dequantize_row falls back on it; tests and benchmarks
// compare the two.
void dequantize_row_generic(GgmlType t, const void* src, float* dst, int64_t n);
// Whether dequantize_row has hand-vectorised (AVX-512 or AVX2) kernels in this build.
bool dequantize_row_is_vectorised();

// The blocks' fp16 fields: IEEE binary16 <-> float, rounded to nearest even (F16C where compiled
// in), and the same from/to two little-endian bytes at any alignment.
inline float fp16_to_f32(uint16_t h) {
#if defined(__F16C__)
  return _cvtsh_ss(h);
#else
  return f16_to_float(f16{h});
#endif
}
inline uint16_t f32_to_fp16(float f) {
#if defined(__F16C__)
  return _cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT);
#else
  return float_to_f16(f).bits;
#endif
}
inline float load_fp16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return fp16_to_f32(h);
}
inline void store_fp16(uint8_t* p, float f) {
  const uint16_t h = f32_to_fp16(f);
  std::memcpy(p, &h, 2);
}

// ---- block layouts (ggml-common.h). fp16 fields are IEEE binary16 bit patterns. ----------------
// The K-quants' super-blocks hold 256 elements (QK_K) in sub-blocks of 16 or 32.
constexpr int kQK = 32;    // elements in a Q4_0 ... Q8_1 block
constexpr int kQKK = 256;  // elements in a K-quant super-block

// Q4_0: 32 elements, 4.5 bits each. y[j] = (q[j] - 8) * d, q in 0..15; element j < 16 is the low
// nibble of qs[j], element j + 16 its high nibble.
struct BlockQ4_0 {
  uint16_t d;      // fp16 scale
  uint8_t qs[16];  // nibbles
};
// Q4_1: y[j] = q[j] * d + m (product rounded, then the sum), nibbles as in Q4_0.
struct BlockQ4_1 {
  uint16_t d, m;  // fp16 scale and minimum
  uint8_t qs[16];
};
// Q5_0: y[j] = (q[j] - 16) * d, q 5 bits: the nibble as in Q4_0 and, as bit 4, bit j of qh
// (a little-endian uint32).
struct BlockQ5_0 {
  uint16_t d;
  uint8_t qh[4];
  uint8_t qs[16];
};
// Q5_1: y[j] = q[j] * d + m, q as in Q5_0.
struct BlockQ5_1 {
  uint16_t d, m;
  uint8_t qh[4];
  uint8_t qs[16];
};
// Q8_0: y[j] = qs[j] * d.
struct BlockQ8_0 {
  uint16_t d;
  int8_t qs[32];
};
// Q8_1 (the activations' side of Q4_1/Q5_1 dot products; not dequantised here): s = d * sum(qs).
struct BlockQ8_1 {
  uint16_t d, s;
  int8_t qs[32];
};
// Q4_K: 8 sub-blocks of 32; 6-bit scale sc[i] and minimum m[i] per sub-block packed in 12 bytes
// (i < 4: sc = scales[i] & 63, m = scales[i + 4] & 63; i >= 4: sc = (scales[i + 4] & 15) |
// (scales[i - 4] >> 6) << 4, m = (scales[i + 4] >> 4) | (scales[i] >> 6) << 4).
// y = (d * sc[i]) * q - (dmin * m[i]), each product rounded to float. The 128 bytes of qs are 4
// groups of 32: group g holds sub-block 2g in its low nibbles and 2g + 1 in its high nibbles.
struct BlockQ4_K {
  uint16_t d, dmin;
  uint8_t scales[12];
  uint8_t qs[128];
};
// Q5_K: as Q4_K with a fifth bit: element l of sub-block i gets 16 when bit i of qh[l] is set.
struct BlockQ5_K {
  uint16_t d, dmin;
  uint8_t scales[12];
  uint8_t qh[32];
  uint8_t qs[128];
};
// Q6_K: 16 sub-blocks of 16 with int8 scales; y = (d * scales[i]) * (q - 32), q 6 bits. For each
// half h (128 elements; ql + 64h, qh + 32h, scales + 8h) and l < 32: element l is the low nibble
// of ql[l] with bits 0-1 of qh[l] on top, l + 32 the low nibble of ql[l + 32] with bits 2-3,
// l + 64 the high nibble of ql[l] with bits 4-5, l + 96 the high nibble of ql[l + 32], bits 6-7.
struct BlockQ6_K {
  uint8_t ql[128];
  uint8_t qh[64];
  int8_t scales[16];
  uint16_t d;
};
// Q8_K (the activations' side of K-quant dot products, written by qmatmul.h's
// quantize_activations; not dequantised here): y[j] = qs[j] * d with a float d, and bsums[i] the
// sum of qs[16 i .. 16 i + 16), which the K-quants' minimums multiply.
struct BlockQ8_K {
  float d;
  int8_t qs[256];
  int16_t bsums[16];
};
// Q2_K and Q3_K are known by size only (84 and 110 bytes per 256 elements).

static_assert(sizeof(BlockQ4_0) == 18 && sizeof(BlockQ4_1) == 20 && sizeof(BlockQ5_0) == 22 &&
              sizeof(BlockQ5_1) == 24 && sizeof(BlockQ8_0) == 34 && sizeof(BlockQ8_1) == 36 &&
              sizeof(BlockQ4_K) == 144 && sizeof(BlockQ5_K) == 176 && sizeof(BlockQ6_K) == 210 &&
              sizeof(BlockQ8_K) == 292);

}  // namespace llmkit::kernels
