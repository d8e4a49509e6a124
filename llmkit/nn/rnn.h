// nn::LSTM and nn::GRU (1.2.1 RNN에서 트랜스포머로: the architecture before the transformer):
// stacked recurrent layers that read a sequence one token at a time and compress everything seen so
// far into a fixed-size state. Same layout and parameter names as torch.nn.LSTM / torch.nn.GRU with
// batch_first=True, so a PyTorch state_dict loads by name:
//   weight_ih_l{k} [G*H, in]   weight_hh_l{k} [G*H, H]   bias_ih_l{k} [G*H]   bias_hh_l{k} [G*H]
// with G = 4 (LSTM gates i f g o) or 3 (GRU gates r z n), in = input_size for layer 0, else H.
// Per layer, the input projection of the whole sequence is one GEMM; each step then costs one
// [B, H] x [H, G*H] GEMM and the fused cell op (llmkit/ops/rnn.h). The cost of a step does not
// depend on how many tokens came before (the contrast with attention's growing KV cache).
#pragma once

#include <string>
#include <vector>

#include "llmkit/core/random.h"
#include "llmkit/nn/module.h"

namespace llmkit::nn {

enum class CellKind { LSTM, GRU };
CellKind parse_cell(const std::string& name);  // "lstm" | "gru"
const char* cell_name(CellKind kind);

// The recurrent state of every layer: h[l] (and c[l] for the LSTM) [B, H]. Empty vectors mean
// zeros. PyTorch's (h_n, c_n) [L, B, H] is this stacked along a new first dim.
struct RNNState {
  std::vector<Tensor> h, c;
  bool empty() const { return h.empty(); }
  // The same values without the autograd graph: truncated backpropagation through time carries
  // the state from one segment into the next but not the gradient.
  RNNState detach() const;
};

class RNN : public Module {
 public:
  // dropout applies to the output of every layer except the last (PyTorch's rule), in training
  // mode, drawn from gen (which must outlive the module when dropout > 0).
  RNN(CellKind kind, int64_t input_size, int64_t hidden_size, int64_t num_layers = 1,
      double dropout = 0.0, Generator* gen = nullptr, DType dt = DType::F32);

  // x [B, T, input_size] -> output [B, T, H] (the last layer's h at every step). With a state,
  // it is the initial state (empty: zeros) and receives the final one; without, zeros are used
  // and the final state is dropped.
  Tensor forward(const Tensor& x, RNNState* state = nullptr);
  // One step, for generation: x [B, input_size] -> the last layer's h [B, H]; state (empty:
  // zeros) becomes the state after this token. Cost independent of the tokens seen before.
  Tensor step(const Tensor& x, RNNState& state);
  RNNState zero_state(int64_t batch) const;
  // Every parameter U(-1/sqrt(H), 1/sqrt(H)), PyTorch's default, from g.
  void reset_parameters(Generator& g);

  CellKind kind() const { return kind_; }
  int64_t input_size() const { return input_size_; }
  int64_t hidden_size() const { return hidden_; }
  int64_t num_layers() const { return static_cast<int64_t>(weight_ih.size()); }
  // Bytes of the state for `batch` sequences (what generation carries from token to token).
  int64_t state_bytes(int64_t batch) const;

  std::vector<Tensor> weight_ih, weight_hh, bias_ih, bias_hh;  // one per layer

 private:
  // One layer's step: gx [B, G*H] (input projection incl. bias_ih) -> h; updates h (and c).
  Tensor cell(int64_t layer, const Tensor& gx, Tensor& h, Tensor& c) const;
  void check_state(const RNNState& s, int64_t batch) const;

  CellKind kind_;
  int64_t input_size_, hidden_;
  double dropout_;
  Generator* gen_;
  DType dtype_;
};

class LSTM : public RNN {
 public:
  LSTM(int64_t input_size, int64_t hidden_size, int64_t num_layers = 1, double dropout = 0.0,
       Generator* gen = nullptr, DType dt = DType::F32)
      : RNN(CellKind::LSTM, input_size, hidden_size, num_layers, dropout, gen, dt) {}
};

class GRU : public RNN {
 public:
  GRU(int64_t input_size, int64_t hidden_size, int64_t num_layers = 1, double dropout = 0.0,
      Generator* gen = nullptr, DType dt = DType::F32)
      : RNN(CellKind::GRU, input_size, hidden_size, num_layers, dropout, gen, dt) {}
};

}  // namespace llmkit::nn
