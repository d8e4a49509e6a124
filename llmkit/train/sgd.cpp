#include "llmkit/train/sgd.h"

#include "llmkit/core/autograd.h"
#include "llmkit/core/parallel.h"

namespace llmkit::train {

Sgd::Sgd(std::vector<Tensor> params, SgdOptions opt) : params_(std::move(params)), opt_(opt) {
  for (const Tensor& p : params_)
    LLMKIT_CHECK(p.requires_grad() && p.is_leaf() && p.is_contiguous(), "Sgd: parameter ", p.str(),
                 " must be a contiguous leaf that requires grad");
  momentum_.resize(params_.size());
}

void Sgd::step() {
  NoGradGuard ng;
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i];
    const Tensor g = p.grad();
    if (!g.defined()) continue;
    if (opt_.momentum != 0 && !momentum_[i].defined())
      momentum_[i] = Tensor::zeros(p.shape(), p.dtype());
    dispatch_float(p.dtype(), "Sgd", [&](auto t) {
      using T = decltype(t);
      T* w = p.data<T>();
      const T* pg = g.data<T>();
      T* b = momentum_[i].defined() ? momentum_[i].template data<T>() : nullptr;
      const T lr = static_cast<T>(opt_.lr), wd = static_cast<T>(opt_.weight_decay),
              mu = static_cast<T>(opt_.momentum);
      parallel_for(p.numel(), 1 << 14, [&](int64_t s, int64_t e) {
        for (int64_t j = s; j < e; ++j) {
          T d = pg[j] + wd * w[j];
          if (b != nullptr) d = b[j] = mu * b[j] + d;
          w[j] -= lr * d;
        }
      });
    });
  }
}

void Sgd::zero_grad() {
  for (const Tensor& p : params_) p.zero_grad();
}

}  // namespace llmkit::train
