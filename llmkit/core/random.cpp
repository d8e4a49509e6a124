#include "llmkit/core/random.h"

#include <cmath>

#include "llmkit/core/parallel.h"

namespace llmkit {

std::array<uint32_t, 4> philox4x32(uint64_t ctr_lo, uint64_t ctr_hi, uint64_t key) {
  uint32_t c0 = static_cast<uint32_t>(ctr_lo), c1 = static_cast<uint32_t>(ctr_lo >> 32);
  uint32_t c2 = static_cast<uint32_t>(ctr_hi), c3 = static_cast<uint32_t>(ctr_hi >> 32);
  uint32_t k0 = static_cast<uint32_t>(key), k1 = static_cast<uint32_t>(key >> 32);
  for (int round = 0; round < 10; ++round) {
    const uint64_t p0 = uint64_t{0xD2511F53u} * c0;
    const uint64_t p1 = uint64_t{0xCD9E8D57u} * c2;
    const uint32_t n0 = static_cast<uint32_t>(p1 >> 32) ^ c1 ^ k0;
    const uint32_t n2 = static_cast<uint32_t>(p0 >> 32) ^ c3 ^ k1;
    c1 = static_cast<uint32_t>(p1);
    c3 = static_cast<uint32_t>(p0);
    c0 = n0;
    c2 = n2;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return {c0, c1, c2, c3};
}

float uniform_at(uint64_t seed, uint64_t i) {
  const auto r = philox4x32(i, 0, seed);
  return static_cast<float>(r[0] >> 8) * (1.0f / 16777216.0f);
}

float normal_at(uint64_t seed, uint64_t i) {
  const auto r = philox4x32(i, 1, seed);  // a different counter half than uniform_at
  // u1 in (0, 1] so log is finite; u2 in [0, 1).
  const double u1 = (static_cast<double>(r[0]) + 1.0) / 4294967296.0;
  const double u2 = static_cast<double>(r[1]) / 4294967296.0;
  return static_cast<float>(std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
}

template <typename Fn>
static void fill(const Tensor& t, Fn&& value_at, const char* op) {
  LLMKIT_CHECK(t.is_contiguous() && (t.dtype() == DType::F32 || t.dtype() == DType::F64), op,
               ": needs a contiguous f32 or f64 tensor, got ", t.str());
  const int64_t n = t.numel();
  if (t.dtype() == DType::F32) {
    float* p = t.data<float>();
    parallel_for(n, 4096, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) p[i] = static_cast<float>(value_at(i));
    });
  } else {
    double* p = t.data<double>();
    parallel_for(n, 4096, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) p[i] = value_at(i);
    });
  }
}

void Generator::uniform_(const Tensor& t, double lo, double hi) {
  const uint64_t base = reserve(t.numel()), seed = seed_;
  fill(
      t, [&](int64_t i) { return lo + (hi - lo) * uniform_at(seed, base + i); }, "uniform_");
}

void Generator::normal_(const Tensor& t, double mean, double std) {
  const uint64_t base = reserve(t.numel()), seed = seed_;
  fill(
      t, [&](int64_t i) { return mean + std * normal_at(seed, base + i); }, "normal_");
}

uint64_t Generator::next_u64() {
  const auto r = philox4x32(reserve(1), 2, seed_);
  return (static_cast<uint64_t>(r[0]) << 32) | r[1];
}

uint64_t Generator::randint(uint64_t n) {
  LLMKIT_CHECK(n > 0, "randint: empty range");
  // Rejection sampling removes the modulo bias.
  const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  uint64_t x;
  do x = next_u64();
  while (x >= limit);
  return x % n;
}

Generator& default_generator() {
  static Generator g(0);
  return g;
}

void manual_seed(uint64_t seed) {
  default_generator().set_state(seed, 0);
}

}  // namespace llmkit
