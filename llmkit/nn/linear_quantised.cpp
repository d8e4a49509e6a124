// nn::Linear with its weight frozen in a ggml block type (QLoRA's quantised base): quantising the
// f32 weight once (kernels::quantize_row, the bytes llama.cpp writes) and running forward and
// backward on the blocks (ops::qlinear). The f32 weight is unregistered and freed, so the layer
// holds ~4.5 bits per weight for Q4_0 instead of 32.
#include <cctype>

#include "llmkit/kernels/cpu/qmatmul.h"
#include "llmkit/kernels/cpu/quantize.h"
#include "llmkit/nn/layers.h"
#include "llmkit/ops/qlinear.h"

namespace llmkit::nn {

namespace {

kernels::GgmlType parse_quant_type(const std::string& name) {
  std::string want;
  for (char c : name) want += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (uint32_t t = 0; t < 64; ++t) {
    if (!kernels::ggml_type_known(t)) continue;
    const auto type = static_cast<kernels::GgmlType>(t);
    if (kernels::ggml_type_name(type) == want && kernels::qmatmul_supports(type) &&
        kernels::ggml_can_quantize(type))
      return type;
  }
  fail("quantised weight type '", name, "' is not one of q4_0, q4_1, q5_0, q5_1, q8_0, q4_k, ",
       "q5_k, q6_k, f16, bf16");
}

}  // namespace

void Linear::quantize_weight(const std::string& type_name) {
  LLMKIT_CHECK(!weight_quantised(), "Linear: the weight is already quantised");
  LLMKIT_CHECK(weight.defined() && weight.dtype() == DType::F32,
               "Linear: only an f32 weight can be quantised");
  LLMKIT_CHECK(!merged_, "Linear: unmerge the LoRA adapter before quantising the weight");
  const kernels::GgmlType t = parse_quant_type(type_name);
  const int64_t block = kernels::ggml_block_size(t);
  LLMKIT_CHECK(in_ % block == 0, "Linear: ", type_name, " needs the input size (", in_,
               ") to be a multiple of ", block);
  const size_t row_bytes = kernels::ggml_row_size(t, in_);
  qweight_.resize(row_bytes * static_cast<size_t>(out_));
  const Tensor wc = weight.contiguous();
  const float* w = wc.data<float>();
  for (int64_t r = 0; r < out_; ++r)
    kernels::quantize_row(t, w + r * in_, qweight_.data() + r * row_bytes, in_);
  qtype_ = static_cast<int>(t);
  unregister_parameter("weight");
  weight = Tensor();
}

size_t Linear::weight_bytes() const {
  if (weight_quantised()) return qweight_.size();
  return weight.defined() ? static_cast<size_t>(weight.numel()) * dtype_size(weight.dtype()) : 0;
}

Tensor Linear::qlinear_forward(const Tensor& x) const {
  const kernels::QMatrix W{static_cast<kernels::GgmlType>(qtype_), out_, in_, qweight_.data()};
  return ops::qlinear(x, W, bias);
}

}  // namespace llmkit::nn
