// Quantisation (kernels/cpu/quantize.h). Exactness: on ~600 rows of many shapes (Gaussian at
// several scales, heavy tails, one outlier, all-positive, all-negative, constant, zero rows and
// zero sub-blocks, tiny values whose scales are fp16 subnormals or underflow, sub-blocks of very
// different magnitudes) every byte must equal llama.cpp's own libggml (ggml_quantize_chunk
// without an importance matrix, called by tests/kernels/ggml_quantize_reference.py) and the `gguf`
// package's numpy quantisers where they exist; those tests skip visibly without the packages.
// Always run: quantise -> dequantize_row error within per-type bounds derived below, exact round
// trips of values already on a type's grid, unaligned output, and the errors.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iomanip>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "llmkit/core/error.h"
#include "llmkit/kernels/cpu/quant.h"
#include "llmkit/kernels/cpu/quantize.h"
#include "tests/common/error_of.h"
#include "tests/common/reference.h"
#include "tests/common/temp_dir.h"

namespace llmkit::kernels {
namespace {

using llmkit::testing::error_of;

constexpr GgmlType kAll[] = {GgmlType::F32,  GgmlType::F16,  GgmlType::BF16, GgmlType::Q8_0,
                             GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1,
                             GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K};

std::vector<uint8_t> quantize(GgmlType t, const std::vector<float>& x, int64_t n_per_row) {
  const size_t row_bytes = ggml_row_size(t, n_per_row);
  const int64_t rows = static_cast<int64_t>(x.size()) / n_per_row;
  std::vector<uint8_t> q(row_bytes * rows);
  for (int64_t r = 0; r < rows; ++r)
    quantize_row(t, x.data() + r * n_per_row, q.data() + r * row_bytes, n_per_row);
  return q;
}

std::vector<float> dequantize(GgmlType t, const std::vector<uint8_t>& q, int64_t n) {
  std::vector<float> y(n);
  dequantize_row(t, q.data(), y.data(), n);
  return y;
}

// ---- test rows --------------------------------------------------------------------------------

struct Rows {
  int64_t n_per_row = 0;
  std::vector<float> x;            // rows * n_per_row
  std::vector<std::string> kinds;  // what each row is, for failure messages
};

// Rows of 512 (two K-quant super-blocks), 26 kinds x 24 + 3, fixed seed.
Rows test_rows() {
  Rows r;
  r.n_per_row = 512;
  std::mt19937 rng(1234);
  std::normal_distribution<float> gauss(0.0f, 1.0f);
  std::uniform_real_distribution<float> unif(0.0f, 1.0f);
  auto add = [&](const std::string& kind, auto&& gen) {
    for (int64_t i = 0; i < r.n_per_row; ++i) r.x.push_back(gen(i));
    r.kinds.push_back(kind);
  };
  for (int rep = 0; rep < 24; ++rep) {
    for (float s : {1.0f, 0.02f, 1e-3f, 30.0f, 1e3f})
      add("gaussian*" + std::to_string(s), [&](int64_t) { return s * gauss(rng); });
    add("uniform[0,1)", [&](int64_t) { return unif(rng); });
    add("uniform[0.5,1.5)", [&](int64_t) { return 0.5f + unif(rng); });
    add("uniform(-2,-1]", [&](int64_t) { return -1.0f - unif(rng); });
    add("heavy tails", [&](int64_t) { return gauss(rng) / std::sqrt(unif(rng) + 1e-3f); });
    const int64_t at = rng() % r.n_per_row;
    const float big = (rep % 2 ? -1.0f : 1.0f) * 50.0f * (1.0f + unif(rng));
    add("one outlier", [&](int64_t i) { return i == at ? big : 0.05f * gauss(rng); });
    for (float s : {3e-6f, 1e-8f, 1e-30f})
      add("tiny*" + std::to_string(s), [&](int64_t) { return s * gauss(rng); });
    add("sub-block magnitudes 1e-4..1e3", [&](int64_t i) {
      return std::pow(10.0f, static_cast<float>((i / 16 + rep) % 8) - 4.0f) * gauss(rng);
    });
    add("zero sub-blocks", [&](int64_t i) { return (i / 32) % 3 == rep % 3 ? 0.0f : gauss(rng); });
    add("zero 16-blocks", [&](int64_t i) { return (i / 16) % 2 ? 0.0f : gauss(rng); });
    add("one value per 16", [&](int64_t i) { return i % 16 == rep % 16 ? gauss(rng) : 0.0f; });
    add("small integers", [&](int64_t) { return std::round(4.0f * gauss(rng)); });
    add("quantised levels", [&](int64_t) { return 0.125f * static_cast<float>(rng() % 16); });
    const float c = 2.0f * gauss(rng);
    add("constant", [&](int64_t) { return c; });
    add("ties at .5",
        [&](int64_t) { return 0.5f * static_cast<float>(static_cast<int>(rng() % 33) - 16); });
    // Values half-way between two levels of a grid whose step c has an inexact reciprocal:
    // x * (1 / c) lands within an ulp of a tie, where the rounding of each operation decides.
    for (const std::pair<int, int>& grid :
         {std::pair{-8, 7}, {-16, 15}, {-127, 127}, {0, 15}, {0, 31}}) {
      const int lo = grid.first, hi = grid.second;  // (clang 14 cannot capture a binding)
      const float c = 0.3f * (1.0f + unif(rng));
      add("ties on a " + std::to_string(lo) + ".." + std::to_string(hi) + " grid", [&](int64_t i) {
        if (i % 32 == 0) return static_cast<float>(lo) * c;
        if (i % 32 == 1) return static_cast<float>(hi) * c;
        return c * (static_cast<float>(lo + static_cast<int>(rng() % (hi - lo))) + 0.5f);
      });
    }
  }
  add("zero", [](int64_t) { return 0.0f; });
  add("negative zero", [](int64_t) { return -0.0f; });
  add("fp16 overflow", [&](int64_t) { return 7e4f * gauss(rng); });
  add("float subnormals", [&](int64_t) { return 1e-39f * gauss(rng); });
  add("huge", [&](int64_t) { return 1e30f * gauss(rng); });
  add("near FLT_MAX", [&](int64_t) { return 1e38f * gauss(rng); });
  add("mixed 1e-30..1e30",
      [&](int64_t i) { return std::pow(10.0f, static_cast<float>(i % 61) - 30.0f) * gauss(rng); });
  return r;
}

// ---- references -------------------------------------------------------------------------------

std::string reference_script() {
  return llmkit::testing::source_dir() + "/tests/kernels/ggml_quantize_reference.py";
}

// Empty when `backend` can run; else why not.
std::string backend_missing(const std::string& backend) {
  if (!llmkit::testing::ref_python_has("numpy"))
    return "numpy does not import in " + llmkit::testing::ref_python();
  const std::string cmd =
      llmkit::testing::ref_python() + " " + reference_script() + " check " + backend + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return "cannot run " + cmd;
  std::string out;
  char buf[256];
  while (fgets(buf, sizeof buf, p)) out += buf;
  const int rc = pclose(p);
  if (rc == 0) return "";
  return out.empty() ? cmd + " failed" : out;
}

std::string hex(const uint8_t* p, size_t n) {
  std::ostringstream os;
  for (size_t k = 0; k < n; ++k) os << std::hex << std::setw(2) << std::setfill('0') << int(p[k]);
  return os.str();
}

std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), {});
}

