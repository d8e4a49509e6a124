#include "llmkit/core/parallel.h"

#include <omp.h>

#include <atomic>
#include <cstdlib>
#include <string>

#include "llmkit/core/error.h"

namespace llmkit {
namespace {

int threads_from_env() {
  const char* s = std::getenv("LLMKIT_THREADS");
  if (s == nullptr || *s == '\0') return omp_get_num_procs();
  char* end = nullptr;
  const long n = std::strtol(s, &end, 10);
  LLMKIT_CHECK(end != s && *end == '\0' && n >= 1 && n <= 4096,
               "LLMKIT_THREADS must be a positive integer, got '", s, "'");
  return static_cast<int>(n);
}

std::atomic<int>& thread_count() {
  static std::atomic<int> n{threads_from_env()};
  return n;
}

}  // namespace

int num_threads() {
  return thread_count().load(std::memory_order_relaxed);
}

void set_num_threads(int n) {
  LLMKIT_CHECK(n >= 1, "set_num_threads: thread count must be >= 1, got ", n);
  thread_count().store(n, std::memory_order_relaxed);
  omp_set_num_threads(n);
}

}  // namespace llmkit
