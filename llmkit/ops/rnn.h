// The LSTM and GRU cells as differentiable ops (1.2.1 RNN에서 트랜스포머로: the recurrence
// attention replaced): one time step's gate math, fused, with its backward beside it. The caller
// does the matrix products with ops::linear -- the input projection gx = x W_ih^T + b_ih once for
// the whole sequence (one GEMM), the hidden projection gh = h W_hh^T + b_hh once per step -- and
// hands both here. Gate order and equations are PyTorch's, so weights load from torch.nn.LSTM / GRU
// as-is:
//   LSTM  [i f g o] = gx + gh;  c = sigmoid(f)*c_prev + sigmoid(i)*tanh(g);  h = sigmoid(o)*tanh(c)
//   GRU   r, z = sigmoid(gx + gh) blocks;  n = tanh(gx_n + r*gh_n);  h = (1 - z)*n + z*h_prev
// (the GRU keeps gx and gh apart because r gates only the hidden part of n.) B batch, H hidden.
#pragma once

#include "llmkit/core/tensor.h"

namespace llmkit::ops {

struct LSTMCellOutput {
  Tensor h, c;  // [B, H] each: two views of one [2, B, H] result, both differentiable
};

// gx, gh [B, 4H]; c_prev [B, H]. Same float dtype throughout.
LSTMCellOutput lstm_cell(const Tensor& gx, const Tensor& gh, const Tensor& c_prev);

// gx, gh [B, 3H]; h_prev [B, H] -> h [B, H].
Tensor gru_cell(const Tensor& gx, const Tensor& gh, const Tensor& h_prev);

}  // namespace llmkit::ops
