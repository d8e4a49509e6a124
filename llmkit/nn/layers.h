// The basic layers: Linear, Embedding, LayerNorm, RMSNorm, Dropout. Each is a thin Module over one
// fused op; parameters are created zero or one and set by the model's init (init.h).
#pragma once

#include "llmkit/core/random.h"
#include "llmkit/nn/module.h"
#include "llmkit/ops/ops.h"

namespace llmkit::nn {

// y = x W^T + b; weight [out, in] (PyTorch's layout), bias [out].
class Linear : public Module {
 public:
  Linear(int64_t in, int64_t out, bool bias = true, DType dt = DType::F32);
  Tensor forward(const Tensor& x) const { return ops::linear(x, weight, bias); }
  Tensor weight, bias;
};

// ids [...] -> [..., dim]; weight [num, dim].
class Embedding : public Module {
 public:
  Embedding(int64_t num, int64_t dim, DType dt = DType::F32);
  Tensor forward(const Tensor& ids) const { return ops::embedding(ids, weight); }
  Tensor weight;
};

class LayerNorm : public Module {
 public:
  explicit LayerNorm(int64_t dim, bool bias = true, double eps = 1e-5, DType dt = DType::F32);
  Tensor forward(const Tensor& x) const { return ops::layer_norm(x, weight, bias, eps); }
  Tensor weight, bias;
  double eps;
};

class RMSNorm : public Module {
 public:
  explicit RMSNorm(int64_t dim, double eps = 1e-6, DType dt = DType::F32);
  Tensor forward(const Tensor& x) const { return ops::rms_norm(x, weight, eps); }
  Tensor weight;
  double eps;
};

// LayerNorm or RMSNorm chosen by config, with the parameter names of either ("weight", "bias").
enum class NormKind { LayerNorm, RMSNorm };
NormKind parse_norm(const std::string& name);  // "layernorm" | "rmsnorm"

class Norm : public Module {
 public:
  Norm(NormKind kind, int64_t dim, bool bias, double eps, DType dt = DType::F32);
  Tensor forward(const Tensor& x) const {
    return kind_ == NormKind::LayerNorm ? ops::layer_norm(x, weight, bias, eps_)
                                        : ops::rms_norm(x, weight, eps_);
  }
  Tensor weight, bias;

 private:
  NormKind kind_;
  double eps_;
};

// Active only in training mode. The generator is shared with the model (its state is saved in
// checkpoints so a resumed run draws the same masks).
class Dropout : public Module {
 public:
  Dropout(double p, Generator* gen) : p_(p), gen_(gen) {}
  Tensor forward(const Tensor& x) const {
    return p_ > 0 && is_training() ? ops::dropout(x, p_, true, *gen_) : x;
  }

 private:
  double p_;
  Generator* gen_;
};

}  // namespace llmkit::nn
