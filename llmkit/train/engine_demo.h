// Two small end-to-end trainings that exercise the whole engine (tensors, autograd, fused ops,
// SGD) on synthetic data, used by `llmkit demo` until the GPT lands and by the end-to-end tests:
//   - mlp_xor: a two-layer MLP learns XOR of noisy 2-D clusters (not linearly separable).
//   - attention_recall: a one-block causal attention model learns to answer, at every position,
//     the token seen at position 0 -- a task an RNN finds harder as sequences grow (the concept
//     notes' point), and one that needs attention plus position information.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

namespace llmkit::train {

struct DemoOptions {
  int64_t steps = 300;
  int64_t batch = 32;
  int64_t seq_len = 16;  // attention task
  int64_t vocab = 16;    // attention task
  int64_t n_embd = 32;
  int64_t n_head = 4;
  double lr = 0.5;
  double momentum = 0.9;
  uint64_t seed = 1;
  bool f64 = false;  // compute in double (tests)
};

struct DemoResult {
  std::vector<double> losses;  // one per step
  double accuracy = 0;         // on a fresh batch after training
  double seconds = 0;
};

// Called after every step with (step, loss); may print.
using DemoProgress = std::function<void(int64_t step, double loss)>;

DemoResult mlp_xor(const DemoOptions& opt, const DemoProgress& progress = {});
DemoResult attention_recall(const DemoOptions& opt, const DemoProgress& progress = {});

}  // namespace llmkit::train