// Where a backend is known not to compute what ggml's C code does (why), else "". gguf-py's
// Q4_0 / Q5_0 compute x * id + offset in float64, i.e. as an FMA build of ggml would round it
// (its own FIXME says so), and take the maximum's sign from a -0 where ggml starts from +0.
std::string known_difference(const std::string& backend, GgmlType t, const std::string& kind) {
  if (backend != "gguf" || (t != GgmlType::Q4_0 && t != GgmlType::Q5_0)) return "";
  if (kind.rfind("ties", 0) == 0 || kind == "negative zero")
    return "gguf-py rounds Q4_0/Q5_0 ties as an FMA build would and keeps -0 maxima";
  return "";
}

// Our bytes for every type must equal the backend's; per type, the count of differing blocks
// and the first one (row kind, both blocks in hex) are reported.
void expect_same_as(const std::string& backend) {
  const std::string missing = backend_missing(backend);
  if (!missing.empty())
    GTEST_SKIP() << "reference backend `" << backend << "` unavailable: " << missing;
  const Rows rows = test_rows();
  llmkit::testing::TempDir dir;
  {
    std::ofstream f(dir.file("x.f32"), std::ios::binary);
    f.write(reinterpret_cast<const char*>(rows.x.data()),
            static_cast<std::streamsize>(rows.x.size() * 4));
  }
  std::string cmd = llmkit::testing::ref_python() + " " + reference_script() + " quantize " +
                    backend + " " + dir.file("x.f32") + " " + std::to_string(rows.n_per_row) + " " +
                    dir.path.string();
  for (GgmlType t : kAll) cmd += std::string(" ") + ggml_type_name(t);
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  int compared = 0;
  for (GgmlType t : kAll) {
    const std::string name = ggml_type_name(t);
    const std::vector<uint8_t> theirs = read_file(dir.file(name + ".bin"));
    if (theirs.empty()) {
      const std::vector<uint8_t> why = read_file(dir.file(name + ".skip"));
      std::printf("[ %s ] %s: no reference (%s)\n", backend.c_str(), name.c_str(),
                  std::string(why.begin(), why.end()).c_str());
      continue;
    }
    const std::vector<uint8_t> ours = quantize(t, rows.x, rows.n_per_row);
    ASSERT_EQ(ours.size(), theirs.size()) << name;
    const size_t bytes = ggml_type_size(t), block = static_cast<size_t>(ggml_block_size(t));
    const size_t blocks_per_row = static_cast<size_t>(rows.n_per_row) / block;
    size_t differ = 0, first = 0, skipped = 0;
    for (size_t b = 0; b < ours.size() / bytes; ++b) {
      if (!known_difference(backend, t, rows.kinds[b / blocks_per_row]).empty()) {
        ++skipped;
        continue;
      }
      if (std::memcmp(ours.data() + b * bytes, theirs.data() + b * bytes, bytes) != 0 &&
          differ++ == 0)
        first = b;
    }
    if (skipped)
      std::printf("[ %s ] %s: %zu blocks not compared (%s)\n", backend.c_str(), name.c_str(),
                  skipped, known_difference(backend, t, "ties").c_str());
    EXPECT_EQ(differ, 0u) << name << ": " << differ << " of " << ours.size() / bytes - skipped
                          << " blocks differ from " << backend << "; first: block " << first
                          << " (row " << first / blocks_per_row << ", "
                          << rows.kinds[first / blocks_per_row] << ")\n  ours   "
                          << hex(ours.data() + first * bytes, bytes) << "\n  theirs "
                          << hex(theirs.data() + first * bytes, bytes);
    ++compared;
  }
  std::printf("[ %s ] %d types compared on %zu rows of %lld\n", backend.c_str(), compared,
              rows.kinds.size(), static_cast<long long>(rows.n_per_row));
}

