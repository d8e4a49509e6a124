// Gradient clipping by global norm (torch.nn.utils.clip_grad_norm_): when the L2 norm of all
// gradients together exceeds max_norm, every gradient is scaled by max_norm / (norm + 1e-6).
#pragma once

#include <vector>

#include "llmkit/core/tensor.h"

namespace llmkit::train {

// Returns the norm before clipping (summed in double, in parameter order: deterministic).
// max_norm <= 0 only measures; a non-finite norm is returned without scaling.
double clip_grad_norm(const std::vector<Tensor>& params, double max_norm);

}  // namespace llmkit::train
