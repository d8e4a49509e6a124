// The AVX-512 (VNNI, BF16) kernels of qmatmul (qmatmul.h); compiled to stubs that decline
// everything when the build's target lacks them, so qmatmul.cpp's portable code runs.
#include "llmkit/kernels/cpu/qmatmul_kernels.h"

namespace llmkit::kernels::detail {

bool qmatmul_simd_compiled() {
  return false;
}

bool vec_dot_simd(GgmlType, int64_t, const void*, const void*, float*) {
  return false;
}

bool quantize_activations_simd(GgmlType, const float*, void*, int64_t) {
  return false;
}

void qgemm_rows(const QGemmArgs& a, int64_t r0, int64_t r1) {
  qgemm_rows_generic(a, r0, r1);
}

}  // namespace llmkit::kernels::detail
