// softmax and log_softmax along one dimension (the last by default; another dim is moved last,
// computed, and moved back). The loops are kernels/cpu/softmax.
#pragma once

#include "llmkit/core/tensor.h"

namespace llmkit::ops {

Tensor softmax(const Tensor& x, int64_t dim = -1);
Tensor log_softmax(const Tensor& x, int64_t dim = -1);

}  // namespace llmkit::ops
