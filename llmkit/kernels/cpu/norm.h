// LayerNorm and RMSNorm over R contiguous rows of C channels, forward and backward.
// Plain kernels on raw pointers, parallel over rows; the autograd op lives in llmkit/ops.
//
// Numerics: statistics use two passes (mean, then sum of squared deviations) so a large common
// offset does not cancel; float accumulates in float with vectorised (omp simd) reductions.
// Backward ACCUMULATES into dx, dweight, dbias. dweight / dbias are sums over rows; each thread
// sums a fixed contiguous block of rows and the per-block partials are added in block order, so
// the result is bit-identical run to run for a given thread count (not across thread counts).
// Cost: with more than one thread the backward allocates (threads - 1) x 2C partials per call.
// weight / bias may be null (no affine / no bias); mean / rstd may be null in the forward when no
// backward follows. Nullable pointers are std::type_identity_t<T>* so T is deduced from the
// others and a literal nullptr can be passed.
#pragma once

#include <cstdint>
#include <type_traits>

namespace llmkit::kernels {

// out [R, C] = (x [R, C] - mean) * rstd * weight [C] + bias [C];
// mean [R], rstd [R] = 1 / sqrt(var + eps) (biased variance, as PyTorch) saved for backward.
template <typename T>
void layer_norm_forward(T* out, std::type_identity_t<T>* mean, std::type_identity_t<T>* rstd,
                        const T* x, const std::type_identity_t<T>* weight,
                        const std::type_identity_t<T>* bias, int64_t R, int64_t C, double eps);
// dx [R, C] += dL/dx; dweight [C] += sum_r dout * xhat; dbias [C] += sum_r dout (either may be
// null); from dout [R, C], x [R, C], weight [C] (or null) and the saved mean [R], rstd [R].
template <typename T>
void layer_norm_backward(T* dx, std::type_identity_t<T>* dweight, std::type_identity_t<T>* dbias,
                         const T* dout, const T* x, const std::type_identity_t<T>* weight,
                         const T* mean, const T* rstd, int64_t R, int64_t C);

// out [R, C] = x [R, C] * rstd * weight [C]; rstd [R] = 1 / sqrt(mean(x^2) + eps) saved.
template <typename T>
void rms_norm_forward(T* out, std::type_identity_t<T>* rstd, const T* x,
                      const std::type_identity_t<T>* weight, int64_t R, int64_t C, double eps);
// dx [R, C] += dL/dx; dweight [C] += sum_r dout * x * rstd (may be null);
// from dout [R, C], x [R, C], weight [C] (or null) and the saved rstd [R].
template <typename T>
void rms_norm_backward(T* dx, std::type_identity_t<T>* dweight, const T* dout, const T* x,
                       const std::type_identity_t<T>* weight, const T* rstd, int64_t R, int64_t C);

}  // namespace llmkit::kernels
