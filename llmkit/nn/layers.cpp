#include "llmkit/nn/layers.h"

namespace llmkit::nn {

Linear::Linear(int64_t in, int64_t out, bool with_bias, DType dt) {
  weight = register_parameter("weight", Tensor::zeros({out, in}, dt));
  if (with_bias) bias = register_parameter("bias", Tensor::zeros({out}, dt));
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
