// The basic layers: Linear, Embedding, LayerNorm, RMSNorm, Dropout. Each is a thin Module over one
// fused op; parameters are created zero or one and set by the model's init (init.h).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "llmkit/core/random.h"
#include "llmkit/nn/module.h"
#include "llmkit/ops/ops.h"

namespace llmkit::nn {

// y = x W^T + b; weight [out, in] (PyTorch's layout), bias [out].
// Optionally with a LoRA adapter (nn/lora.h): y += scaling * dropout(x) A^T B^T, the adapter's
// two bias-free Linears registered as children "lora_A" [r, in] and "lora_B" [out, r]; and
// optionally with its weight frozen in a ggml block type (QLoRA's quantised base): forward and
// backward then go through ops::qlinear and `weight` is undefined (its memory freed).
class Linear : public Module {
 public:
  Linear(int64_t in, int64_t out, bool bias = true, DType dt = DType::F32);
  Tensor forward(const Tensor& x) const;
  Tensor weight, bias;

  int64_t in_features() const { return in_; }
  int64_t out_features() const { return out_; }
  // The dtype of the layer's arithmetic: the weight's, or F32 for a quantised base (whose
  // `weight` is undefined; read this rather than weight.dtype() where either can be met).
  DType dtype() const { return weight.defined() ? weight.dtype() : DType::F32; }

  // --- LoRA (nn/lora.h: apply_lora, merge_lora, ...) ---
  // Registers lora_A / lora_B (A Kaiming-uniform from init_gen, B zero). dropout > 0 draws its
  // masks from dropout_gen (the model's dropout generator, saved in checkpoints; required then).
  // Error if an adapter exists.
  void add_lora(int64_t r, double alpha, double dropout, Generator& init_gen,
                Generator* dropout_gen);
  bool has_lora() const { return lora_A != nullptr; }
  // W += scaling B A (merged: forward skips the adapter) and back; Errors when there is no
  // adapter, when already in that state, or when the weight is quantised.
  void merge_lora();
  void unmerge_lora();
  bool lora_merged() const { return merged_; }
  // Off: forward skips the (unmerged) adapter -- the base model, which DPO and PPO use as the
  // reference without a second copy in memory (nn::LoraDisabled).
  void set_lora_enabled(bool on) { lora_enabled_ = on; }
  bool lora_enabled() const { return lora_enabled_; }
  // Unregisters the adapter (after merge_lora, the model is a plain model again).
  void remove_lora();
  std::shared_ptr<Linear> lora_A, lora_B;
  double lora_scaling = 0;

  // --- quantised frozen base (QLoRA) ---
  // Quantises `weight` to ggml type `type_name` ("q4_0", "q8_0", "q4_k", ...; kernels/cpu
  // quantize_row), keeps the blocks, and unregisters and frees the f32 weight; the weight gets no
  // gradient from then on. Error: a type qmatmul cannot run or `in` not a multiple of its block.
  void quantize_weight(const std::string& type_name);
  bool weight_quantised() const { return !qweight_.empty(); }
  size_t weight_bytes() const;  // stored bytes of the base weight (f32 or blocks)

 private:
  Tensor qlinear_forward(const Tensor& x) const;  // ops::qlinear over qweight_ (nn/qlinear)
  int64_t in_ = 0, out_ = 0;
  bool merged_ = false;
  bool lora_enabled_ = true;
  // nn::Dropout when dropout > 0, registered as the child "lora_dropout" (no parameters) so
  // train() / eval() reach it.
  std::shared_ptr<Module> lora_dropout_;
  std::vector<uint8_t> qweight_;  // ggml blocks [out rows] when quantised
  int qtype_ = 0;                 // kernels::GgmlType when quantised
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
