// qmatmul (kernels/cpu/qmatmul.h) on random weight blocks of every type it takes: against
// qmatmul_reference (dequantised weights, f32 activations, double sums) within a bound derived
// from the activations' quantisation error; the vectorised vec_dot against the portable one;
// quantize_activations' bytes against its portable code and against the definition of each
// format; M = 1, 3, 17, 64 with padded strides and row counts that are no multiple of any tile;
// same bits with 1 and 2 threads and inside an OpenMP parallel region; errors.
// Weights are random bytes with sane fp16 scales (every quant pattern occurs), so the test does
// not depend on the quantiser (quantize.h).
#include "llmkit/kernels/cpu/qmatmul.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "llmkit/core/dtype.h"
#include "llmkit/core/error.h"
#include "llmkit/core/parallel.h"
#include "tests/common/reference.h"
#include "tests/common/temp_dir.h"

namespace llmkit::kernels {
namespace {

const GgmlType kTypes[] = {GgmlType::F32,  GgmlType::F16,  GgmlType::BF16, GgmlType::Q4_0,
                           GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q8_0,
                           GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K};

void put_f16(uint8_t* p, float f) {
  const uint16_t h = float_to_f16(f).bits;
  std::memcpy(p, &h, 2);
}

float get_f16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return f16_to_float(f16{h});
}

// `rows` rows of `cols` elements of type t: random bytes, then every scale field set to a
// random value of a sane size (0.001 - 0.02, both signs where the format allows; Q4_1 / Q5_1
// minimums -0.1 - 0.1, K-quant dmin positive) so sums stay far from overflow and cancellation.
std::vector<uint8_t> random_weights(GgmlType t, int64_t rows, int64_t cols, std::mt19937& rng) {
  const size_t rb = ggml_row_size(t, cols);
  std::vector<uint8_t> w(rb * rows);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_real_distribution<float> scale(0.001f, 0.02f), sign(-1.0f, 1.0f), val(-1.0f, 1.0f);
  for (auto& b : w) b = static_cast<uint8_t>(byte(rng));
  auto sd = [&] { return (sign(rng) < 0 ? -1.0f : 1.0f) * scale(rng); };
  const size_t bs = ggml_type_size(t);
  const size_t nblocks = w.size() / bs;
  for (size_t i = 0; i < nblocks; ++i) {
    uint8_t* b = w.data() + i * bs;
    switch (t) {
      case GgmlType::F32: {
        const float f = val(rng);
        std::memcpy(b, &f, 4);
        break;
      }
      case GgmlType::F16:
        put_f16(b, val(rng));
        break;
      case GgmlType::BF16: {
        const uint16_t h = float_to_bf16(val(rng)).bits;
        std::memcpy(b, &h, 2);
        break;
      }
      case GgmlType::Q4_0:
      case GgmlType::Q5_0:
      case GgmlType::Q8_0:
        put_f16(b, sd());
        break;
      case GgmlType::Q4_1:
      case GgmlType::Q5_1:
        put_f16(b, sd());
        put_f16(b + 2, 0.1f * sign(rng));
        break;
      case GgmlType::Q4_K:
      case GgmlType::Q5_K:
        put_f16(b, scale(rng) / 8);
        put_f16(b + 2, scale(rng) / 8);
        break;
      case GgmlType::Q6_K:
        put_f16(b + 208, scale(rng) / 16);
        break;
      default:
        ADD_FAILURE() << "no generator for " << ggml_type_name(t);
    }
  }
  return w;
}

std::vector<float> random_floats(size_t n, std::mt19937& rng) {
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::vector<float> x(n);
  for (auto& v : x) v = g(rng);
  return x;
}

// The largest |x| error the activations' quantisation may make in a block of x, relative to
// the block's amax: half a quantisation step (amax / 127 / 2) plus the fp16 rounding of the
// scale (|q| <= 127 steps of relative error 2^-11) for Q8_0 / Q8_1; half a step for Q8_K (float
// scale); the rounding to f16 / bf16 for those, relative to |x| itself.
double act_rel_error(GgmlType t) {
  switch (vec_dot_type(t)) {
    case GgmlType::Q8_0:
    case GgmlType::Q8_1:
      return 1.0 / 254 + 1.0 / 2048;
    case GgmlType::Q8_K:
      return 1.0 / 254 + 1e-6;
    case GgmlType::F16:
      return 1.0 / 2048;
    case GgmlType::BF16:
      return 1.0 / 256;
    default:
      return 0.0;
  }
}

// Bound on |qmatmul - qmatmul_reference| for output (m, r): sum over activation blocks of
// (block error as above) * sum |w| in the block, plus for Q8_1 the fp16 rounding of s
// (|m| * |s| * 2^-11 <= |m| * sum |x| * 2^-10, with the weights' minimum |m| <= 0.1), plus float
// rounding of the sums (1e-5 relative to sum |w x|).
double error_bound(GgmlType t, const float* w, const float* x, int64_t n) {
  const int64_t blk = ggml_block_size(vec_dot_type(t));
  const bool elementwise = blk == 1;
  double bound = 0, mag = 0;
  for (int64_t b0 = 0; b0 < n; b0 += blk) {
    double amax = 0, sw = 0, sx = 0;
    for (int64_t j = b0; j < b0 + blk; ++j) {
      amax = std::max(amax, std::fabs(static_cast<double>(x[j])));
      sw += std::fabs(w[j]);
      sx += std::fabs(x[j]);
      mag += std::fabs(static_cast<double>(w[j]) * x[j]);
    }
    bound += act_rel_error(t) * (elementwise ? sx * sw : amax * sw);
    if (vec_dot_type(t) == GgmlType::Q8_1) bound += 0.1 * sx / 1024;
  }
  return bound + 1e-5 * mag + 1e-6;
}

std::vector<float> dequantized(GgmlType t, const std::vector<uint8_t>& w, int64_t rows,
                               int64_t cols) {
  std::vector<float> out(rows * cols);
  for (int64_t r = 0; r < rows; ++r)
    dequantize_row(t, w.data() + r * ggml_row_size(t, cols), out.data() + r * cols, cols);
  return out;
}

int64_t cols_for(GgmlType t) {
  return ggml_block_size(t) == 256 ? 768 : 576 + 32 * 3;  // several blocks, odd block counts
}

void expect_finite_close(float got, float want, double tol, const std::string& what) {
  ASSERT_TRUE(std::isfinite(got) && std::isfinite(want)) << what << ": " << got << " vs " << want;
  EXPECT_LE(std::fabs(static_cast<double>(got) - want), tol)
      << what << ": " << got << " vs " << want;
}

TEST(QMatmul, MatchesDequantisedReference) {
  std::mt19937 rng(11);
  for (GgmlType t : kTypes) {
    for (int64_t M : {1, 3, 17, 64}) {
      const int64_t rows = 37, cols = cols_for(t), ldx = cols + 5, ldy = rows + 3;
      const auto w = random_weights(t, rows, cols, rng);
      const auto x = random_floats(M * ldx, rng);
      std::vector<float> y(M * ldy, NAN), yref(M * ldy, NAN);
      const QMatrix W{t, rows, cols, w.data()};
      qmatmul(W, M, x.data(), ldx, y.data(), ldy);
      qmatmul_reference(W, M, x.data(), ldx, yref.data(), ldy);
      const auto wf = dequantized(t, w, rows, cols);
      for (int64_t m = 0; m < M; ++m)
        for (int64_t r = 0; r < rows; ++r)
          expect_finite_close(y[m * ldy + r], yref[m * ldy + r],
                              error_bound(t, &wf[r * cols], &x[m * ldx], cols),
                              std::string(ggml_type_name(t)) + " M=" + std::to_string(M) +
                                  " m=" + std::to_string(m) + " r=" + std::to_string(r));
      // The padding between rows of Y is not written.
      for (int64_t m = 0; m < M; ++m)
        for (int64_t r = rows; r < ldy && m * ldy + r < M * ldy; ++r)
          EXPECT_TRUE(std::isnan(y[m * ldy + r])) << ggml_type_name(t);
    }
  }
}

// qmatmul's value is vec_dot's: the driver, its tiles and its threads change nothing; with
// QPath::kInt8 also from 64 rows on.
TEST(QMatmul, EqualsVecDot) {
  std::mt19937 rng(12);
  for (GgmlType t : kTypes) {
    for (const int64_t M : {11, 70}) {
      const int64_t rows = 45, cols = cols_for(t);
      const auto w = random_weights(t, rows, cols, rng);
      const auto x = random_floats(M * cols, rng);
      std::vector<float> y(M * rows);
      const QMatrix W{t, rows, cols, w.data()};
      qmatmul(W, M, x.data(), cols, y.data(), rows, M < 64 ? QPath::kAuto : QPath::kInt8);
      const size_t xrow = ggml_row_size(vec_dot_type(t), cols);
      std::vector<uint8_t> xq(xrow);
      for (int64_t m = 0; m < M; ++m) {
        quantize_activations(t, &x[m * cols], xq.data(), cols);
        for (int64_t r = 0; r < rows; ++r) {
          const float want = vec_dot(t, cols, W.row(r), xq.data());
          EXPECT_EQ(y[m * rows + r], want)
              << ggml_type_name(t) << " M=" << M << " m=" << m << " r=" << r;
        }
      }
    }
  }
}

TEST(QMatmul, VectorisedVecDotMatchesPortable) {
  if (!qmatmul_is_vectorised()) GTEST_SKIP() << "no vectorised qmatmul kernels in this build";
  std::mt19937 rng(13);
  for (GgmlType t : kTypes) {
    for (int64_t nb : {1, 2, 3, 7, 24}) {
      const int64_t cols = nb * ggml_block_size(t) * (ggml_block_size(t) == 1 ? 32 : 1) +
                           (ggml_block_size(t) == 1 ? 3 : 0);
      // One byte of offset for the weights: they must take any alignment (a GGUF tensor's rows
      // start anywhere); the activations are 4-byte aligned, as qmatmul's scratch holds them.
      auto w = random_weights(t, 1, cols, rng);
      w.insert(w.begin(), 0);
      const auto x = random_floats(cols, rng);
      std::vector<uint8_t> xq(ggml_row_size(vec_dot_type(t), cols) + 4);
      quantize_activations(t, x.data(), xq.data() + 4, cols);
      const float a = vec_dot(t, cols, w.data() + 1, xq.data() + 4);
      const float b = vec_dot_generic(t, cols, w.data() + 1, xq.data() + 4);
      // Both sum the same exact per-block integer products in float, in different orders:
      // they differ by float rounding, bounded by a few ulps of the sum of magnitudes.
      std::vector<float> wf(cols), xf(cols);
      dequantize_row(t, w.data() + 1, wf.data(), cols);
      double mag = 0;
      for (int64_t j = 0; j < cols; ++j) mag += std::fabs(static_cast<double>(wf[j]) * x[j]);
      expect_finite_close(a, b, 1e-5 * mag + 1e-6,
                          std::string(ggml_type_name(t)) + " cols=" + std::to_string(cols));
    }
  }
}

TEST(QMatmul, ActivationQuantisationFollowsTheFormat) {
  std::mt19937 rng(14);
  for (GgmlType t : kTypes) {
    const int64_t n = 512;
    auto x = random_floats(n, rng);
    x[5] = 0.0f;
    for (int j = 256; j < 288; ++j) x[j] = 0.0f;  // an all-zero block
    x[300] = 3.0f * (x[301] > 0 ? 1 : -1);        // ties and a dominant element
    const size_t bytes = ggml_row_size(vec_dot_type(t), n);
    std::vector<uint8_t> a(bytes), b(bytes);
    quantize_activations(t, x.data(), a.data(), n);
    quantize_activations_generic(t, x.data(), b.data(), n);
    EXPECT_EQ(a, b) << ggml_type_name(t) << ": vectorised and portable bytes differ";
    const GgmlType at = vec_dot_type(t);
    if (at == GgmlType::Q8_0 || at == GgmlType::Q8_1) {
      const size_t bs = ggml_type_size(at), off = at == GgmlType::Q8_1 ? 4 : 2;
      for (int64_t i = 0; i < n / 32; ++i) {
        const uint8_t* blk = a.data() + i * bs;
        float amax = 0;
        for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[32 * i + j]));
        EXPECT_EQ(get_f16(blk), f16_to_float(float_to_f16(amax / 127)));
        int sum = 0;
        for (int j = 0; j < 32; ++j) {
          const int q = static_cast<int8_t>(blk[off + j]);
          sum += q;
          EXPECT_LE(std::fabs(x[32 * i + j] - q * amax / 127), amax / 254 * 1.0001f);
        }
        if (at == GgmlType::Q8_1) {  // s from the unrounded d, as ggml
          EXPECT_EQ(get_f16(blk + 2), f16_to_float(float_to_f16(amax / 127 * sum)));
        }
      }
    } else if (at == GgmlType::Q8_K) {
      for (int64_t i = 0; i < n / 256; ++i) {
        BlockQ8_K blk;
        std::memcpy(&blk, a.data() + i * sizeof(BlockQ8_K), sizeof blk);
        float amax = 0, max = 0;
        for (int j = 0; j < 256; ++j) {
          if (std::fabs(x[256 * i + j]) > amax) amax = std::fabs(max = x[256 * i + j]);
        }
        EXPECT_FLOAT_EQ(blk.d, max / -127.0f);
        for (int j = 0; j < 256; ++j)
          EXPECT_LE(std::fabs(x[256 * i + j] - blk.qs[j] * blk.d), amax / 254 * 1.0001f);
        for (int g = 0; g < 16; ++g) {
          int s = 0;
          for (int j = 0; j < 16; ++j) s += blk.qs[16 * g + j];
          EXPECT_EQ(blk.bsums[g], s);
        }
      }
    } else if (at == GgmlType::F32) {
      EXPECT_EQ(std::memcmp(a.data(), x.data(), bytes), 0);
    } else {
      for (int64_t j = 0; j < n; ++j) {
        uint16_t h;
        std::memcpy(&h, a.data() + 2 * j, 2);
        EXPECT_EQ(h, at == GgmlType::F16 ? float_to_f16(x[j]).bits : float_to_bf16(x[j]).bits);
      }
    }
  }
}

