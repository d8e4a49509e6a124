// Seeded random numbers whose streams do not depend on the thread count. Philox4x32-10 (Salmon et
// al., SC'11, as in PyTorch and JAX) is a counter-based generator: value i of a stream is a pure
// function of (seed, counter + i), so any thread can compute any element, and a parallel fill
// gives the same numbers as a serial one. A Generator advances its counter by the number of
// values it hands out, so successive draws differ and (seed, offset) is a complete state that a
// checkpoint can save.
#pragma once

#include <array>
#include <cstdint>

#include "llmkit/core/tensor.h"

namespace llmkit {

// Philox4x32-10: four 32-bit random words for counter `ctr` under key `key`.
std::array<uint32_t, 4> philox4x32(uint64_t ctr_lo, uint64_t ctr_hi, uint64_t key);

class Generator {
 public:
  explicit Generator(uint64_t seed = 0) : seed_(seed) {}
  uint64_t seed() const { return seed_; }
  uint64_t offset() const { return offset_; }  // values handed out so far
  void set_state(uint64_t seed, uint64_t offset) {
    seed_ = seed;
    offset_ = offset;
  }

  // Reserves n values and returns the counter of the first; value j of the block is
  // uniform_at(base + j) etc. (used by kernels that draw in parallel, e.g. dropout).
  uint64_t reserve(uint64_t n) {
    const uint64_t base = offset_;
    offset_ += n;
    return base;
  }

  // Fills a float tensor (f32 or f64, contiguous) in parallel.
  void uniform_(const Tensor& t, double lo = 0.0, double hi = 1.0);
  void normal_(const Tensor& t, double mean = 0.0, double std = 1.0);
  uint64_t next_u64();
  // Uniform integer in [0, n).
  uint64_t randint(uint64_t n);

 private:
  uint64_t seed_;
  uint64_t offset_ = 0;
};

// The i-th value of the stream of `seed`: uniform in [0, 1) with 24 bits (float) and standard
// normal (Box-Muller over two uniforms of the same counter).
float uniform_at(uint64_t seed, uint64_t i);
float normal_at(uint64_t seed, uint64_t i);

// The process-wide default generator (manual_seed sets it).
Generator& default_generator();
void manual_seed(uint64_t seed);

}  // namespace llmkit
