// LoRA (Hu et al. 2021; the notes' 저랭크 적응): fine-tune a large model by training, beside each
// frozen weight W [out, in] of chosen Linear layers, two small matrices A [r, in] and B [out, r]:
//   y = x W^T + b + (alpha / r) * dropout(x) A^T B^T
// B starts at zero, so the adapted model starts exactly where the pretrained one is; only A and B
// (r (in + out) numbers per layer instead of in * out) get gradients and optimizer state.
// The layout is PEFT's, so its adapters and ours are interchangeable (models/peft.h): the adapter
// of a Linear named "...q_proj" is two bias-free Linears registered as its children "lora_A"
// ([r, in], Kaiming-uniform like nn.Linear's init) and "lora_B" ([out, r], zero), so the model's
// parameter names are "...q_proj.lora_A.weight" / "...q_proj.lora_B.weight".
// QLoRA (Dettmers et al. 2023) is the same adapter over a frozen base weight kept quantised
// (nn::Linear::quantize_weight; ggml block types instead of bitsandbytes' NF4).
// Not here: the op (a composite of ops::linear and ops::dropout: its gradient comes free) lives in
// nn::Linear::forward; saving and loading adapters (models/peft.h); choosing what to train
// (freeze below, train/finetune.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "llmkit/core/random.h"
#include "llmkit/nn/module.h"

namespace llmkit::nn {

class Linear;

// PEFT's LoraConfig fields (same names and defaults as peft 0.13: r 8, lora_alpha 8, dropout 0).
struct LoraConfig {
  int64_t r = 8;
  double alpha = 8;
  double dropout = 0.0;
  // Module names to adapt. PEFT's rule: a Linear whose dotted name equals a target or ends with
  // "." + target. Empty: default_lora_targets(arch).
  std::vector<std::string> target_modules;
  // Names (same rule) of modules trained in full and saved with the adapter, as PEFT's
  // modules_to_save (a task head: "classifier", "score").
  std::vector<std::string> modules_to_save;
  double scaling() const { return alpha / static_cast<double>(r); }
};

// PEFT's default targets (TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING) for an llmkit arch:
// llama -> q_proj, v_proj; gpt (GPT-2 layout) -> c_attn; bert -> query, value; t5 -> q, v.
// An Error names an arch without defaults.
std::vector<std::string> default_lora_targets(const std::string& arch);

// Whether `name` (a dotted module name) matches one of `patterns` by PEFT's rule above.
bool lora_name_matches(const std::string& name, const std::vector<std::string>& patterns);

// Adds an adapter to every Linear of `model` whose name matches c.target_modules (the A matrices
// drawn from `seed` in registration order, B zero; dropout masks from dropout_gen, required when
// c.dropout > 0). Returns the adapted module names, in registration order. Errors: no Linear
// matches (naming the targets and a few of the model's Linear names), a Linear that already has
// an adapter, r < 1, empty targets.
std::vector<std::string> apply_lora(Module& model, const LoraConfig& c, uint64_t seed,
                                    Generator* dropout_gen = nullptr);

// W += scaling * B A in every adapted Linear (inference at the base model's speed); the adapter
// is kept, marked merged, so forward skips it and unmerge_lora can subtract it again. Merging a
// quantised base is an Error.
void merge_lora(Module& model);
void unmerge_lora(Module& model);
// Merges and removes the adapters: a plain model again (what PEFT's merge_and_unload does).
void merge_and_unload(Module& model);

// requires_grad on: every parameter whose name matches none of `frozen` (prefix match on dotted
// names: "bert.encoder.layer.0" freezes that layer). Used by finetune's --freeze.
void freeze(Module& model, const std::vector<std::string>& prefixes);
// Everything frozen except adapters (lora_A/lora_B) and modules_to_save: the LoRA training set.
void mark_only_lora_trainable(Module& model, const std::vector<std::string>& modules_to_save);

// An Error naming the first Linear of `model` that carries an adapter (merged or not) or a
// quantised base: what code that reads the base weights by name (saving a whole model, GGUF
// export, infer::Engine) must refuse, since it would drop the adapter or miss the weight.
// `what` starts the message ("engine", "save_model_dir", ...).
void check_plain_linears(const Module& model, const std::string& what);

// While it lives, every adapter of `model` is off (Linear::set_lora_enabled): forward computes
// the base model, the reference of DPO and PPO. Restores each adapter's previous state.
class LoraDisabled {
 public:
  explicit LoraDisabled(Module& model);
  ~LoraDisabled();
  LoraDisabled(const LoraDisabled&) = delete;
  LoraDisabled& operator=(const LoraDisabled&) = delete;
  int64_t adapters() const { return static_cast<int64_t>(linears_.size()); }

 private:
  std::vector<std::pair<Linear*, bool>> linears_;
};

struct ParamCount {
  int64_t trainable = 0, all = 0;
};
ParamCount count_parameters(const Module& model);
// PEFT's print_trainable_parameters line:
// "trainable params: 294,912 || all params: 124,734,720 || trainable%: 0.2364"
std::string trainable_parameters_line(const Module& model);

}  // namespace llmkit::nn
