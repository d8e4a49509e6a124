// LoRA adapters in PEFT's on-disk format, so an adapter trained here loads in PEFT
// (PeftModel.from_pretrained) and one trained with PEFT loads here:
//   adapter_config.json         {"peft_type": "LORA", "r", "lora_alpha", "lora_dropout",
//                                "target_modules", "modules_to_save", "task_type",
//                                "base_model_name_or_path", "bias": "none", "fan_in_fan_out", ...}
//   adapter_model.safetensors   "base_model.model.<Hugging Face module name>.lora_A.weight" [r,
//   in],
//                               "...lora_B.weight" [out, r], and the modules_to_save in full
//                               ("base_model.model.classifier.weight", ...)
// The Hugging Face module name is ours with the class's prefix: GPT-2 layout "transformer."
// (GPT2LMHeadModel, GPT2For*Classification); BERT without "bert." when `model` is a bare
// models::Bert without pretraining heads (BertModel, e.g. a sentence encoder), with it otherwise
// (a classifier wrapping the body, BertForPreTraining); llama names are Hugging Face's already.
// The choice follows the C++ type of `model`, not task_type.
// GPT-2's c_attn / c_fc / c_proj are Conv1D in Hugging Face ([in, out]): the adapter matrices
// have the same shapes either way, and PEFT records fan_in_fan_out = true for them.
// Not here: the adapter math (nn/lora.h).
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "llmkit/nn/lora.h"

namespace llmkit::models {

struct AdapterInfo {
  nn::LoraConfig lora;
  std::string task_type;        // SEQ_CLS | TOKEN_CLS | CAUSAL_LM | FEATURE_EXTRACTION
  std::string base_model_path;  // base_model_name_or_path
};

// Writes dir/adapter_config.json and dir/adapter_model.safetensors (atomically): the adapters and
// modules_to_save of `model`, whose body has arch `arch` (gpt | llama | bert). Errors: no adapter.
void save_adapter(const nn::Module& model, const std::string& arch, const AdapterInfo& info,
                  const std::string& dir);

// Reads dir/adapter_config.json. Errors name the file and field: not LORA, use_dora, use_rslora,
// a bias other than "none", layers_to_transform, rank_pattern / alpha_pattern,
// layer_replication, target_modules "all-linear" (not supported). A string target_modules is
// PEFT's regex form (matched against whole Hugging Face module names); it comes back as the one
// entry "re:<regex>".
AdapterInfo read_adapter_config(const std::string& dir);

// Adds the adapters of dir to `model` (adapters on the Linears whose Hugging Face names match
// the file's target_modules by PEFT's rule; lora_dropout with the model's dropout generator for a
// models::GPT / models::Bert, dropped for other wrappers) and loads their
// weights and the modules_to_save; every tensor of the file must find its parameter with the same
// shape and every adapter parameter must be in the file (Errors name the tensor).
void load_adapter(nn::Module& model, const std::string& arch, const std::string& dir);

// Whether dir holds an adapter (adapter_config.json).
bool is_adapter_dir(const std::string& dir);

}  // namespace llmkit::models
