// Pointwise kernels of the LSTM and GRU cells (1.2.1 RNN에서 트랜스포머로: the recurrence the
// transformer replaced): everything one time step does after its two matrix products. The products
// themselves are GEMMs in ops/rnn (the input projection once per sequence, the hidden projection
// once per step); what is left is 4H (LSTM) or 3H (GRU) elements of gate math per row, fused here
// into one pass. Gate order and equations are PyTorch's (torch.nn.LSTM / torch.nn.GRU):
//   LSTM  a = gx + gh = [i f g o];  i,f,o = sigmoid, g = tanh;  c = f*c_prev + i*g;  h = o*tanh(c)
//   GRU   r = sigmoid(gx_r + gh_r); z = sigmoid(gx_z + gh_z); n = tanh(gx_n + r*gh_n);
//         h = (1 - z)*n + z*h_prev
// Not differentiable ops (no shapes, no autograd); see llmkit/ops/rnn.h. B rows, H hidden units;
// all buffers contiguous row-major. Backward kernels write the gate gradients and ACCUMULATE (+=)
// into the state gradient (dc_prev / dh_prev), which a null pointer skips.
#pragma once

#include <cstdint>

namespace llmkit::kernels {

// gx, gh [B, 4H]; c_prev [B, H]. Writes h, c [B, H] and the activated gates act [B, 4H]
// (i, f, g, o after their nonlinearity), which the backward reuses.
template <typename T>
void lstm_cell_forward(T* h, T* c, T* act, const T* gx, const T* gh, const T* c_prev, int64_t B,
                       int64_t H);
// dh, dc [B, H] (either may be null: zero). da [B, 4H] receives the gradient of the pre-activation
// gates (it is both dgx and dgh), written (not accumulated); dc_prev accumulated when non-null.
template <typename T>
void lstm_cell_backward(T* da, T* dc_prev, const T* dh, const T* dc, const T* act, const T* c,
                        const T* c_prev, int64_t B, int64_t H);

// gx, gh [B, 3H]; h_prev [B, H]. Writes h [B, H] and act [B, 3H] (r, z, n activated).
template <typename T>
void gru_cell_forward(T* h, T* act, const T* gx, const T* gh, const T* h_prev, int64_t B,
                      int64_t H);
// dh [B, H]. dgx, dgh [B, 3H] written (not accumulated; they differ in the n block, where
// dgh_n = r * dgx_n); dh_prev accumulated when non-null. gh is the hidden projection of the
// forward (gh_n is needed for dr).
template <typename T>
void gru_cell_backward(T* dgx, T* dgh, T* dh_prev, const T* dh, const T* act, const T* gh,
                       const T* h_prev, int64_t B, int64_t H);

}  // namespace llmkit::kernels