TEST(QuantizeReference, SameBytesAsLlamaCppGgml) {
  expect_same_as("ggml");
}

TEST(QuantizeReference, SameBytesAsGgufPackage) {
  expect_same_as("gguf");
}

// ---- always-run checks ------------------------------------------------------------------------

// Relative RMS error of quantise -> dequantise over Gaussian rows: sqrt(sum (y-x)^2 / sum x^2);
// NaN when anything is not finite (so the bound check fails).
double rel_rms_error(GgmlType t, const std::vector<float>& x, int64_t n_per_row) {
  const std::vector<uint8_t> q = quantize(t, x, n_per_row);
  const size_t row_bytes = ggml_row_size(t, n_per_row);
  double err = 0, ref = 0;
  std::vector<float> y(n_per_row);
  for (size_t r = 0; r < x.size() / n_per_row; ++r) {
    dequantize_row(t, q.data() + r * row_bytes, y.data(), n_per_row);
    for (int64_t i = 0; i < n_per_row; ++i) {
      const double xi = x[r * n_per_row + i], yi = y[i];
      if (!std::isfinite(yi)) return std::nan("");
      err += (yi - xi) * (yi - xi);
      ref += xi * xi;
    }
  }
  return std::sqrt(err / ref);
}

// Bounds on the relative RMS error for N(0, 1) data. A uniform grid of step D errs by D / sqrt(12)
// RMS. Q8_0: D = amax / 127 with amax of 32 Gaussians ~ 2.1 sigma: ~0.0048; Q4_0: D = amax / 8
// (~0.075, one level wasted on the sign side), Q5_0 half of it; Q4_1/Q5_1 span max - min
// (~4.2 sigma) in 15/31 steps: ~0.081 / ~0.039. The K-quants fit scale and min per sub-block
// (error below the plain grid's) but lose a little to 6-bit scales: Q4_K ~ Q4_1, Q5_K ~ Q5_1,
// Q6_K 63 levels over 16 elements ~0.018. F16 / BF16: half an ulp of 11 / 8 bits, ~2^-12 / 2^-9
// relative at most, less on average. Measured values (printed) sit at 60-90% of these bounds,
// which leave room for the seed but would catch a level off by one or a wrong scale.
double error_bound(GgmlType t) {
  switch (t) {
    case GgmlType::F32:
      return 0.0;
    case GgmlType::F16:
      return 3e-4;
    case GgmlType::BF16:
      return 2.5e-3;
    case GgmlType::Q8_0:
      return 6e-3;
    case GgmlType::Q4_0:
      return 0.12;
    case GgmlType::Q5_0:
      return 0.06;
    case GgmlType::Q4_1:
      return 0.10;
    case GgmlType::Q5_1:
      return 0.05;
    case GgmlType::Q4_K:
      return 0.10;
    case GgmlType::Q5_K:
      return 0.05;
    case GgmlType::Q6_K:
      return 0.025;
    default:
      return 0.0;
  }
}

