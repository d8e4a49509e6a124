// Normalisation over the last dimension: layer_norm (mean and variance, as in GPT-2 and BERT)
// and rms_norm (root mean square only, as in llama and T5). The loops are kernels/cpu/norm.
#pragma once

#include "llmkit/core/tensor.h"

namespace llmkit::ops {

// x [..., C]; weight, bias [C] or undefined.
Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps = 1e-5);
Tensor rms_norm(const Tensor& x, const Tensor& weight, double eps = 1e-6);

}  // namespace llmkit::ops
