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
//
// The same row scan also gives the per-token log-probabilities of the targets (token_log_probs)
// and the entropy of each row's softmax, the pieces of the preference losses (DPO, PPO).
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

// Per-row log-probability of the target, logp[r] = logits_r[target_r] - logsumexp(logits_r) (the
// negative of cross_entropy_forward's loss), 0 for ignored rows; lse [R] saved for backward as
// there. Returns the number of rows whose target is not ignore_index.
template <typename T>
int64_t token_log_probs_forward(T* logp, T* lse, const T* logits, const int32_t* targets, int64_t R,
                                int64_t V, int32_t ignore_index);

// dlogits [R, V] += dlogp[r] * (onehot(target) - softmax(logits_r)) for non-ignored rows: the
// same pass as cross_entropy_backward with a per-row weight of the opposite sign.
template <typename T>
void token_log_probs_backward(T* dlogits, const T* dlogp, const T* logits, const T* lse,
                              const int32_t* targets, int64_t R, int64_t V, int32_t ignore_index);

// Entropy of softmax(logits_r) per row: H = -sum p log p = lse - sum p x (p = exp(x - lse), so
// log p = x - lse). Saves lse [R] and the mean logit under p, mean [R] = sum p x, for backward.
// Logits of -inf have p = 0 and add nothing (not 0 * -inf = NaN).
template <typename T>
void softmax_entropy_forward(T* entropy, T* lse, T* mean, const T* logits, int64_t R, int64_t V);

// dlogits [R, V] += dentropy[r] * dH/dx with dH/dx_i = -p_i (x_i - mean): from H = lse - sum p x,
// d lse / dx_i = p_i and d(sum p x)/dx_i = p_i + p_i (x_i - mean).
template <typename T>
void softmax_entropy_backward(T* dlogits, const T* dentropy, const T* logits, const T* lse,
                              const T* mean, int64_t R, int64_t V);

}  // namespace llmkit::kernels
