// Internal to qmatmul: the hooks between the portable driver (qmatmul.cpp) and the hand-vectorised
// kernels (qmatmul_avx512.cpp). Not a public header: include qmatmul.h.
#pragma once

#include <cstddef>
#include <cstdint>

#include "llmkit/kernels/cpu/qmatmul.h"

namespace llmkit::kernels::detail {

float fp16_to_f32(uint16_t h);
uint16_t f32_to_fp16(float f);

// One qmatmul call after its activations are quantised: xq holds M rows of xrow bytes each.
struct QGemmArgs {
  const QMatrix& W;
  int64_t M;
  const uint8_t* xq;
  size_t xrow;
  float* Y;
  int64_t ldy;
};

// Y[m, r] for r in [r0, r1), all m: the vectorised kernels where they take W.type, else
// qgemm_rows_generic. Each output is computed by the same instruction sequence whatever r0, r1
// (so results do not depend on how rows are split between threads).
void qgemm_rows(const QGemmArgs& a, int64_t r0, int64_t r1);
void qgemm_rows_generic(const QGemmArgs& a, int64_t r0, int64_t r1);

// Vectorised single dot / activation quantisation; false when this build has none for the type.
bool vec_dot_simd(GgmlType t, int64_t n, const void* w, const void* xq, float* result);
bool quantize_activations_simd(GgmlType w, const float* x, void* dst, int64_t n);
bool qmatmul_simd_compiled();

}  // namespace llmkit::kernels::detail
