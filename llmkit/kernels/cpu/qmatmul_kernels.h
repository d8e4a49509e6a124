// Internal to qmatmul: the hooks between the portable driver (qmatmul.cpp) and the hand-vectorised
// kernels (qmatmul_avx512.cpp, else qmatmul_avx2.cpp; at most one is compiled in, by the target's
// instruction set). Not a public header: include qmatmul.h.
#pragma once

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && \
    defined(__AVX512VNNI__) && defined(__AVX512VBMI__) && defined(__F16C__)
#define LLMKIT_QMATMUL_AVX512 1
#elif defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#define LLMKIT_QMATMUL_AVX2 1
#endif

#include <omp.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "llmkit/core/parallel.h"
#include "llmkit/kernels/cpu/qmatmul.h"

namespace llmkit::kernels::detail {

// The portable driver's view of one call after its activations are quantised: xq holds M rows
// of xrow bytes each.
struct QGemmArgs {
  const QMatrix& W;
  int64_t M;
  const uint8_t* xq;
  size_t xrow;
  float* Y;
  int64_t ldy;
};

// Y[m, r] for r in [r0, r1), all m, one vec_dot each.
void qgemm_rows_generic(const QGemmArgs& a, int64_t r0, int64_t r1);

// The whole of qmatmul (arguments already checked) with the vectorised kernels: activations
// quantised into the kernels' layout, threads over rows. False when this build has no kernel for
// W.type. Every output equals vec_dot's (the kernels are the same whatever the tile).
bool qmatmul_simd(const QMatrix& W, int64_t M, const float* X, int64_t ldx, float* Y, int64_t ldy);

// Vectorised single dot / activation quantisation; false when this build has none for the type.
// Where neither kernel file is compiled in, qmatmul.cpp defines all four to decline.
bool vec_dot_simd(GgmlType t, int64_t n, const void* w, const void* xq, float* result);
bool quantize_activations_simd(GgmlType w, const float* x, void* dst, int64_t n);
bool qmatmul_simd_compiled();

// The driver both kernel files share. make_panels(m0, m1) writes tokens [m0, m1)'s activations in
// the kernels' layout, run_rows(r0, r1) computes weight rows [r0, r1) for every token. Tokens are
// split over the threads when there are 8 or more, then rows in chunks of ~64 KiB of weights or
// more (so small products stay on one core); inside an OpenMP region all runs in the calling
// thread.
template <class Make, class Rows>
void drive(const QMatrix& W, int64_t M, Make&& make_panels, Rows&& run_rows) {
  const int nt = omp_in_parallel() != 0 ? 1 : num_threads();
  if (nt <= 1) {
    make_panels(0, M);
    run_rows(0, W.rows);
    return;
  }
  if (M >= 8) {
    parallel_for(M, 4, make_panels);
  } else {
    make_panels(0, M);
  }
  const int64_t grain = std::max<int64_t>(
      16, (64 << 10) / std::max<int64_t>(1, static_cast<int64_t>(W.row_bytes()) * M));
  parallel_for(W.rows, grain, run_rows);
}

// n bytes of v, aligned to `align` (a power of two); v is grown, never shrunk.
inline uint8_t* aligned_scratch(std::vector<uint8_t>& v, size_t n, size_t align) {
  if (v.size() < n + align) v.resize(n + align);
  const uintptr_t p = reinterpret_cast<uintptr_t>(v.data());
  return v.data() + ((align - (p & (align - 1))) & (align - 1));
}

}  // namespace llmkit::kernels::detail
