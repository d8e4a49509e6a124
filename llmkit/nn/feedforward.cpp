#include "llmkit/nn/feedforward.h"

namespace llmkit::nn {

Activation parse_activation(const std::string& name) {
  if (name == "gelu") return Activation::Gelu;
  if (name == "swiglu") return Activation::SwiGLU;
  fail("activation '", name, "' is not one of gelu, swiglu");
}

FeedForward::FeedForward(int64_t n_embd, int64_t hidden, Activation act, bool bias, double dropout,
                         Generator* gen, DType dt, bool split)
    : act_(act), hidden_(hidden) {
  if (split) {
    if (act == Activation::SwiGLU)
      gate_proj = register_module("gate_proj", std::make_shared<Linear>(n_embd, hidden, bias, dt));
    up_proj = register_module("up_proj", std::make_shared<Linear>(n_embd, hidden, bias, dt));
    down_proj = register_module("down_proj", std::make_shared<Linear>(hidden, n_embd, bias, dt));
  } else {
    const int64_t fc_out = act == Activation::SwiGLU ? 2 * hidden : hidden;
    c_fc = register_module("c_fc", std::make_shared<Linear>(n_embd, fc_out, bias, dt));
    c_proj = register_module("c_proj", std::make_shared<Linear>(hidden, n_embd, bias, dt));
  }
  dropout_ = register_module("dropout", std::make_shared<Dropout>(dropout, gen));
}

Tensor FeedForward::forward(const Tensor& x) const {
  if (down_proj) {
    Tensor h = act_ == Activation::Gelu ? ops::gelu(up_proj->forward(x))
                                        : ops::silu(gate_proj->forward(x)) * up_proj->forward(x);
    return dropout_->forward(down_proj->forward(h));
  }
  Tensor h = c_fc->forward(x);
  if (act_ == Activation::Gelu) {
    h = ops::gelu(h);
  } else {
    auto gu = ops::split(h, {hidden_, hidden_}, -1);
    h = ops::silu(gu[0]) * gu[1];
  }
  return dropout_->forward(c_proj->forward(h));
}

}  // namespace llmkit::nn
