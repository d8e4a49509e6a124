#include "llmkit/nn/module.h"

#include <set>

namespace llmkit::nn {

void Module::collect(const std::string& prefix, bool params, NamedTensors& out) const {
  for (const auto& [name, t] : params ? params_ : buffers_) out.emplace_back(prefix + name, t);
  // A child registered under "" adds no name of its own (a model wrapping a body whose names
  // are already the checkpoint's: models::Classifier).
  for (const auto& [name, child] : children_)
    child->collect(name.empty() ? prefix : prefix + name + ".", params, out);
}

NamedTensors Module::named_parameters() const {
  NamedTensors out;
  collect("", true, out);
  return out;
}

NamedTensors Module::named_buffers() const {
  NamedTensors out;
  collect("", false, out);
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& [n, t] : named_parameters()) out.push_back(t);
  return out;
}

std::map<std::string, Tensor> Module::state_dict() const {
  std::map<std::string, Tensor> out;
  for (auto& [n, t] : named_parameters()) out.emplace(n, t);
  for (auto& [n, t] : named_buffers()) out.emplace(n, t);
  return out;
}

void Module::load_state_dict(const std::map<std::string, Tensor>& state, bool strict) {
  const std::map<std::string, Tensor> mine = state_dict();
  for (const auto& [name, t] : mine) {
    auto it = state.find(name);
    if (it == state.end()) {
      LLMKIT_CHECK(!strict, "load_state_dict: missing tensor '", name, "' (", t.str(), ")");
      continue;
    }
    LLMKIT_CHECK(it->second.shape() == t.shape(), "load_state_dict: tensor '", name, "' has shape ",
                 shape_str(it->second.shape()), " but the model expects ", shape_str(t.shape()));
    t.copy_(it->second);
  }
  if (strict)
    for (const auto& [name, t] : state)
      LLMKIT_CHECK(mine.count(name), "load_state_dict: unexpected tensor '", name, "' (", t.str(),
                   ")");
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [n, c] : children_) c->train(on);
}

int64_t Module::num_parameters() const {
  int64_t n = 0;
  for (auto& [name, t] : named_parameters()) n += t.numel();
  return n;
}

std::vector<std::pair<std::string, Module*>> Module::named_modules() const {
  std::vector<std::pair<std::string, Module*>> out;
  for (const auto& [name, child] : children_) {
    if (!name.empty()) out.emplace_back(name, child.get());
    for (auto& [sub, m] : child->named_modules())
      out.emplace_back(name.empty() ? sub : name + "." + sub, m);
  }
  return out;
}

void Module::unregister_parameter(const std::string& name) {
  std::erase_if(params_, [&](const auto& p) { return p.first == name; });
}

void Module::unregister_module(const std::string& name) {
  std::erase_if(children_, [&](const auto& c) { return c.first == name; });
}

Tensor Module::register_parameter(const std::string& name, Tensor t) {
  t.requires_grad_();
  params_.emplace_back(name, t);
  return t;
}

Tensor Module::register_buffer(const std::string& name, Tensor t) {
  buffers_.emplace_back(name, t);
  return t;
}

}  // namespace llmkit::nn
