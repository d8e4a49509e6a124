// The caching allocator: every tensor buffer comes from here. Freed buffers go back to a free list
// keyed by size class and are handed out again. On this kind of machine a freshly mapped page
// costs ~7 us per 4 KiB (a new 48 MiB tensor ~83 ms against ~1.3 ms reused), so a training step in
// steady state must map no new memory; stats().fresh_allocs lets tests check exactly that.
//
// The cache is bounded, so that changing shapes (evaluating sequences of varying length, random
// batch sizes) cannot make it grow without end: the bytes cached but unused never exceed
// cache_limit(), which is
//   - LLMKIT_CACHE_LIMIT from the environment if set (bytes, or with a K/M/G suffix; 0 caches
//     nothing, every release goes back to the system), or set_cache_limit();
//   - otherwise the most bytes ever in use at once (at least 64 MiB): the cache never holds more
//     idle memory than the program once needed, so held memory stays below twice its peak.
// When a release would pass the limit, the least recently used size classes go back to the system
// first. A loop of fixed shapes touches the same classes every step, so once its cache is warm it
// neither evicts nor maps anything.
// Thread-safe (one mutex; allocation is per tensor, not per element).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace llmkit {

struct AllocatorStats {
  uint64_t fresh_allocs = 0;  // buffers obtained from the system
  uint64_t reuses = 0;        // buffers served from the cache
  uint64_t evictions = 0;     // cached buffers returned to the system to respect the limit
  size_t held_bytes = 0;    // bytes obtained from the system and not yet returned: in use + cached
  size_t in_use_bytes = 0;  // bytes in live tensors
  size_t peak_in_use_bytes = 0;  // since the start or the last reset_peak()
  size_t cached_bytes() const { return held_bytes - in_use_bytes; }
};

class Allocator {
 public:
  static Allocator& instance();

  // Returns a 64-byte aligned buffer of at least `nbytes`; its size class goes to *capacity and
  // must be given back to release(). When the system refuses, the cache is emptied and the request
  // retried once; then llmkit::Error("cannot allocate N bytes") is thrown.
  void* allocate(size_t nbytes, size_t* capacity);
  void release(void* p, size_t capacity);

  AllocatorStats stats() const;
  void reset_peak();
  // Returns every cached (unused) buffer to the system.
  void empty_cache();

  // The current bound on cached bytes (see the header comment).
  size_t cache_limit() const;
  // Sets the bound in bytes (0: cache nothing) and applies it now; kDefaultLimit restores the
  // default (the environment's LLMKIT_CACHE_LIMIT if set, else relative to peak use).
  static constexpr size_t kDefaultLimit = ~size_t{0};
  void set_cache_limit(size_t bytes);

  // The size class a request of nbytes is rounded up to: multiples of 64 bytes up to 4 KiB, then
  // 8 classes per power of two (at most 12.5% waste). Requests above kMaxBytes raise
  // llmkit::Error (no machine has that much memory, and rounding them up would overflow).
  static constexpr size_t kMaxBytes = size_t{1} << 60;
  static size_t size_class(size_t nbytes);

 private:
  Allocator() = default;
  struct Impl;
  Impl* impl();
  const Impl* impl() const;
};

namespace detail {
// A byte count as LLMKIT_CACHE_LIMIT takes it: digits, optionally followed by K, M or G (powers
// of 1024, either case). Raises llmkit::Error naming `what` otherwise, or on overflow.
size_t parse_byte_count(std::string_view text, const char* what);
}  // namespace detail

}  // namespace llmkit
