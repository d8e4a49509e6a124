#include "llmkit/train/adamw.h"

#include <cmath>

#include "llmkit/core/autograd.h"
#include "llmkit/core/parallel.h"

namespace llmkit::train {

bool AdamW::decays(const Tensor& p, const std::vector<Tensor>& embeddings) {
  if (p.dim() < 2) return false;  // biases, norm gains
  for (const Tensor& e : embeddings)
    if (e.defined() && e.same(p)) return false;
  return true;
}

AdamW::AdamW(std::vector<std::pair<std::string, Tensor>> named_params, AdamWOptions opt,
             const std::vector<Tensor>& embeddings)
    : params_(std::move(named_params)), opt_(opt) {
  for (const auto& [name, p] : params_) {
    LLMKIT_CHECK(p.requires_grad() && p.is_contiguous(), "AdamW: parameter '", name,
                 "' must be contiguous and require grad");
    m_.push_back(Tensor::zeros(p.shape(), p.dtype()));
    v_.push_back(Tensor::zeros(p.shape(), p.dtype()));
    decay_.push_back(decays(p, embeddings));
  }
}

std::vector<std::string> AdamW::decayed_names() const {
  std::vector<std::string> out;
  for (size_t i = 0; i < params_.size(); ++i)
    if (decay_[i]) out.push_back(params_[i].first);
  return out;
}

void AdamW::step() {
  NoGradGuard ng;
  ++t_;
  const double bc1 = 1.0 - std::pow(opt_.beta1, static_cast<double>(t_));
  const double bc2 = 1.0 - std::pow(opt_.beta2, static_cast<double>(t_));
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i].second;
    const Tensor g = p.grad();
    if (!g.defined()) continue;
    dispatch_float(p.dtype(), "AdamW", [&](auto tag) {
      using T = decltype(tag);
      T* w = p.data<T>();
      const T* gr = g.data<T>();
      T* m = m_[i].data<T>();
      T* v = v_[i].data<T>();
      const T b1 = static_cast<T>(opt_.beta1), b2 = static_cast<T>(opt_.beta2);
      const T step_size = static_cast<T>(opt_.lr / bc1);
      const T inv_sqrt_bc2 = static_cast<T>(1.0 / std::sqrt(bc2));
      const T eps = static_cast<T>(opt_.eps);
      const T decay = static_cast<T>(decay_[i] ? 1.0 - opt_.lr * opt_.weight_decay : 1.0);
      parallel_for(p.numel(), 1 << 14, [&](int64_t s, int64_t e) {
        for (int64_t j = s; j < e; ++j) {
          m[j] = b1 * m[j] + (T(1) - b1) * gr[j];
          v[j] = b2 * v[j] + (T(1) - b2) * gr[j] * gr[j];
          w[j] = w[j] * decay - step_size * m[j] / (std::sqrt(v[j]) * inv_sqrt_bc2 + eps);
        }
      });
    });
  }
}

void AdamW::zero_grad() {
  for (const auto& [n, p] : params_) p.zero_grad();
}

std::vector<std::pair<std::string, Tensor>> AdamW::state() const {
  std::vector<std::pair<std::string, Tensor>> s;
  for (size_t i = 0; i < params_.size(); ++i) {
    s.emplace_back(params_[i].first + ".exp_avg", m_[i]);
    s.emplace_back(params_[i].first + ".exp_avg_sq", v_[i]);
  }
  return s;
}

void AdamW::load_state(const std::map<std::string, Tensor>& state, int64_t step) {
  LLMKIT_CHECK(step >= 0, "AdamW: negative step ", step);
  for (size_t i = 0; i < params_.size(); ++i)
    for (auto [suffix, dst] : {std::pair{".exp_avg", m_[i]}, std::pair{".exp_avg_sq", v_[i]}}) {
      const std::string key = params_[i].first + suffix;
      auto it = state.find(key);
      LLMKIT_CHECK(it != state.end(), "optimizer state: missing tensor '", key, "'");
      LLMKIT_CHECK(it->second.shape() == dst.shape(), "optimizer state: '", key, "' has shape ",
                   shape_str(it->second.shape()), ", the parameter ", shape_str(dst.shape()));
      dst.copy_(it->second);
    }
  t_ = step;
}

}  // namespace llmkit::train