TEST(Quantize, RoundTripErrorWithinBounds) {
  std::mt19937 rng(7);
  std::normal_distribution<float> gauss(0.0f, 1.0f);
  const int64_t n = 1024;
  std::vector<float> x(64 * n);
  for (float& v : x) v = gauss(rng);
  for (GgmlType t : kAll) {
    const double e = rel_rms_error(t, x, n);
    std::printf("  %-5s relative RMS error %.5f (bound %.5f)\n", ggml_type_name(t), e,
                error_bound(t));
    EXPECT_LE(e, error_bound(t)) << ggml_type_name(t);
  }
}

// Values already on a type's grid come back exactly (and zeros stay zeros).
TEST(Quantize, ValuesOnTheGridRoundTripExactly) {
  std::mt19937 rng(11);
  auto exact = [](GgmlType t, const std::vector<float>& x) {
    const int64_t n = static_cast<int64_t>(x.size());
    const std::vector<float> y = dequantize(t, quantize(t, x, n), n);
    for (int64_t i = 0; i < n; ++i)
      if (y[i] != x[i]) {
        ADD_FAILURE() << ggml_type_name(t) << ": element " << i << " was " << x[i] << ", came back "
                      << y[i];
        return;
      }
  };
  const int64_t n = 512;
  // Level sets where the extreme levels occur in every block, so the fitted grid is this one.
  auto levels = [&](int lo, int hi, int block, auto&& value) {
    std::vector<float> x(n);
    for (int64_t i = 0; i < n; ++i) {
      int q = lo + static_cast<int>(rng() % (hi - lo + 1));
      if (i % block == 0) q = lo;
      if (i % block == 1) q = hi;
      x[i] = value(q);
    }
    return x;
  };
  exact(GgmlType::F32, levels(-1000, 1000, 1, [](int q) { return q * 0.37f; }));
  exact(GgmlType::F16, levels(-2048, 2048, 1, [](int q) { return q * 0.25f; }));
  exact(GgmlType::BF16, levels(-128, 128, 1, [](int q) { return q * 1024.0f; }));
  exact(GgmlType::Q8_0, levels(-127, 127, 32, [](int q) { return q * 0.0078125f; }));
  exact(GgmlType::Q8_0, levels(-127, 127, 32, [](int q) { return q * -3.0f; }));
  exact(GgmlType::Q4_0, levels(-8, 7, 32, [](int q) { return q * 0.5f; }));
  exact(GgmlType::Q5_0, levels(-16, 15, 32, [](int q) { return q * 0.125f; }));
  exact(GgmlType::Q4_1, levels(0, 15, 32, [](int q) { return q * 0.25f - 1.5f; }));
  exact(GgmlType::Q5_1, levels(0, 31, 32, [](int q) { return q * 0.25f + 3.0f; }));
  // K-quants: a sub-block scale of 63 * d (and min 63 * dmin) with fp16 d, dmin is stored exactly.
  exact(GgmlType::Q4_K,
        levels(0, 15, 32, [](int q) { return q * (63.0f / 64) - 5 * (63.0f / 64); }));
  exact(GgmlType::Q5_K, levels(0, 31, 32, [](int q) { return q * (63.0f / 128) - 63.0f / 32; }));
  exact(GgmlType::Q6_K, levels(-32, 31, 16, [](int q) { return q * 0.0625f; }));
  for (GgmlType t : kAll) exact(t, std::vector<float>(n, 0.0f));
}