// Same bits with 1 and 2 threads, with row counts that split unevenly, and inside an OpenMP
// parallel region (where qmatmul runs in the calling thread), for M < 64. M >= 64 (OpenBLAS's
// sgemm, whose partition may depend on the thread count): the same bits for the same thread
// count, and 1 vs 2 threads within float rounding (sums of ~256 products of size ~1).
TEST(QMatmul, DeterministicAcrossThreads) {
  std::mt19937 rng(15);
  const int saved = num_threads();
  for (GgmlType t : kTypes) {
    for (int64_t M : {1, 5, 64}) {
      const int64_t rows = 1031, cols = cols_for(t);
      const auto w = random_weights(t, rows, cols, rng);
      const auto x = random_floats(M * cols, rng);
      const QMatrix W{t, rows, cols, w.data()};
      std::vector<float> y1(M * rows), y2(M * rows), y3(M * rows);
      set_num_threads(1);
      qmatmul(W, M, x.data(), cols, y1.data(), rows);
#pragma omp parallel num_threads(2)
      {
#pragma omp single
        qmatmul(W, M, x.data(), cols, y3.data(), rows);  // in the calling thread: as 1 thread
      }
      set_num_threads(2);
      qmatmul(W, M, x.data(), cols, y2.data(), rows);
      EXPECT_EQ(std::memcmp(y1.data(), y3.data(), y1.size() * 4), 0)
          << ggml_type_name(t) << " M=" << M;
      if (M < 64) {
        EXPECT_EQ(std::memcmp(y1.data(), y2.data(), y1.size() * 4), 0)
            << ggml_type_name(t) << " M=" << M;
        continue;
      }
      std::vector<float> y4(M * rows);
      qmatmul(W, M, x.data(), cols, y4.data(), rows);  // still 2 threads
      EXPECT_EQ(std::memcmp(y2.data(), y4.data(), y2.size() * 4), 0)
          << ggml_type_name(t) << " M=" << M;
      for (size_t i = 0; i < y1.size(); ++i) {
        ASSERT_TRUE(std::isfinite(y1[i]) && std::isfinite(y2[i]));
        ASSERT_NEAR(y1[i], y2[i], 1e-4 * (1 + std::fabs(y1[i]))) << ggml_type_name(t) << " " << i;
      }
    }
  }
  set_num_threads(saved);
}

