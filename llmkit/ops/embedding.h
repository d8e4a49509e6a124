// Embedding lookup: row ids[i] of the table. The backward is a scatter-add into the table's
// gradient (a token that occurs twice gets both contributions); it runs in parallel over the
// embedding channels, so every element is summed by one thread in token order: deterministic.
#pragma once

#include "llmkit/core/tensor.h"

namespace llmkit::ops {

// ids [...] (i32, each in [0, V)), weight [V, C] -> [..., C].
Tensor embedding(const Tensor& ids, const Tensor& weight);

}  // namespace llmkit::ops
