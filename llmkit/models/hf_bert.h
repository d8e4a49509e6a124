// Hugging Face BERT <-> models::Bert: config.json translation and the tensor name map, for
// BertModel checkpoints (sentence encoders such as all-MiniLM-L6-v2: "embeddings.*",
// "encoder.layer.{i}.*", "pooler.dense.*") and BertForPreTraining ones ("bert." prefix plus the
// "cls.*" heads). Our parameter names are BertForPreTraining's already, so the map is the prefix
// and the tied decoder; no tensor is transposed.
// Not here: the tokenizer (tokenizer/), sentence pooling (infer/embed.h), the one loader that
// picks an architecture for a directory (models/load.h).
#pragma once

#include <memory>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "llmkit/io/safetensors.h"
#include "llmkit/models/bert.h"

namespace llmkit::models {

using BERT = Bert;

// Hugging Face BertConfig JSON -> ours; fields Hugging Face defaults are used where absent.
// pretraining_heads is set when "architectures" names BertForPreTraining. An Error names each
// field we cannot honour: model_type other than bert, position_embedding_type other than
// absolute, hidden_act other than gelu (exact erf), is_decoder, add_cross_attention.
// attention_probs_dropout_prob is read and dropped: our attention kernel has no dropout on the
// probabilities (identical at inference).
BertConfig bert_config_from_hf(const nlohmann::json& hf);
// Ours -> a config.json that transformers' BertModel / BertForPreTraining loads.
nlohmann::json bert_config_to_hf(const BertConfig& c);

// Copies a Hugging Face checkpoint's tensors into `model` (any dtype; converted). Accepts names
// with or without the "bert." prefix, "LayerNorm.gamma/beta" (old TF conversions) for
// weight/bias. Ignored: "embeddings.position_ids" (a buffer), the tied decoder
// ("cls.predictions.decoder.*"), and every "cls.*" tensor when the model has no pretraining
// heads. Anything else unknown, a missing tensor or a wrong shape is an Error naming the
// tensor (and both shapes).
void bert_load_hf_weights(Bert& model, const io::NamedTensors& tensors);
// The model's tensors under Hugging Face's names: BertModel's (no prefix) without pretraining
// heads, BertForPreTraining's ("bert." + "cls.*", the tied decoder left out as save_pretrained
// does) with them. The tensors share storage with the model.
io::NamedTensors bert_hf_weights(const Bert& model);

// A BERT directory (config.json + model.safetensors) -> a model in eval mode: a Hugging Face
// one (config.json with model_type bert, or none), or an llmkit one (config.json with
// "arch": "bert"; its tensors carry BertForPreTraining's names, which load the same way).
// Errors name the file; a decoder's config (model_type gpt2/llama..., arch gpt/llama) is an
// Error saying it is not a BERT encoder. The tokenizer is not read here.
std::unique_ptr<Bert> load_hf_bert_dir(const std::string& dir);
// Writes config.json + model.safetensors that transformers loads (from_pretrained).
void save_hf_bert_dir(const Bert& model, const std::string& dir);

}  // namespace llmkit::models
