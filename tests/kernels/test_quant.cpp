// Dequantisation kernels (kernels/cpu/quant.h) against plain scalar references written here the
// way ggml's dequantize_row_* (ggml-quants.c) writes them, element by element: the AVX-512 path
// (dequantize_row) and the generic one must both equal the reference bit for bit on random
// blocks (every byte random, fp16 scales any finite value), from unaligned sources too. Also the
// type table (names, block and byte sizes) and the errors. The references against the `gguf`
// Python package are in tests/io/test_gguf_reference.cpp.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "llmkit/core/dtype.h"
#include "llmkit/core/error.h"
#include "llmkit/kernels/cpu/quant.h"

// As in quant.cpp: the reference must not have its products fused into FMAs either.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace llmkit::kernels {
namespace {

float h2f(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return f16_to_float(f16{h});
}

// ---- the scalar references: one block at b -> y ----------------------------------------------

void ref_q4_0(const uint8_t* b, float* y) {
  const float d = h2f(b);
  for (int j = 0; j < 16; ++j) {
    const int x0 = (b[2 + j] & 0x0F) - 8, x1 = (b[2 + j] >> 4) - 8;
    y[j] = x0 * d;
    y[j + 16] = x1 * d;
  }
}

void ref_q4_1(const uint8_t* b, float* y) {
  const float d = h2f(b), m = h2f(b + 2);
  for (int j = 0; j < 16; ++j) {
    const int x0 = b[4 + j] & 0x0F, x1 = b[4 + j] >> 4;
    y[j] = x0 * d + m;
    y[j + 16] = x1 * d + m;
  }
}

void ref_q5(const uint8_t* b, float* y, bool with_min) {
  const float d = h2f(b), m = with_min ? h2f(b + 2) : 0.0f;
  const uint8_t* p = b + (with_min ? 4 : 2);
  const uint32_t qh = p[0] | p[1] << 8 | p[2] << 16 | static_cast<uint32_t>(p[3]) << 24;
  const uint8_t* qs = p + 4;
  for (int j = 0; j < 16; ++j) {
    const uint8_t xh0 = ((qh >> (j + 0)) << 4) & 0x10, xh1 = ((qh >> (j + 12))) & 0x10;
    const int x0 = (qs[j] & 0x0F) | xh0, x1 = (qs[j] >> 4) | xh1;
    if (with_min) {
      y[j] = x0 * d + m;
      y[j + 16] = x1 * d + m;
    } else {
      y[j] = (x0 - 16) * d;
      y[j + 16] = (x1 - 16) * d;
    }
  }
}

void ref_q8_0(const uint8_t* b, float* y) {
  const float d = h2f(b);
  for (int j = 0; j < 32; ++j) y[j] = static_cast<int8_t>(b[2 + j]) * d;
}

void get_scale_min_k4(int j, const uint8_t* q, uint8_t* d, uint8_t* m) {
  if (j < 4) {
    *d = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *d = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    *m = (q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4);
  }
}

void ref_q4_k(const uint8_t* b, float* y) {
  const float d = h2f(b), min = h2f(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* q = b + 16;
  int is = 0;
  uint8_t sc, m;
  for (int j = 0; j < 256; j += 64) {
    get_scale_min_k4(is + 0, scales, &sc, &m);
    const float d1 = d * sc, m1 = min * m;
    get_scale_min_k4(is + 1, scales, &sc, &m);
    const float d2 = d * sc, m2 = min * m;
    for (int l = 0; l < 32; ++l) *y++ = d1 * (q[l] & 0xF) - m1;
    for (int l = 0; l < 32; ++l) *y++ = d2 * (q[l] >> 4) - m2;
    q += 32;
    is += 2;
  }
}

void ref_q5_k(const uint8_t* b, float* y) {
  const float d = h2f(b), min = h2f(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* qh = b + 16;
  const uint8_t* ql = b + 48;
  int is = 0;
  uint8_t sc, m, u1 = 1, u2 = 2;
  for (int j = 0; j < 256; j += 64) {
    get_scale_min_k4(is + 0, scales, &sc, &m);
    const float d1 = d * sc, m1 = min * m;
    get_scale_min_k4(is + 1, scales, &sc, &m);
    const float d2 = d * sc, m2 = min * m;
    for (int l = 0; l < 32; ++l) *y++ = d1 * ((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
    for (int l = 0; l < 32; ++l) *y++ = d2 * ((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
    ql += 32;
    is += 2;
    u1 <<= 2;
    u2 <<= 2;
  }
}

void ref_q6_k(const uint8_t* b, float* y) {
  const float d = h2f(b + 208);
  const uint8_t* ql = b;
  const uint8_t* qh = b + 128;
  const int8_t* sc = reinterpret_cast<const int8_t*>(b + 192);
  for (int n = 0; n < 256; n += 128) {
    for (int l = 0; l < 32; ++l) {
      const int is = l / 16;
      const int8_t q1 = static_cast<int8_t>((ql[l + 0] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
      const int8_t q2 = static_cast<int8_t>((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
      const int8_t q3 = static_cast<int8_t>((ql[l + 0] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      const int8_t q4 = static_cast<int8_t>((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      y[l + 0] = d * sc[is + 0] * q1;
      y[l + 32] = d * sc[is + 2] * q2;
      y[l + 64] = d * sc[is + 4] * q3;
      y[l + 96] = d * sc[is + 6] * q4;
    }
    y += 128;
    ql += 64;
    qh += 32;
    sc += 8;
  }
}

void ref_row(GgmlType t, const uint8_t* src, float* y, int64_t n) {
  const int64_t block = ggml_block_size(t);
  const size_t bytes = ggml_type_size(t);
  for (int64_t i = 0; i < n / block; ++i, src += bytes, y += block) {
    switch (t) {
      case GgmlType::F32:
        std::memcpy(y, src, 4);
        break;
      case GgmlType::F16:
        *y = h2f(src);
        break;
      case GgmlType::BF16:
        *y = bf16_to_float(bf16{static_cast<uint16_t>(src[0] | src[1] << 8)});
        break;
      case GgmlType::Q4_0:
        ref_q4_0(src, y);
        break;
      case GgmlType::Q4_1:
        ref_q4_1(src, y);
        break;
      case GgmlType::Q5_0:
        ref_q5(src, y, false);
        break;
      case GgmlType::Q5_1:
        ref_q5(src, y, true);
        break;
      case GgmlType::Q8_0:
        ref_q8_0(src, y);
        break;
      case GgmlType::Q4_K:
        ref_q4_k(src, y);
        break;
      case GgmlType::Q5_K:
        ref_q5_k(src, y);
        break;
      case GgmlType::Q6_K:
        ref_q6_k(src, y);
        break;
      default:
        FAIL() << "no reference for " << ggml_type_name(t);
    }
  }
}

// Byte offsets of the fp16 scale fields of a block.
std::vector<int> fp16_fields(GgmlType t) {
  switch (t) {
    case GgmlType::Q4_1:
    case GgmlType::Q5_1:
    case GgmlType::Q4_K:
    case GgmlType::Q5_K:
      return {0, 2};
    case GgmlType::Q6_K:
      return {208};
    case GgmlType::F32:
    case GgmlType::F16:
    case GgmlType::BF16:
      return {};
    default:
      return {0};
  }
}

// n elements of random blocks, fp16 scales replaced by random finite values (NaN-free
// F32/F16/BF16).
std::vector<uint8_t> random_row(GgmlType t, int64_t n, std::mt19937& rng) {
  std::vector<uint8_t> b(ggml_row_size(t, n));
  for (auto& x : b) x = static_cast<uint8_t>(rng());
  const size_t bytes = ggml_type_size(t);
  auto finite16 = [&](uint8_t* p) {
    if ((p[1] & 0x7C) == 0x7C) p[1] &= 0x83;  // exponent 31 -> 0
  };
  for (size_t at = 0; at < b.size(); at += bytes) {
    for (int f : fp16_fields(t)) finite16(&b[at + f]);
    if (t == GgmlType::F16) finite16(&b[at]);
    if (t == GgmlType::BF16 && (b[at + 1] & 0x7F) == 0x7F && (b[at] & 0x80)) b[at + 1] &= 0x80;
    if (t == GgmlType::F32 && (b[at + 3] & 0x7F) == 0x7F && (b[at + 2] & 0x80)) b[at + 3] &= 0x80;
  }
  return b;
}

constexpr GgmlType kDequantTypes[] = {
    GgmlType::F32,  GgmlType::F16,  GgmlType::BF16, GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0,
    GgmlType::Q5_1, GgmlType::Q8_0, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K};

uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

// The first element whose bits differ, with its block, or -1.
int64_t first_mismatch(const std::vector<float>& a, const std::vector<float>& b) {
  for (size_t i = 0; i < a.size(); ++i)
    if (bits(a[i]) != bits(b[i])) return static_cast<int64_t>(i);
  return -1;
}

TEST(Quant, KernelsEqualScalarReferenceBitForBit) {
  std::mt19937 rng(1234);
  for (GgmlType t : kDequantTypes) {
    const int64_t block = ggml_block_size(t);
    for (int64_t blocks : {int64_t{1}, int64_t{7}, int64_t{64}}) {
      const int64_t n = blocks * (block == 1 ? 37 : block);  // F16/BF16: ragged vector tails
      const std::vector<uint8_t> row = random_row(t, n, rng);
      // The same bytes one byte off alignment.
      std::vector<uint8_t> shifted(row.size() + 1);
      std::memcpy(shifted.data() + 1, row.data(), row.size());
      std::vector<float> ref(n), fast(n), generic(n), unaligned(n);
      ref_row(t, row.data(), ref.data(), n);
      dequantize_row(t, row.data(), fast.data(), n);
      dequantize_row_generic(t, row.data(), generic.data(), n);
      dequantize_row(t, shifted.data() + 1, unaligned.data(), n);
      for (const auto* got : {&fast, &generic, &unaligned}) {
        const int64_t i = first_mismatch(*got, ref);
        EXPECT_EQ(i, -1) << ggml_type_name(t) << " n=" << n << ": element " << i << " (block "
                         << i / block << ") is " << (*got)[i] << " but the reference has "
                         << ref[i];
      }
    }
  }
}

TEST(Quant, ZeroLengthRowIsNoOp) {
  for (GgmlType t : kDequantTypes) dequantize_row(t, nullptr, nullptr, 0);
}

TEST(Quant, TypeTable) {
  EXPECT_STREQ(ggml_type_name(GgmlType::Q4_K), "Q4_K");
  EXPECT_STREQ(ggml_type_name(GgmlType::BF16), "BF16");
  EXPECT_STREQ(ggml_type_name(GgmlType(16)), "IQ2_XXS");
  EXPECT_STREQ(ggml_type_name(GgmlType(1000)), "unknown");
  EXPECT_TRUE(ggml_type_known(12));
  EXPECT_FALSE(ggml_type_known(16));
  EXPECT_FALSE(ggml_type_known(4));
  EXPECT_EQ(ggml_block_size(GgmlType::Q8_0), 32);
  EXPECT_EQ(ggml_block_size(GgmlType::Q6_K), 256);
  EXPECT_EQ(ggml_type_size(GgmlType::Q4_1), 20u);
  EXPECT_EQ(ggml_type_size(GgmlType::Q3_K), 110u);
  EXPECT_EQ(ggml_type_size(GgmlType::Q8_K), 292u);
  EXPECT_EQ(ggml_row_size(GgmlType::Q4_K, 512), 288u);
  EXPECT_EQ(ggml_row_size(GgmlType::F16, 3), 6u);
  EXPECT_TRUE(ggml_can_dequantize(GgmlType::Q5_K));
  EXPECT_FALSE(ggml_can_dequantize(GgmlType::Q2_K));
}

TEST(Quant, Errors) {
  auto message = [](auto&& f) -> std::string {
    try {
      f();
    } catch (const Error& e) {
      return e.what();
    }
    return "(no error)";
  };
  float y[256];
  uint8_t b[292] = {};
  EXPECT_NE(message([&] { ggml_row_size(GgmlType::Q4_0, 33); }).find("33"), std::string::npos);
  EXPECT_NE(message([&] { ggml_row_size(GgmlType::Q4_0, -32); }).find("Q4_0"), std::string::npos);
  EXPECT_NE(message([&] { dequantize_row(GgmlType::Q3_K, b, y, 256); }).find("Q3_K"),
            std::string::npos);
  EXPECT_NE(message([&] { dequantize_row(GgmlType::Q8_K, b, y, 256); }).find("Q8_K"),
            std::string::npos);
  EXPECT_NE(message([&] { dequantize_row(GgmlType(20), b, y, 32); }).find("IQ4_NL"),
            std::string::npos);
  EXPECT_NE(message([&] { dequantize_row(GgmlType::Q6_K, b, y, 100); }).find("100"),
            std::string::npos);
}

// Hand-made blocks with known values, so a reference that drifted with the kernels would show.
TEST(Quant, KnownBlocks) {
  // Q8_0, d = 0.5 (0x3800): q = -128, 1, 127 -> -64, 0.5, 63.5.
  uint8_t q8[34] = {0x00, 0x38};
  q8[2] = 0x80;
  q8[3] = 1;
  q8[4] = 127;
  float y[256];
  dequantize_row(GgmlType::Q8_0, q8, y, 32);
  EXPECT_EQ(y[0], -64.0f);
  EXPECT_EQ(y[1], 0.5f);
  EXPECT_EQ(y[2], 63.5f);
  EXPECT_EQ(y[3], 0.0f);
  // Q4_1, d = 2 (0x4000), m = -1 (0xBC00): qs[0] = 0xF3 -> y[0] = 3*2-1 = 5, y[16] = 15*2-1 = 29.
  uint8_t q41[20] = {0x00, 0x40, 0x00, 0xBC};
  q41[4] = 0xF3;
  dequantize_row(GgmlType::Q4_1, q41, y, 32);
  EXPECT_EQ(y[0], 5.0f);
  EXPECT_EQ(y[16], 29.0f);
  EXPECT_EQ(y[1], -1.0f);
  // Q5_0, d = 1: qh bit 0 and bit 16 set, qs[0] = 0x21 -> y[0] = 17-16 = 1, y[16] = 18-16 = 2,
  // y[1] = 0-16.
  uint8_t q50[22] = {0x00, 0x3C, 0x01, 0x00, 0x01, 0x00};
  q50[6] = 0x21;
  dequantize_row(GgmlType::Q5_0, q50, y, 32);
  EXPECT_EQ(y[0], 1.0f);
  EXPECT_EQ(y[16], 2.0f);
  EXPECT_EQ(y[1], -16.0f);
}

}  // namespace
}  // namespace llmkit::kernels
