// nn::Module: the PyTorch-shaped container of named parameters, buffers and submodules. A model
// registers its pieces under the names its checkpoint uses ("h.0.attn.c_attn.weight"), so
// state_dict() is the safetensors content and loading is a name lookup. Parameters are Tensor
// handles shared with the module's members: load_state_dict copies values into them, so the
// handles an optimizer holds stay valid.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "llmkit/core/tensor.h"

namespace llmkit::nn {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

class Module {
 public:
  virtual ~Module() = default;
  Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // Depth-first, in registration order, with dotted names.
  NamedTensors named_parameters() const;
  NamedTensors named_buffers() const;
  std::vector<Tensor> parameters() const;
  // Parameters then buffers, by name.
  std::map<std::string, Tensor> state_dict() const;
  // Copies values (converting dtype) into the existing tensors. With `strict`, a missing or
  // unexpected name, or a shape mismatch, is an Error naming it.
  void load_state_dict(const std::map<std::string, Tensor>& state, bool strict = true);
  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }
  int64_t num_parameters() const;
  // Every submodule (not this one) with its dotted name, depth-first in registration order.
  std::vector<std::pair<std::string, Module*>> named_modules() const;

 protected:
  // Registers a leaf that requires grad; returns the same handle.
  Tensor register_parameter(const std::string& name, Tensor t);
  Tensor register_buffer(const std::string& name, Tensor t);
  template <typename M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> m) {
    children_.emplace_back(name, m);
    return m;
  }
  // Removes a parameter / child registered under `name` (no-op when there is none).
  void unregister_parameter(const std::string& name);
  void unregister_module(const std::string& name);

 private:
  void collect(const std::string& prefix, bool params, NamedTensors& out) const;
  NamedTensors params_, buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

}  // namespace llmkit::nn
