// The position-wise feed-forward layer (2.1 피드 포워드 층) of a transformer block:
//   GELU:   c_proj(gelu(c_fc(x)))                       GPT-2, hidden = 4 C
//   SwiGLU: c_proj(silu(gate(x)) * up(x))               llama, hidden ~ 8/3 C
// Two parameter layouts. GPT-2's: c_fc, c_proj; for SwiGLU c_fc holds gate and up stacked
// ([2 hidden, C]: gate rows first), so both come out of one GEMM. Hugging Face llama's (split):
// gate_proj, up_proj, down_proj (GELU: up_proj, down_proj).
#pragma once

#include "llmkit/nn/layers.h"

namespace llmkit::nn {

enum class Activation { Gelu, SwiGLU };
Activation parse_activation(const std::string& name);  // "gelu" | "swiglu"

class FeedForward : public Module {
 public:
  FeedForward(int64_t n_embd, int64_t hidden, Activation act, bool bias, double dropout,
              Generator* gen, DType dt = DType::F32, bool split = false);
  Tensor forward(const Tensor& x) const;

  std::shared_ptr<Linear> c_fc, c_proj;                   // GPT-2 layout
  std::shared_ptr<Linear> gate_proj, up_proj, down_proj;  // llama layout (split)

 private:
  Activation act_;
  int64_t hidden_;
  std::shared_ptr<Dropout> dropout_;
};

}  // namespace llmkit::nn
