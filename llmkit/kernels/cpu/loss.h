// Fused softmax cross-entropy over a vocabulary: per row r of logits [R, V] and class
// targets[r], loss_r = logsumexp(logits_r) - logits_r[target_r]. The forward never materialises
// the softmax: it reads each row once (blockwise online max/sum, one exp per logit) and saves
// lse [R] so the backward is one more read of the logits. Not the mean over rows: the caller
// (ops/loss) divides by the returned count and passes that factor back as dloss_scale.
//
// Targets equal to ignore_index contribute nothing (loss 0, lse 0, no gradient, logits of that
// row not read). Any other target outside [0, V) throws llmkit::Error naming the row and value,
// before any output is written. A row of all -inf (or holding +inf / NaN) gives a NaN loss,
// as in PyTorch.
#pragma once

#include <cstdint>
#include <type_traits>

namespace llmkit::kernels {

// losses [R] per-row loss (0 for ignored rows), lse [R] saved for backward,
// logits [R, V], targets [R]. Returns the number of rows whose target is not ignore_index.
template <typename T>
int64_t cross_entropy_forward(T* losses, T* lse, const T* logits, const int32_t* targets, int64_t R,
                              int64_t V, int32_t ignore_index);

// dlogits [R, V] += dloss_scale * (softmax(logits) - onehot(target)) for non-ignored rows, with
// softmax = exp(logits - lse). For a mean loss pass dloss_scale = dloss / n_valid.
template <typename T>
void cross_entropy_backward(T* dlogits, const T* logits, const T* lse, const int32_t* targets,
                            std::type_identity_t<T> dloss_scale, int64_t R, int64_t V,
                            int32_t ignore_index);

}  // namespace llmkit::kernels
