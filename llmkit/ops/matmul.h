// Matrix products through BLAS (kernels::gemm). matmul follows torch.matmul for inputs of two or
// more dims: batch dims broadcast, transposed views are passed to BLAS as transpose flags instead
// of being copied. linear is the fused y = x W^T + b of nn.Linear, whose backward accumulates
// straight into the weight gradient (GEMM with beta = 1) with no temporaries.
#pragma once

#include "llmkit/core/tensor.h"

namespace llmkit::ops {

// a [..., M, K] @ b [..., K, N] -> [..., M, N]; a 1-D a or b is treated as a row / column vector
// and its dim dropped from the result, as in PyTorch.
Tensor matmul(const Tensor& a, const Tensor& b);

// x [..., in], weight [out, in] (PyTorch's nn.Linear layout), bias [out] or undefined.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());

}  // namespace llmkit::ops
