// AdamW (Loshchilov & Hutter 2019): Adam with weight decay decoupled from the gradient, exactly
// torch.optim.AdamW's update. Per step t, for every parameter p with gradient g:
//   m = b1 m + (1 - b1) g;   v = b2 v + (1 - b2) g^2
//   p -= lr * wd * p                                   (decay group only)
//   p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
// Decay group, by role (decays()): the weight matrices of projections -- every Linear layer's
// weight and the recurrent cells' weight_ih / weight_hh. Never decayed: biases and norm gains
// (1-D) and embedding tables of any kind (token, position, segment, T5's shared table and
// relative-position bias), which the caller names by identity (Task::embedding_tables()), so
// no name pattern decides it. (nanoGPT and most LLM recipes decay the same set.)
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
  // `embeddings`: the model's embedding tables (never decayed). Without them every parameter
  // of two or more dims decays, as torch.optim.AdamW on a plain parameter list.
  AdamW(std::vector<std::pair<std::string, Tensor>> named_params, AdamWOptions opt,
        const std::vector<Tensor>& embeddings = {});
  static bool decays(const Tensor& p, const std::vector<Tensor>& embeddings);
  // The names of the decayed parameters, in the order given.
  std::vector<std::string> decayed_names() const;

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
