// The autograd graph. An op that sees an input requiring grad records a Node on its output: the
// inputs' autograd halves (AutogradMeta: shape, gradient, producer; never their data), and a
// closure that, given the output's gradient, accumulates (+=) the inputs' gradients. The closure
// holds exactly the tensors the op saved for its backward, so the graph keeps an activation
// alive only while some backward still needs it. Tensor::backward() runs the nodes in reverse
// topological order; each node runs once, then frees its closure (the saved tensors) and its
// output's gradient, so memory falls as backward proceeds. Leaves that require grad keep theirs
// in .grad(). NoGradGuard turns recording off (inference, optimizer updates). Tensors that need
// no grad record nothing.
#pragma once

#include <functional>
#include <initializer_list>
#include <memory>
#include <vector>

#include "llmkit/core/tensor.h"

namespace llmkit {

struct Node {
  const char* name = "";
  std::vector<std::shared_ptr<AutogradMeta>> inputs;  // nullptr where no grad is needed
  std::function<void(Node& self, const Tensor& dout)> backward;

  // Whether input i needs a gradient.
  bool needs_grad(size_t i) const { return i < inputs.size() && inputs[i] != nullptr; }
  // Input i's gradient buffer (contiguous, zero on first use); kernels accumulate into it.
  Tensor grad(size_t i);
  // Input i's gradient buffer for kernels that can overwrite as well as accumulate (GEMM with
  // beta = 0 or 1): *fresh is set when the buffer is new and its contents are undefined, so
  // the kernel must write rather than add.
  Tensor grad_buffer(size_t i, bool* fresh);
  // Adds g (same shape as input i, any strides, dtype of input i) into input i's gradient.
  void accumulate(size_t i, const Tensor& g);
};

// Whether new ops record graph nodes (per thread; on by default).
bool grad_enabled();

class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool prev_;
};

// True when grad mode is on and any input requires grad: the op must record a node.
bool needs_graph(std::initializer_list<const Tensor*> inputs);

// Records `fn` as the node producing `out` from `inputs` (call only when needs_graph()).
// Inputs that do not require grad are stored as nullptr, so fn must check needs_grad(i).
void record(const Tensor& out, const char* name, std::initializer_list<const Tensor*> inputs,
            std::function<void(Node& self, const Tensor& dout)> fn);
void record(const Tensor& out, const char* name, const std::vector<Tensor>& inputs,
            std::function<void(Node& self, const Tensor& dout)> fn);

}  // namespace llmkit
