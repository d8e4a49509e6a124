// Stochastic gradient descent with optional momentum and weight decay (PyTorch's torch.optim.SGD
// update rule). The AdamW of the GPT trainer lives beside it. Updates run in place under
// NoGradGuard and allocate nothing after the first step (the momentum buffers).
#pragma once

#include <vector>

#include "llmkit/core/tensor.h"

namespace llmkit::train {

struct SgdOptions {
  double lr = 0.1;
  double momentum = 0.0;
  double weight_decay = 0.0;
};

class Sgd {
 public:
  Sgd(std::vector<Tensor> params, SgdOptions opt);
  // p -= lr * (g + wd * p), with g replaced by the momentum buffer b = momentum * b + g.
  void step();
  void zero_grad();
  double lr() const { return opt_.lr; }
  void set_lr(double lr) { opt_.lr = lr; }

 private:
  std::vector<Tensor> params_;
  std::vector<Tensor> momentum_;
  SgdOptions opt_;
};

}  // namespace llmkit::train
