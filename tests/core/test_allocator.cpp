// The caching allocator's bound on cached memory (changing shapes cannot grow it without end,
// fixed shapes still reuse everything), its LLMKIT_CACHE_LIMIT syntax, and what a request the
// system cannot serve raises. Tensor::empty does not touch its pages, so the loops below map
// address space, not resident memory.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "llmkit/core/allocator.h"
#include "llmkit/core/tensor.h"

using namespace llmkit;

// ASan aborts on absurd requests unless told to return null, as glibc does; the huge-request
// test needs the null. No effect in builds without ASan.
extern "C" const char* __asan_default_options() {
  return "allocator_may_return_null=1";
}

namespace {

constexpr size_t kMiB = size_t{1} << 20;

// Restores the default bound when a test ends, also when it fails.
struct CacheLimitGuard {
  explicit CacheLimitGuard(size_t bytes) { Allocator::instance().set_cache_limit(bytes); }
  ~CacheLimitGuard() { Allocator::instance().set_cache_limit(Allocator::kDefaultLimit); }
};

// Allocates tensors of random sizes in [lo, hi) bytes, keeping the last `live` alive, and checks
// after every step that the cache respects `limit`. Returns the sum of the distinct size
// classes seen: what an unbounded cache would end up holding.
size_t churn(size_t lo, size_t hi, int steps, size_t live, size_t limit, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<size_t> bytes(lo / 4, hi / 4 - 1);
  std::vector<Tensor> alive(live);
  std::vector<size_t> classes;
  for (int i = 0; i < steps; ++i) {
    const size_t n = bytes(rng);
    const size_t cls = Allocator::size_class(n * 4);
    if (std::find(classes.begin(), classes.end(), cls) == classes.end()) classes.push_back(cls);
    alive[i % live] = Tensor::empty({static_cast<int64_t>(n)});
    const AllocatorStats s = Allocator::instance().stats();
    EXPECT_LE(s.cached_bytes(), limit) << "step " << i;
    if (s.cached_bytes() > limit) break;
  }
  size_t total = 0;
  for (size_t c : classes) total += c;
  return total;
}

}  // namespace

TEST(Allocator, CacheStaysBoundedUnderChangingShapes) {
  const size_t limit = 8 * kMiB;
  CacheLimitGuard guard(limit);
  auto& a = Allocator::instance();
  const AllocatorStats before = a.stats();
  const size_t distinct = churn(4096, 2 * kMiB, 600, 3, limit, 1);
  const AllocatorStats after = a.stats();
  // Unbounded, the cache would keep a buffer of every class it saw; bounded, it let some go.
  EXPECT_GT(distinct, limit + 3 * 2 * kMiB);
  EXPECT_GT(after.evictions, before.evictions);
  EXPECT_LE(after.held_bytes, after.in_use_bytes + limit);
}

TEST(Allocator, DefaultBoundFollowsPeakUse) {
  if (std::getenv("LLMKIT_CACHE_LIMIT") != nullptr)
    GTEST_SKIP() << "LLMKIT_CACHE_LIMIT is set: the default bound is not in force";
  CacheLimitGuard guard(Allocator::kDefaultLimit);
  auto& a = Allocator::instance();
  // At least 64 MiB, and at least the most ever in use.
  EXPECT_GE(a.cache_limit(), 64 * kMiB);
  { Tensor big = Tensor::empty({static_cast<int64_t>(80 * kMiB / 4)}); }
  const size_t limit = a.cache_limit();
  EXPECT_GE(limit, 80 * kMiB);
  // Sizes of 1-16 MiB, one alive at a time: an unbounded cache would hold every class seen.
  const uint64_t evictions = a.stats().evictions;
  const size_t distinct = churn(kMiB, 16 * kMiB, 300, 1, limit, 2);
  EXPECT_GT(distinct, limit);
  EXPECT_GT(a.stats().evictions, evictions);
}

TEST(Allocator, FixedShapesReuseEverythingUnderTheBound) {
  CacheLimitGuard guard(6 * kMiB);
  auto& a = Allocator::instance();
  a.empty_cache();
  // A fixed pattern of sizes, like a training step: 3 MiB at most alive, 4.3 MiB of buffers.
  auto step = [] {
    Tensor x = Tensor::empty({512, 1024});  // 2 MiB
    Tensor h = Tensor::empty({256, 1024});  // 1 MiB
    x = Tensor();
    Tensor g = Tensor::empty({128, 1024});  // 512 KiB
    Tensor y = Tensor::empty({200, 1000});
  };
  step();
  const AllocatorStats warm = a.stats();
  for (int i = 0; i < 20; ++i) step();
  EXPECT_EQ(a.stats().fresh_allocs, warm.fresh_allocs);
  EXPECT_EQ(a.stats().evictions, warm.evictions);
}

TEST(Allocator, ZeroLimitCachesNothing) {
  CacheLimitGuard guard(0);
  auto& a = Allocator::instance();
  { Tensor t = Tensor::empty({1000}); }
  EXPECT_EQ(a.stats().cached_bytes(), 0u);
  const uint64_t fresh = a.stats().fresh_allocs;
  { Tensor t = Tensor::empty({1000}); }
  EXPECT_EQ(a.stats().fresh_allocs, fresh + 1);
}

TEST(Allocator, ParsesCacheLimit) {
  using detail::parse_byte_count;
  EXPECT_EQ(parse_byte_count("0", "X"), 0u);
  EXPECT_EQ(parse_byte_count("1073741824", "X"), size_t{1} << 30);
  EXPECT_EQ(parse_byte_count("512M", "X"), size_t{512} << 20);
  EXPECT_EQ(parse_byte_count("2g", "X"), size_t{2} << 30);
  EXPECT_EQ(parse_byte_count("64k", "X"), size_t{64} << 10);
  for (const char* bad :
       {"", "-1", "1.5G", "12x", "G", "1GB", "99999999999999999999", "17179869184G"})
    EXPECT_THROW(parse_byte_count(bad, "LLMKIT_CACHE_LIMIT"), Error) << bad;
  try {
    parse_byte_count("lots", "LLMKIT_CACHE_LIMIT");
    ADD_FAILURE() << "'lots' parsed";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("LLMKIT_CACHE_LIMIT: 'lots'"), std::string::npos)
        << e.what();
  }
}

TEST(Allocator, ImpossibleRequestRaisesErrorNamingTheShape) {
  // 2^50 floats = 4 PiB: more than the address space, so the system refuses.
  const int64_t n = int64_t{1} << 50;
  try {
    Tensor t = Tensor::empty({n});
    FAIL() << "allocated 4 PiB";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("cannot allocate 4503599627370496 bytes for tensor of shape "
                     "[1125899906842624]"),
              std::string::npos)
        << m;
  }
  // Above 2^60 bytes the allocator refuses before asking the system.
  size_t cap = 0;
  EXPECT_THROW(Allocator::instance().allocate(~size_t{0}, &cap), Error);
  // The failed requests left nothing behind, and the allocator still works.
  Tensor ok = Tensor::zeros({4});
  EXPECT_EQ(ok.to_vector<float>(), (std::vector<float>{0, 0, 0, 0}));
}
