// Reductions: sum, mean and max along dimensions. Sums accumulate in double for every dtype, so a
// float sum over a long axis loses no precision and its value does not depend on the thread
// count (each output element is summed by one thread in index order).
#pragma once

#include <vector>

#include "llmkit/core/tensor.h"

namespace llmkit::ops {

Tensor sum(const Tensor& x);  // all elements -> shape []
Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim = false);
Tensor mean(const Tensor& x);
Tensor mean(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim = false);
// Maximum along `dim`; the gradient flows to the first maximal element.
Tensor max(const Tensor& x, int64_t dim, bool keepdim = false);

}  // namespace llmkit::ops
