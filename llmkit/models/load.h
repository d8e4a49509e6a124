// The ONE model loader: an llmkit run directory (config.json with "arch"), a Hugging Face model
// directory (config.json with "model_type" + model.safetensors or sharded
// model.safetensors.index.json + tokenizer.json + tokenizer_config.json [+ generation_config.json])
// or a .gguf file. Returns the module with its weights, its tokenizer, its chat template source and
// special tokens. Inference and the CLI load through this; the trainer's checkpoint code is only
// for resuming training. Not here: the name maps themselves (gpt.h, hf_llama.h, ...).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "llmkit/io/safetensors.h"
#include "llmkit/models/bert.h"
#include "llmkit/models/classifier.h"
#include "llmkit/models/gpt.h"
#include "llmkit/models/rnn_lm.h"
#include "llmkit/models/t5.h"
#include "llmkit/tokenizer/tokenizer.h"

namespace llmkit::io {
class GgufFile;
}

namespace llmkit::models {

enum class SourceKind { LlmkitDir, HfDir, Gguf };
const char* source_kind_name(SourceKind k);  // "llmkit", "hf", "gguf"

struct LoadOptions {
  bool tokenizer = true;  // false: skip the tokenizer (tests that feed ids)
  // A .gguf: build the f32 module (every weight dequantised; what convert, quantize and training
  // need). false keeps only the mapped file (LoadedModel::gguf) for infer::Engine, which reads
  // the weights in their stored types: a load of milliseconds and no copy of the weights.
  bool gguf_module = true;
};

struct LoadedModel {
  std::string arch;  // gpt, llama, bert, t5, bart, rnn
  SourceKind source = SourceKind::LlmkitDir;
  std::string path;
  std::unique_ptr<nn::Module> module;  // the model, in eval mode; typed views below
  GPT* gpt = nullptr;                  // gpt and llama
  // Decoders (gpt, llama): the architecture, also when no module was built.
  std::optional<GPTConfig> gpt_config;
  // A .gguf source: the mapped file, its tensors in their stored (quantised) types.
  std::shared_ptr<const io::GgufFile> gguf;
  Bert* bert = nullptr;
  T5* t5 = nullptr;
  RNNLM* rnn = nullptr;
  // A model with a task head (classifier.h): module is the Classifier, and bert / gpt point at
  // its body. Loaded from an llmkit dir whose config.json has the head fields, a Hugging Face
  // *ForSequenceClassification / *ForTokenClassification dir, or a LoRA adapter dir
  // (models/peft.h: the base named by base_model_name_or_path, the head, the adapters merged
  // unless the run was qlora, whose body stays quantised).
  Classifier* classifier = nullptr;
  std::optional<tokenizer::Tokenizer> tokenizer;
  std::string tokenizer_json;  // its source text when it came from a tokenizer.json
  nlohmann::json tokenizer_config = nlohmann::json::object();  // Hugging Face's, when there is one
  std::string chat_template;  // Jinja source; empty when the model has none
  std::string bos_token, eos_token;
  bool add_bos = false;  // prepend bos_id when encoding a prompt
  int32_t bos_id = -1;
  std::vector<int32_t> eos_ids;  // generation stops at these
  double load_seconds = 0;
};

// Loads `path` (a directory, a .gguf file, or a PEFT adapter directory); an Error with one line
// naming the file and the problem (missing files, unknown model_type, missing or mis-shaped
// tensors, truncated files).
LoadedModel load(const std::string& path, const LoadOptions& options = {});

// Reads a Hugging Face weights set from `dir`: model.safetensors, or every shard named by
// model.safetensors.index.json. Tensors keep their file dtype (mapped, not copied); tensors of a
// dtype llmkit has no type for (int64 buffers such as BERT's embeddings.position_ids) are skipped.
io::NamedTensors read_hf_weights(const std::string& dir);

// Copies `weights` into `model` by name (dtype converted: bf16/f16 -> f32), checking that every
// parameter is present with its shape; an Error names the tensor and both shapes. Tensors in
// `ignore` may be absent or extra (a tied lm_head.weight).
void load_named_weights(nn::Module& model, const io::NamedTensors& weights,
                        const std::string& source, const std::vector<std::string>& ignore = {});

// Writes `model`'s weights in the layout of `path`'s directory for a Hugging Face reader
// (safetensors, atomic): config.json, model.safetensors, and, from `loaded`, tokenizer.json and
// tokenizer_config.json (chat_template, bos/eos). format "hf" writes Hugging Face's config.json,
// "llmkit" llmkit's (the tensor names are Hugging Face's in both).
void save_model_dir(const LoadedModel& loaded, const std::string& dir, const std::string& format);

}  // namespace llmkit::models
