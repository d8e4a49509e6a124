// Activation functions: relu, gelu (tanh approximation as in GPT-2, or the exact erf form as in
// BERT), silu (swish, as in llama's SwiGLU), tanh, sigmoid. The loops are kernels/cpu/activation.
#pragma once

#include "llmkit/core/tensor.h"

namespace llmkit::ops {

enum class GeluApprox { Tanh, Erf };

Tensor relu(const Tensor& x);
Tensor gelu(const Tensor& x, GeluApprox approx = GeluApprox::Tanh);
Tensor silu(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor sigmoid(const Tensor& x);

}  // namespace llmkit::ops
