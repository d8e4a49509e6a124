// The machine's memory read bandwidth, STREAM-style: the sum of a float array far larger than the
// last-level cache (1 GiB by default), each thread reading its own contiguous part, best and mean
// of several passes. Decode speed is bounded by it (every decoded token streams all the weights
// once), so bench/quant_vs_llamacpp reports decode as a fraction of this figure:
// weight bytes x tokens/s / read bandwidth. Prints one JSON line:
// {"read_gbps": best, "read_gbps_mean": ..., "bytes": ..., "threads": ..., "passes": ...}.
// usage: bench_bandwidth [--mib N] [--passes N] [--threads N]   (threads default: LLMKIT_THREADS
// or all cores)
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "llmkit/core/parallel.h"

namespace {

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Sum of x[0..n) split over `threads` contiguous parts. Several accumulators per thread (the simd
// reduction) keep the adds from being the bound; the result is printed so the loads cannot be
// optimised away.
double sum_parallel(const float* x, int64_t n, int threads) {
  double total = 0;
#pragma omp parallel num_threads(threads) reduction(+ : total)
  {
    const int t = omp_get_thread_num(), nt = omp_get_num_threads();
    const int64_t b = n * t / nt, e = n * (t + 1) / nt;
    float s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t i = b; i < e; ++i) s += x[i];
    total += s;
  }
  return total;
}

}  // namespace

int main(int argc, char** argv) {
  int64_t mib = 1024, passes = 10;
  int threads = llmkit::num_threads();
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--mib")
      mib = std::atoll(argv[i + 1]);
    else if (a == "--passes")
      passes = std::atoll(argv[i + 1]);
    else if (a == "--threads")
      threads = std::atoi(argv[i + 1]);
    else {
      std::fprintf(stderr, "bench_bandwidth: unknown option %s\n", a.c_str());
      return 2;
    }
  }
  if (mib <= 0 || passes <= 0 || threads <= 0) {
    std::fprintf(stderr, "bench_bandwidth: --mib, --passes and --threads must be positive\n");
    return 2;
  }
  const int64_t n = mib * (int64_t{1} << 20) / static_cast<int64_t>(sizeof(float));
  std::unique_ptr<float[]> x(new float[n]);
  // First touch by the threads that read it later (their part lands near them on NUMA machines).
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t i = 0; i < n; ++i) x[i] = static_cast<float>(i & 7);
  sum_parallel(x.get(), n, threads);  // warm-up: page tables, clocks
  double best = 0, mean = 0, check = 0;
  for (int64_t p = 0; p < passes; ++p) {
    const double t0 = now();
    check += sum_parallel(x.get(), n, threads);
    const double gbps = static_cast<double>(n) * sizeof(float) / (now() - t0) / 1e9;
    best = std::max(best, gbps);
    mean += gbps / static_cast<double>(passes);
  }
  std::printf(
      "{\"read_gbps\": %.2f, \"read_gbps_mean\": %.2f, \"bytes\": %lld, \"threads\": %d, "
      "\"passes\": %lld, \"checksum\": %.0f}\n",
      best, mean, static_cast<long long>(n * sizeof(float)), threads,
      static_cast<long long>(passes), check);
  return 0;
}
