#include "llmkit/nn/rnn.h"

#include <cmath>

#include "llmkit/core/autograd.h"
#include "llmkit/ops/dropout.h"
#include "llmkit/ops/matmul.h"
#include "llmkit/ops/rnn.h"
#include "llmkit/ops/shape.h"

namespace llmkit::nn {

CellKind parse_cell(const std::string& name) {
  if (name == "lstm") return CellKind::LSTM;
  if (name == "gru") return CellKind::GRU;
  fail("cell '", name, "' is not one of lstm, gru");
}

const char* cell_name(CellKind kind) {
  return kind == CellKind::LSTM ? "lstm" : "gru";
}

RNNState RNNState::detach() const {
  RNNState s;
  for (const Tensor& t : h) s.h.push_back(t.detach());
  for (const Tensor& t : c) s.c.push_back(t.detach());
  return s;
}

RNN::RNN(CellKind kind, int64_t input_size, int64_t hidden_size, int64_t num_layers, double dropout,
         Generator* gen, DType dt)
    : kind_(kind),
      input_size_(input_size),
      hidden_(hidden_size),
      dropout_(dropout),
      gen_(gen),
      dtype_(dt) {
  LLMKIT_CHECK(input_size > 0 && hidden_size > 0 && num_layers > 0, cell_name(kind),
               ": input_size ", input_size, ", hidden_size ", hidden_size, " and num_layers ",
               num_layers, " must be positive");
  LLMKIT_CHECK(dropout >= 0 && dropout < 1, cell_name(kind), ": dropout ", dropout,
               " outside [0, 1)");
  LLMKIT_CHECK(dropout == 0 || gen != nullptr, cell_name(kind), ": dropout needs a generator");
  const int64_t G = kind == CellKind::LSTM ? 4 : 3;
  for (int64_t l = 0; l < num_layers; ++l) {
    const std::string k = std::to_string(l);
    const int64_t in = l == 0 ? input_size : hidden_size;
    weight_ih.push_back(
        register_parameter("weight_ih_l" + k, Tensor::zeros({G * hidden_size, in}, dt)));
    weight_hh.push_back(
        register_parameter("weight_hh_l" + k, Tensor::zeros({G * hidden_size, hidden_size}, dt)));
    bias_ih.push_back(register_parameter("bias_ih_l" + k, Tensor::zeros({G * hidden_size}, dt)));
    bias_hh.push_back(register_parameter("bias_hh_l" + k, Tensor::zeros({G * hidden_size}, dt)));
  }
}

void RNN::reset_parameters(Generator& g) {
  NoGradGuard ng;
  const double k = 1.0 / std::sqrt(static_cast<double>(hidden_));
  for (auto& [name, p] : named_parameters()) g.uniform_(p, -k, k);
}

RNNState RNN::zero_state(int64_t batch) const {
  RNNState s;
  for (int64_t l = 0; l < num_layers(); ++l) {
    s.h.push_back(Tensor::zeros({batch, hidden_}, dtype_));
    if (kind_ == CellKind::LSTM) s.c.push_back(Tensor::zeros({batch, hidden_}, dtype_));
  }
  return s;
}

int64_t RNN::state_bytes(int64_t batch) const {
  return (kind_ == CellKind::LSTM ? 2 : 1) * num_layers() * batch * hidden_ *
         static_cast<int64_t>(dtype_size(dtype_));
}

void RNN::check_state(const RNNState& s, int64_t batch) const {
  const size_t L = static_cast<size_t>(num_layers());
  LLMKIT_CHECK(s.h.size() == L && s.c.size() == (kind_ == CellKind::LSTM ? L : 0), cell_name(kind_),
               ": state has ", s.h.size(), " h and ", s.c.size(), " c tensors for ", L, " layers");
  for (const auto* v : {&s.h, &s.c})
    for (const Tensor& t : *v)
      LLMKIT_CHECK(
          t.dim() == 2 && t.size(0) == batch && t.size(1) == hidden_ && t.dtype() == dtype_,
          cell_name(kind_), ": state tensor ", t.str(), " is not [", batch, ", ", hidden_, "] ",
          dtype_name(dtype_));
}

Tensor RNN::cell(int64_t l, const Tensor& gx, Tensor& h, Tensor& c) const {
  const Tensor gh = ops::linear(h, weight_hh[l], bias_hh[l]);  // [B, G*H]
  if (kind_ == CellKind::GRU) return h = ops::gru_cell(gx, gh, h);
  ops::LSTMCellOutput o = ops::lstm_cell(gx, gh, c);
  c = o.c;
  return h = o.h;
}

Tensor RNN::forward(const Tensor& x, RNNState* state) {
  LLMKIT_CHECK(x.dim() == 3 && x.size(2) == input_size_ && x.dtype() == dtype_, cell_name(kind_),
               ": input ", x.str(), " is not [B, T, ", input_size_, "] ", dtype_name(dtype_));
  const int64_t B = x.size(0), T = x.size(1);
  RNNState s = state != nullptr && !state->empty() ? *state : zero_state(B);
  check_state(s, B);
  Tensor seq = x.transpose(0, 1);  // [T, B, C]: step t is then a contiguous [B, C] block
  for (int64_t l = 0; l < num_layers(); ++l) {
    const Tensor gx = ops::linear(seq, weight_ih[l], bias_ih[l]);  // [T, B, G*H], one GEMM
    Tensor& h = s.h[l];
    Tensor dummy;
    Tensor& c = kind_ == CellKind::LSTM ? s.c[l] : dummy;
    std::vector<Tensor> outs;
    outs.reserve(T);
    for (int64_t t = 0; t < T; ++t) outs.push_back(cell(l, gx.select(0, t), h, c).unsqueeze(0));
    seq = T > 0 ? ops::concat(outs, 0) : Tensor::zeros({0, B, hidden_}, dtype_);  // [T, B, H]
    if (l + 1 < num_layers() && dropout_ > 0 && is_training())
      seq = ops::dropout(seq, dropout_, true, *gen_);
  }
  if (state != nullptr) *state = std::move(s);
  return seq.transpose(0, 1);  // [B, T, H]
}

Tensor RNN::step(const Tensor& x, RNNState& state) {
  LLMKIT_CHECK(x.dim() == 2 && x.size(1) == input_size_ && x.dtype() == dtype_, cell_name(kind_),
               ": step input ", x.str(), " is not [B, ", input_size_, "] ", dtype_name(dtype_));
  const int64_t B = x.size(0);
  if (state.empty()) state = zero_state(B);
  check_state(state, B);
  Tensor y = x;
  for (int64_t l = 0; l < num_layers(); ++l) {
    Tensor dummy;
    Tensor& c = kind_ == CellKind::LSTM ? state.c[l] : dummy;
    y = cell(l, ops::linear(y, weight_ih[l], bias_ih[l]), state.h[l], c);
    if (l + 1 < num_layers() && dropout_ > 0 && is_training())
      y = ops::dropout(y, dropout_, true, *gen_);
  }
  return y;
}

}  // namespace llmkit::nn
