// Row-wise softmax and log-softmax over R contiguous rows of C channels (the last dimension).
// Plain kernels on raw pointers, parallel over rows; the autograd op lives in llmkit/ops.
// For the fused softmax + cross-entropy over a vocabulary see loss.h.
//
// Numerics: each row subtracts its max before exp, so any finite inputs (1e4, -1e30) are safe;
// float uses the vectorised exp_approx (~2e-7 relative), double uses std::exp; row sums are
// vectorised reductions, so the float result depends on the build but not on the thread count.
// -inf entries (masks) give exactly 0 probability. A row of all -inf, or a row holding +inf or
// NaN, gives NaN for the whole row, as PyTorch does: a fully masked row is a bug upstream, and
// NaN makes it visible instead of silently returning a uniform or zero distribution.
// Forward may run in place (y == x); backward ACCUMULATES into dx, which must not alias dy or y.
#pragma once

#include <cstdint>

namespace llmkit::kernels {

// y [R, C] = softmax(x [R, C]) along C.
template <typename T>
void softmax_forward(T* y, const T* x, int64_t R, int64_t C);
// dx [R, C] += y * (dy - sum_c(dy * y)), from y [R, C] the forward output and dy [R, C].
template <typename T>
void softmax_backward(T* dx, const T* dy, const T* y, int64_t R, int64_t C);

// y [R, C] = x - max - log(sum_c exp(x - max)) along C.
template <typename T>
void log_softmax_forward(T* y, const T* x, int64_t R, int64_t C);
// dx [R, C] += dy - exp(y) * sum_c(dy), from y [R, C] the forward output and dy [R, C].
template <typename T>
void log_softmax_backward(T* dx, const T* dy, const T* y, int64_t R, int64_t C);

}  // namespace llmkit::kernels
