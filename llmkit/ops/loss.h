// cross_entropy fused with log_softmax: never materialises the [N, V] log-probabilities (at a
// 50257 vocabulary and 8K tokens that would be 1.6 GB). Mean over the rows whose target is not
// ignore_index, as torch.nn.functional.cross_entropy.
#pragma once

#include "llmkit/core/tensor.h"

namespace llmkit::ops {

// logits [..., V] (f32/f64), targets [...] (i32) -> scalar loss.
Tensor cross_entropy(const Tensor& logits, const Tensor& targets, int32_t ignore_index = -100);

}  // namespace llmkit::ops
