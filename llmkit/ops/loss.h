// cross_entropy fused with log_softmax: never materialises the [N, V] log-probabilities (at a
// 50257 vocabulary and 8K tokens that would be 1.6 GB). Mean over the rows whose target is not
// ignore_index, as torch.nn.functional.cross_entropy.
#pragma once

#include "llmkit/core/tensor.h"

namespace llmkit::ops {

// logits [..., V] (f32/f64), targets [...] (i32) -> scalar loss.
Tensor cross_entropy(const Tensor& logits, const Tensor& targets, int32_t ignore_index = -100);

// log softmax(logits)[target] per position, 0 where the target is ignore_index: the per-token
// log-probabilities DPO sums per sequence and PPO compares between policy and reference.
// logits [..., V] (f32/f64), targets [...] (i32) -> [...] (logits' dtype). Fused like
// cross_entropy: keeps one log-sum-exp per row, not the [N, V] log-probabilities.
Tensor token_log_probs(const Tensor& logits, const Tensor& targets, int32_t ignore_index = -100);
// The entropy -sum p log p of softmax(logits) per position (PPO's reported entropy; no gradient
// needed there, but it has one). logits [..., V] -> [...].
Tensor softmax_entropy(const Tensor& logits);

}  // namespace llmkit::ops
