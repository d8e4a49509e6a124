// The caching allocator and its bound on cached bytes. See allocator.h for the contract.
#include "llmkit/core/allocator.h"

#include <algorithm>
#include <bit>
#include <cctype>
#include <cstdlib>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "llmkit/core/error.h"

namespace llmkit {
namespace {

constexpr size_t kMinDefaultLimit = size_t{64} << 20;  // small programs never evict

struct FreeList {
  std::vector<void*> buffers;
  uint64_t last_use = 0;  // the allocator's clock when the class was last allocated or released
};

}  // namespace

struct Allocator::Impl {
  Impl() {
    if (const char* env = std::getenv("LLMKIT_CACHE_LIMIT"))
      env_limit = detail::parse_byte_count(env, "LLMKIT_CACHE_LIMIT");
    limit = env_limit;
  }

  size_t effective_limit() const {
    return limit != kDefaultLimit ? limit : std::max(max_in_use, kMinDefaultLimit);
  }

  void add_in_use(size_t bytes) {
    stats.in_use_bytes += bytes;
    stats.peak_in_use_bytes = std::max(stats.peak_in_use_bytes, stats.in_use_bytes);
    max_in_use = std::max(max_in_use, stats.in_use_bytes);
  }

  // Returns cached buffers to the system, least recently used class first, until the cache
  // respects the limit. Linear in the number of classes per eviction: there are a few hundred
  // at most, and a warm fixed-shape loop never gets here.
  void trim() {
    const size_t lim = effective_limit();
    while (stats.cached_bytes() > lim) {
      auto victim = free_lists.end();
      for (auto it = free_lists.begin(); it != free_lists.end(); ++it)
        if (!it->second.buffers.empty() &&
            (victim == free_lists.end() || it->second.last_use < victim->second.last_use))
          victim = it;
      if (victim == free_lists.end()) return;  // unreachable: cached bytes live in the lists
      std::free(victim->second.buffers.back());
      victim->second.buffers.pop_back();
      stats.held_bytes -= victim->first;
      stats.evictions++;
      if (victim->second.buffers.empty()) free_lists.erase(victim);
    }
  }

  void free_all_cached() {
    for (auto& [cls, list] : free_lists) {
      for (void* p : list.buffers) std::free(p);
      stats.held_bytes -= cls * list.buffers.size();
    }
    free_lists.clear();
  }

  mutable std::mutex mu;
  std::unordered_map<size_t, FreeList> free_lists;  // size class -> cached buffers
  AllocatorStats stats;
  size_t max_in_use = 0;             // never reset: what the default limit is relative to
  size_t env_limit = kDefaultLimit;  // LLMKIT_CACHE_LIMIT, or kDefaultLimit when unset
  size_t limit = kDefaultLimit;      // in force: env_limit or set_cache_limit()'s
  uint64_t clock = 0;
};

size_t detail::parse_byte_count(std::string_view s, const char* what) {
  size_t i = 0, v = 0;
  bool ok = !s.empty() && std::isdigit(static_cast<unsigned char>(s[0]));
  for (; ok && i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])); ++i)
    ok = !__builtin_mul_overflow(v, size_t{10}, &v) && !__builtin_add_overflow(v, s[i] - '0', &v);
  if (ok && i < s.size()) {  // one suffix letter, last
    const std::string_view units = "KMG";
    const size_t u = units.find(static_cast<char>(std::toupper(static_cast<unsigned char>(s[i]))));
    ok = i + 1 == s.size() && u != std::string_view::npos &&
         !__builtin_mul_overflow(v, size_t{1} << (10 * (u + 1)), &v);
  }
  LLMKIT_CHECK(ok, what, ": '", s, "' is not a byte count (write e.g. 0, 1073741824, 512M or 2G)");
  return v;
}

Allocator& Allocator::instance() {
  static Allocator a;
  return a;
}

Allocator::Impl* Allocator::impl() {
  static Impl* i = new Impl();  // never destroyed: tensors may be released during static exit
  return i;
}
const Allocator::Impl* Allocator::impl() const {
  return const_cast<Allocator*>(this)->impl();
}

size_t Allocator::size_class(size_t nbytes) {
  LLMKIT_CHECK(nbytes <= kMaxBytes, "cannot allocate ", nbytes, " bytes (more than 2^60)");
  if (nbytes == 0) nbytes = 1;
  if (nbytes <= 4096) return (nbytes + 63) & ~size_t{63};
  const int log2 = 63 - std::countl_zero(static_cast<uint64_t>(nbytes - 1));  // 2^log2 < n
  const size_t step = size_t{1} << (log2 - 3);  // 8 classes per octave
  return (nbytes + step - 1) / step * step;
}

void* Allocator::allocate(size_t nbytes, size_t* capacity) {
  const size_t cls = size_class(nbytes);
  *capacity = cls;
  Impl* s = impl();
  {
    std::lock_guard<std::mutex> lock(s->mu);
    auto it = s->free_lists.find(cls);
    if (it != s->free_lists.end() && !it->second.buffers.empty()) {
      void* p = it->second.buffers.back();
      it->second.buffers.pop_back();
      it->second.last_use = ++s->clock;
      s->stats.reuses++;
      s->add_in_use(cls);
      return p;
    }
  }
  void* p = std::aligned_alloc(64, cls);
  if (p == nullptr) {  // the cached buffers may be what the system is missing
    empty_cache();
    p = std::aligned_alloc(64, cls);
  }
  LLMKIT_CHECK(p != nullptr, "cannot allocate ", nbytes, " bytes: out of memory");
  std::lock_guard<std::mutex> lock(s->mu);
  s->stats.fresh_allocs++;
  s->stats.held_bytes += cls;
  s->add_in_use(cls);
  return p;
}

void Allocator::release(void* p, size_t capacity) {
  if (p == nullptr) return;
  Impl* s = impl();
  std::lock_guard<std::mutex> lock(s->mu);
  FreeList& list = s->free_lists[capacity];
  list.buffers.push_back(p);
  list.last_use = ++s->clock;
  s->stats.in_use_bytes -= capacity;
  s->trim();
}

AllocatorStats Allocator::stats() const {
  const Impl* s = impl();
  std::lock_guard<std::mutex> lock(s->mu);
  return s->stats;
}

void Allocator::reset_peak() {
  Impl* s = impl();
  std::lock_guard<std::mutex> lock(s->mu);
  s->stats.peak_in_use_bytes = s->stats.in_use_bytes;
}

void Allocator::empty_cache() {
  Impl* s = impl();
  std::lock_guard<std::mutex> lock(s->mu);
  s->free_all_cached();
}

size_t Allocator::cache_limit() const {
  const Impl* s = impl();
  std::lock_guard<std::mutex> lock(s->mu);
  return s->effective_limit();
}

void Allocator::set_cache_limit(size_t bytes) {
  Impl* s = impl();
  std::lock_guard<std::mutex> lock(s->mu);
  s->limit = bytes == kDefaultLimit ? s->env_limit : bytes;
  s->trim();
}

}  // namespace llmkit