// Against ggml itself (libggml-cpu.so from the llama-cpp-python package, through ctypes in
// ggml_qdot_reference.py): quantize_activations writes ggml's bytes exactly, and vec_dot equals
// ggml_vec_dot_<type>_<q8 type> up to the order of the float sum over blocks (1e-5 of the sum
// of |products|).
TEST(QMatmul, MatchesGgml) {
  if (!testing::ref_python_has("llama_cpp"))
    GTEST_SKIP() << "llama_cpp not importable in " << testing::ref_python();
  testing::TempDir tmp;
  std::mt19937 rng(16);
  for (GgmlType t : {GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q8_0,
                     GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K}) {
    const int64_t rows = 8, n = ggml_block_size(t) == 256 ? 512 : 320;
    const auto w = random_weights(t, rows, n, rng);
    auto x = random_floats(n, rng);
    // Exact ties in the first block: with amax = 127 the scale is 1 (Q8_K: -1), so k + 0.5
    // rounds to even in ggml's x86 code (the portable reference would round away from zero).
    x[0] = 127.0f;
    for (int j = 1; j < 32; j += 3) x[j] = static_cast<float>(j % 7) - 3.5f;
    const std::string in = tmp.file("in.bin"), out = tmp.file("out.bin");
    {
      std::ofstream f(in, std::ios::binary);
      f.write(reinterpret_cast<const char*>(w.data()), static_cast<std::streamsize>(w.size()));
      f.write(reinterpret_cast<const char*>(x.data()), static_cast<std::streamsize>(4 * n));
    }
    const std::string cmd = testing::ref_python() + " '" + testing::source_dir() +
                            "/tests/kernels/ggml_qdot_reference.py' " + ggml_type_name(t) + " " +
                            std::to_string(n) + " " + std::to_string(rows) + " '" + in + "' '" +
                            out + "' 2>&1";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    std::ifstream f(out, std::ios::binary);
    const std::vector<uint8_t> ref((std::istreambuf_iterator<char>(f)), {});
    const size_t xbytes = ggml_row_size(vec_dot_type(t), n);
    ASSERT_EQ(ref.size(), xbytes + 4 * rows) << ggml_type_name(t);
    std::vector<uint8_t> xq(xbytes);
    quantize_activations(t, x.data(), xq.data(), n);
    for (size_t i = 0; i < xbytes; ++i)
      ASSERT_EQ(xq[i], ref[i]) << ggml_type_name(t) << ": activation byte " << i << " differs";
    const auto wf = dequantized(t, w, rows, n);
    for (int64_t r = 0; r < rows; ++r) {
      float want;
      std::memcpy(&want, ref.data() + xbytes + 4 * r, 4);
      double mag = 0;
      for (int64_t j = 0; j < n; ++j) mag += std::fabs(static_cast<double>(wf[r * n + j]) * x[j]);
      const float got = vec_dot(t, n, w.data() + r * ggml_row_size(t, n), xq.data());
      expect_finite_close(got, want, 1e-5 * mag,
                          std::string(ggml_type_name(t)) + " row " + std::to_string(r));
      expect_finite_close(vec_dot_generic(t, n, w.data() + r * ggml_row_size(t, n), xq.data()),
                          want, 1e-5 * mag,
                          std::string(ggml_type_name(t)) + " portable, row " + std::to_string(r));
    }
  }
}

