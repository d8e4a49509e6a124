// concat and split along a dimension. (reshape, permute, transpose, slice and friends are
// Tensor methods in core: they are views.) split returns views, so its gradient is the slices'.
#pragma once

#include <vector>

#include "llmkit/core/tensor.h"

namespace llmkit::ops {

Tensor concat(const std::vector<Tensor>& xs, int64_t dim);
// Pieces of the given sizes along dim (they must add up to the dim's size).
std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim);

}  // namespace llmkit::ops
