// Task heads on a pretrained body (the notes' 전이 학습 / 파인튜닝): a small layer added on top of
// a pretrained encoder or decoder and trained on a little labelled data. Hugging Face's classes,
// with their parameter names, so a checkpoint is interchangeable:
//   BertForSequenceClassification   logits = classifier(dropout(pooled)) classifier.{weight,bias}
//       pooled = tanh(pooler(h[:, 0])) ("cls", Hugging Face's), or the mean over real tokens
//       ("mean", sentence-transformers' pooling: for sentence encoders such as all-MiniLM-L6-v2)
//   LlamaForSequenceClassification  logits = score(h[b, last real token])      score.weight
//   GPT2ForSequenceClassification   the same; Hugging Face's GPT-2 names carry "transformer."
//   *ForTokenClassification         logits = classifier|score(dropout(h)) at every position
// Regression is a sequence head with one output and problem_type "regression" (MSE loss), as in
// Hugging Face. The body is a models::Bert (no pretraining heads) or a models::GPT registered
// with no prefix of its own, so names are the body's ("bert.encoder...", "model.layers...",
// "h.0...") plus the head's. Not here: the training loop (train/finetune.h), LoRA (nn/lora.h),
// saving adapters (models/peft.h).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "llmkit/models/bert.h"
#include "llmkit/models/gpt.h"

namespace llmkit::models {

struct HeadConfig {
  // "sequence" (one label per text) | "token" (one label per token).
  std::string task = "sequence";
  // "single_label_classification" | "regression" (one output, MSE), Hugging Face's problem_type.
  std::string problem_type = "single_label_classification";
  // id2label, in id order; regression: one name (default "score").
  std::vector<std::string> labels;
  // Sequence task: "cls" | "mean" (encoders; default cls) | "last" (decoders, the only choice).
  std::string pooling;
  double dropout = 0.1;  // classifier_dropout (encoders; decoders have none, as Hugging Face)

  int64_t num_labels() const { return static_cast<int64_t>(labels.size()); }
  bool regression() const { return problem_type == "regression"; }
  void validate(const std::string& arch) const;  // Error naming the field
  // The fields Hugging Face puts in config.json (id2label, label2id, problem_type, num_labels)
  // plus ours under "llmkit_head": {"task", "pooling", "dropout"}.
  void to_json(nlohmann::json& config) const;
  // Reads them back; `arch` picks the defaults. Error when id2label is missing or malformed.
  static HeadConfig from_json(const nlohmann::json& config, const std::string& arch);
};

// config.json without the head's fields (what the body's config parser reads), and whether a
// config holds them as llmkit writes them (id2label and llmkit_head).
nlohmann::json strip_head_fields(nlohmann::json config);
bool has_head_fields(const nlohmann::json& config);

class Classifier : public nn::Module {
 public:
  // Wraps a body (exactly one of bert / gpt; ownership taken) and adds a head initialised as
  // Hugging Face's _init_weights: N(0, 0.02) weight, zero bias, drawn from `seed`.
  Classifier(std::shared_ptr<Bert> bert, const HeadConfig& head, uint64_t seed);
  Classifier(std::shared_ptr<GPT> gpt, const HeadConfig& head, uint64_t seed);

  // ids i32 [B, T] (right-padded), attention_mask u8 [B, T] (1 = real token; defined) ->
  // logits [B, L] (sequence) or [B, T, L] (token), L = num_labels.
  Tensor forward(const Tensor& ids, const Tensor& attention_mask);
  // Mean loss of forward's logits: cross-entropy against labels i32 [B] / [B, T] (-100 ignored),
  // or for regression MSE against targets f32 [B].
  Tensor loss(const Tensor& logits, const Tensor& labels) const;

  const HeadConfig& head_config() const { return head_cfg_; }
  const std::string& arch() const { return arch_; }  // the body's: bert | gpt | llama
  // config.json of the whole model: the body's config with the head's fields (HeadConfig).
  nlohmann::json config_json() const;
  // The name of the head module ("classifier" for encoders, "score" for decoders): PEFT's
  // modules_to_save for a classification task.
  const std::string& head_name() const { return head_name_; }
  Generator& dropout_generator();

  std::shared_ptr<Bert> bert;        // set for encoders
  std::shared_ptr<GPT> gpt;          // set for decoders (gpt, llama)
  std::shared_ptr<nn::Linear> head;  // [L, C]; bias for encoders only

 private:
  void init_head(uint64_t seed);
  HeadConfig head_cfg_;
  std::string arch_, head_name_;
  std::shared_ptr<nn::Dropout> dropout_;
};

// QLoRA's frozen base: quantises (nn::Linear::quantize_weight, ggml type `type`) every Linear of
// the body -- not the head, not LoRA adapters. Returns how many; Errors as quantize_weight.
int64_t quantize_body(Classifier& model, const std::string& type);

}  // namespace llmkit::models