TEST(QMatmul, Errors) {
  float x[64] = {}, y[64] = {};
  uint8_t w[256] = {};
  auto expect_error = [](auto&& fn, const std::string& needle) {
    try {
      fn();
      ADD_FAILURE() << "no error; expected one naming '" << needle << "'";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  for (GgmlType t : {GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q8_1, GgmlType::Q8_K}) {
    const QMatrix W{t, 1, 256, w};
    expect_error([&] { qmatmul(W, 1, x, 256, y, 1); }, ggml_type_name(t));
    expect_error([&] { qmatmul_reference(W, 1, x, 256, y, 1); }, ggml_type_name(t));
    expect_error([&] { vec_dot_type(t); }, ggml_type_name(t));
    expect_error([&] { vec_dot(t, 256, w, w); }, ggml_type_name(t));
  }
  expect_error([&] { vec_dot_type(static_cast<GgmlType>(99)); }, "99");
  const QMatrix W{GgmlType::Q4_0, 2, 32, w};
  expect_error([&] { qmatmul(W, 2, x, 16, y, 2); }, "ldx");
  expect_error([&] { qmatmul(W, 2, x, 32, y, 1); }, "ldy");
  expect_error([&] { qmatmul(W, -1, x, 32, y, 2); }, "M = -1");
  expect_error([&] { qmatmul(QMatrix{GgmlType::Q4_0, 2, 48, w}, 1, x, 48, y, 2); }, "48");
  expect_error([&] { quantize_activations(GgmlType::Q4_K, x, w, 32); }, "Q8_K");
  // M = 0 and rows = 0 are no-ops.
  qmatmul(W, 0, x, 0, y, 0);
  qmatmul(QMatrix{GgmlType::Q4_0, 0, 32, w}, 1, x, 32, y, 0);
}

}  // namespace
}  // namespace llmkit::kernels
