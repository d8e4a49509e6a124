// AdamW (Loshchilov & Hutter 2019): Adam with weight decay decoupled from the gradient, exactly
// torch.optim.AdamW's update. Per step t, for every parameter p with gradient g:
//   m = b1 m + (1 - b1) g;   v = b2 v + (1 - b2) g^2
//   p -= lr * wd * p                                   (decay group only)
//   p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
// Decay group: tensors of two or more dims that are not embeddings (decays()); biases, norm
// weights and embedding tables are not decayed (as nanoGPT and most LLM recipes do).
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "llmkit/core/tensor.h"

namespace llmkit::train {

struct AdamWOptions {
  double lr = 3e-4;
  double beta1 = 0.9, beta2 = 0.95;
  double eps = 1e-8;
  double weight_decay = 0.1;
};

class AdamW {
 public:
  AdamW(std::vector<std::pair<std::string, Tensor>> named_params, AdamWOptions opt);
  static bool decays(const std::string& name, const Tensor& p);

  void step();  // parameters without a gradient are skipped
  void zero_grad();
  void set_lr(double lr) { opt_.lr = lr; }
  double lr() const { return opt_.lr; }
  int64_t step_count() const { return t_; }

  // Moments by "<param>.exp_avg" and "<param>.exp_avg_sq" (for checkpoints).
  std::vector<std::pair<std::string, Tensor>> state() const;
  // Restores moments and the step count; Error naming any missing tensor or wrong shape.
  void load_state(const std::map<std::string, Tensor>& state, int64_t step);

 private:
  std::vector<std::pair<std::string, Tensor>> params_;
  std::vector<Tensor> m_, v_;
  std::vector<bool> decay_;
  AdamWOptions opt_;
  int64_t t_ = 0;
};

}  // namespace llmkit::train