// quantize_row (K-quant searches in SIMD lanes, super-blocks in pairs; Q8_0 in vectors) writes
// the same bytes as quantize_row_generic (one sub-block / element at a time) on every test row, and
// on rows of 1 and 3 super-blocks (the odd one goes through the lanes padded).
TEST(Quantize, LanesSameBytesAsGeneric) {
  const Rows rows = test_rows();
  for (GgmlType t : kAll) {
    for (int64_t n : {rows.n_per_row, int64_t{256}, int64_t{768}}) {
      const size_t row_bytes = ggml_row_size(t, n);
      std::vector<uint8_t> a(row_bytes), b(row_bytes);
      int differ = 0;
      for (size_t at = 0; at + n <= rows.x.size(); at += n) {
        quantize_row(t, rows.x.data() + at, a.data(), n);
        quantize_row_generic(t, rows.x.data() + at, b.data(), n);
        if (a != b && differ++ == 0)
          ADD_FAILURE() << ggml_type_name(t) << ", rows of " << n << ": elements " << at << ".. ("
                        << rows.kinds[at / rows.n_per_row] << ") differ\n  lanes   "
                        << hex(a.data(), row_bytes) << "\n  generic " << hex(b.data(), row_bytes);
      }
      EXPECT_EQ(differ, 0) << ggml_type_name(t) << ", rows of " << n;
    }
  }
}

// Output goes through byte pointers: an odd address gives the same bytes.
TEST(Quantize, UnalignedOutputSameBytes) {
  std::mt19937 rng(3);
  std::normal_distribution<float> gauss(0.0f, 1.0f);
  std::vector<float> x(512);
  for (float& v : x) v = gauss(rng);
  for (GgmlType t : kAll) {
    const std::vector<uint8_t> aligned = quantize(t, x, 512);
    std::vector<uint8_t> buf(aligned.size() + 1);
    quantize_row(t, x.data(), buf.data() + 1, 512);
    EXPECT_EQ(0, std::memcmp(buf.data() + 1, aligned.data(), aligned.size())) << ggml_type_name(t);
  }
}

TEST(Quantize, TypesItWrites) {
  for (GgmlType t : kAll) EXPECT_TRUE(ggml_can_quantize(t)) << ggml_type_name(t);
  for (GgmlType t : {GgmlType::Q8_1, GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q8_K})
    EXPECT_FALSE(ggml_can_quantize(t)) << ggml_type_name(t);
}

TEST(Quantize, Errors) {
  std::vector<float> x(512, 1.0f);
  std::vector<uint8_t> out(4096);
  auto err = [&](GgmlType t, int64_t n) {
    return error_of([&] { quantize_row(t, x.data(), out.data(), n); });
  };
  EXPECT_NE(err(GgmlType::Q2_K, 256).find("Q2_K"), std::string::npos) << err(GgmlType::Q2_K, 256);
  EXPECT_NE(err(GgmlType::Q8_1, 32).find("Q8_1"), std::string::npos);
  EXPECT_NE(err(static_cast<GgmlType>(99), 32).find("99"), std::string::npos);
  EXPECT_NE(err(GgmlType::Q4_0, 31).find("31"), std::string::npos) << err(GgmlType::Q4_0, 31);
  EXPECT_NE(err(GgmlType::Q4_K, 288).find("Q4_K"), std::string::npos);
  EXPECT_NE(err(GgmlType::Q8_0, -32).find("-32"), std::string::npos);
  EXPECT_EQ(err(GgmlType::Q6_K, 0), "(no error)");
  for (GgmlType t : kAll) {
    for (float bad : {std::nanf(""), INFINITY, -INFINITY}) {
      x.assign(512, 1.0f);
      x[300] = bad;
      const std::string e = err(t, 512);
      EXPECT_NE(e.find(ggml_type_name(t)), std::string::npos) << e;
      EXPECT_NE(e.find("300"), std::string::npos) << e;
    }
  }
}

}  // namespace
}  // namespace llmkit::kernels
