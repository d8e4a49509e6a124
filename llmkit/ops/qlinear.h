// The Linear op over a frozen weight stored in ggml blocks (QLoRA's quantised base): the
// forward product runs kernels::qmatmul (int8 dot products for small batches, dequantised sgemm
// for large ones), the backward gives the input its gradient dx = dy W with W dequantised a
// chunk of rows at a time (never the whole matrix in f32), and W itself gets none.
// Not here: quantising (kernels/cpu/quantize.h), LoRA (nn/lora.h).
#pragma once

#include "llmkit/core/tensor.h"
#include "llmkit/kernels/cpu/qmatmul.h"

namespace llmkit::ops {

// x f32 [..., in] -> [..., out] = x W^T + b; W [out, in] blocks (borrowed: the caller keeps them
// alive for as long as the graph holds this op), bias f32 [out] or undefined (it may require
// grad). Errors: x not f32, x's last dim != W.cols.
Tensor qlinear(const Tensor& x, const kernels::QMatrix& W, const Tensor& bias = Tensor());

}  // namespace llmkit::ops
