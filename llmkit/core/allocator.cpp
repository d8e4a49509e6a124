#include "llmkit/core/allocator.h"

#include <bit>
#include <cstdlib>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "llmkit/core/error.h"

namespace llmkit {

struct Allocator::Impl {
  mutable std::mutex mu;
  std::unordered_map<size_t, std::vector<void*>> free_lists;  // size class -> cached buffers
  AllocatorStats stats;
};

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
    if (it != s->free_lists.end() && !it->second.empty()) {
      void* p = it->second.back();
      it->second.pop_back();
      s->stats.reuses++;
      s->stats.in_use_bytes += cls;
      if (s->stats.in_use_bytes > s->stats.peak_in_use_bytes)
        s->stats.peak_in_use_bytes = s->stats.in_use_bytes;
      return p;
    }
  }
  void* p = std::aligned_alloc(64, cls);
  LLMKIT_CHECK(p != nullptr, "out of memory allocating ", nbytes, " bytes");
  std::lock_guard<std::mutex> lock(s->mu);
  s->stats.fresh_allocs++;
  s->stats.fresh_bytes += cls;
  s->stats.in_use_bytes += cls;
  if (s->stats.in_use_bytes > s->stats.peak_in_use_bytes)
    s->stats.peak_in_use_bytes = s->stats.in_use_bytes;
  return p;
}

void Allocator::release(void* p, size_t capacity) {
  if (p == nullptr) return;
  Impl* s = impl();
  std::lock_guard<std::mutex> lock(s->mu);
  s->free_lists[capacity].push_back(p);
  s->stats.in_use_bytes -= capacity;
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
  for (auto& [cls, list] : s->free_lists) {
    for (void* p : list) std::free(p);
    s->stats.fresh_bytes -= cls * list.size();
    list.clear();
  }
}

}  // namespace llmkit
