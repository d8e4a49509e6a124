// Threading. One pool for everything: our loops use OpenMP and GEMM uses the OpenMP build of
// OpenBLAS, so both share libgomp's threads and never oversubscribe the cores. The count comes
// from LLMKIT_THREADS, else from set_num_threads(), else all cores.
#pragma once

#include <cstdint>

namespace llmkit {

// Number of threads our kernels and BLAS use.
int num_threads();
// Sets the thread count for our loops and for BLAS (n >= 1).
void set_num_threads(int n);

// Calls fn(begin, end) over [0, n) split into contiguous chunks, in parallel when n is at least
// `grain` per thread. Chunk boundaries depend only on n, grain and the thread count.
template <typename Fn>
void parallel_for(int64_t n, int64_t grain, Fn&& fn) {
  if (n <= 0) return;
  const int64_t nt = num_threads();
  if (nt <= 1 || n <= grain) {
    fn(int64_t{0}, n);
    return;
  }
  int64_t chunks = (n + grain - 1) / grain;
  if (chunks > nt) chunks = nt;
#pragma omp parallel for num_threads(chunks) schedule(static)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t b = n * c / chunks, e = n * (c + 1) / chunks;
    fn(b, e);
  }
}

}  // namespace llmkit
