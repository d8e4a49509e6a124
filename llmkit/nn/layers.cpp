#include "llmkit/nn/layers.h"

#include <cmath>

namespace llmkit::nn {

Linear::Linear(int64_t in, int64_t out, bool with_bias, DType dt) : in_(in), out_(out) {
  weight = register_parameter("weight", Tensor::zeros({out, in}, dt));
  if (with_bias) bias = register_parameter("bias", Tensor::zeros({out}, dt));
}

Tensor Linear::forward(const Tensor& x) const {
  Tensor y = weight_quantised() ? qlinear_forward(x) : ops::linear(x, weight, bias);
  if (!lora_A || merged_ || !lora_enabled_) return y;
  // The adapter's path, x -> A -> B, is two thin products: r (in + out) multiply-adds per
  // token against the base's in * out.
  const Tensor xd = lora_dropout_ ? static_cast<const Dropout&>(*lora_dropout_).forward(x) : x;
  return y + lora_B->forward(lora_A->forward(xd)) * lora_scaling;
}

void Linear::add_lora(int64_t r, double alpha, double dropout, Generator& init_gen,
                      Generator* dropout_gen) {
  LLMKIT_CHECK(!lora_A, "LoRA: this Linear already has an adapter");
  LLMKIT_CHECK(r >= 1, "LoRA: rank r must be at least 1 (got ", r, ")");
  LLMKIT_CHECK(dropout >= 0 && dropout < 1, "LoRA: dropout ", dropout, " is not in [0, 1)");
  LLMKIT_CHECK(dropout == 0 || dropout_gen != nullptr,
               "LoRA: dropout > 0 needs the model's dropout generator");
  const DType dt = dtype();
  lora_A = register_module("lora_A", std::make_shared<Linear>(in_, r, false, dt));
  lora_B = register_module("lora_B", std::make_shared<Linear>(r, out_, false, dt));
  // PEFT's init: A as nn.Linear's reset_parameters (kaiming_uniform_ with a = sqrt(5), i.e.
  // U(-1/sqrt(in), 1/sqrt(in))), B zero, so B A = 0 and the adapted model starts as the base.
  const double bound = 1.0 / std::sqrt(static_cast<double>(in_));
  {
    NoGradGuard ng;
    init_gen.uniform_(lora_A->weight, -bound, bound);
  }
  lora_scaling = alpha / static_cast<double>(r);
  if (dropout > 0)
    lora_dropout_ =
        register_module("lora_dropout", std::make_shared<Dropout>(dropout, dropout_gen));
  // New children follow the layer's mode (an adapter added to a model in eval mode).
  train(is_training());
  merged_ = false;
}

namespace {
// weight += sign * scaling * B A, in place, outside autograd.
void add_lora_product(const Linear& l, double sign) {
  NoGradGuard ng;
  const Tensor delta = ops::matmul(l.lora_B->weight, l.lora_A->weight) * (sign * l.lora_scaling);
  Tensor w = l.weight;
  w.copy_(ops::add(w, delta));
}
}  // namespace

void Linear::merge_lora() {
  LLMKIT_CHECK(lora_A, "LoRA: merge on a Linear without an adapter");
  LLMKIT_CHECK(!merged_, "LoRA: the adapter is already merged");
  LLMKIT_CHECK(!weight_quantised(), "LoRA: cannot merge into a quantised weight");
  add_lora_product(*this, 1.0);
  merged_ = true;
}

void Linear::unmerge_lora() {
  LLMKIT_CHECK(lora_A, "LoRA: unmerge on a Linear without an adapter");
  LLMKIT_CHECK(merged_, "LoRA: the adapter is not merged");
  add_lora_product(*this, -1.0);
  merged_ = false;
}

void Linear::remove_lora() {
  if (!lora_A) return;
  unregister_module("lora_A");
  unregister_module("lora_B");
  unregister_module("lora_dropout");
  lora_A.reset();
  lora_B.reset();
  lora_dropout_.reset();
  lora_scaling = 0;
  merged_ = false;
}

Embedding::Embedding(int64_t num, int64_t dim, DType dt) {
  weight = register_parameter("weight", Tensor::zeros({num, dim}, dt));
}

LayerNorm::LayerNorm(int64_t dim, bool with_bias, double e, DType dt) : eps(e) {
  weight = register_parameter("weight", Tensor::ones({dim}, dt));
  if (with_bias) bias = register_parameter("bias", Tensor::zeros({dim}, dt));
}

RMSNorm::RMSNorm(int64_t dim, double e, DType dt) : eps(e) {
  weight = register_parameter("weight", Tensor::ones({dim}, dt));
}

NormKind parse_norm(const std::string& name) {
  if (name == "layernorm") return NormKind::LayerNorm;
  if (name == "rmsnorm") return NormKind::RMSNorm;
  fail("norm '", name, "' is not one of layernorm, rmsnorm");
}

Norm::Norm(NormKind kind, int64_t dim, bool with_bias, double eps, DType dt)
    : kind_(kind), eps_(eps) {
  weight = register_parameter("weight", Tensor::ones({dim}, dt));
  if (with_bias && kind == NormKind::LayerNorm)
    bias = register_parameter("bias", Tensor::zeros({dim}, dt));
}

}  // namespace llmkit::nn
