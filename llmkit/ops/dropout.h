// Dropout: in training, zero each element with probability p and scale the rest by 1 / (1 - p)
// (inverted dropout, so evaluation needs no rescale). The mask comes from the counter-based
// generator: element i keeps iff uniform(seed, base + i) >= p, so the same seed gives the same
// mask for any thread count, and backward recomputes the mask instead of storing it.
#pragma once

#include "llmkit/core/random.h"
#include "llmkit/core/tensor.h"

namespace llmkit::ops {

// Identity when !training or p == 0. Advances gen by x.numel() values when it draws.
Tensor dropout(const Tensor& x, double p, bool training, Generator& gen);

}  // namespace llmkit::ops
