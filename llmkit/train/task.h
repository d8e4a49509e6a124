// What the Trainer trains: a model together with its pretraining objective and its data.
// One Trainer loop (trainer.cpp: AdamW, schedule, clipping, accumulation, eval, checkpoints,
// exact resume, Ctrl-C) serves every family; a Task says how a micro-batch becomes a loss:
//   gpt, rnn   next-token prediction over random windows of the token shards   (objective clm)
//   bert       masked-token prediction (15%, 80/10/10), optional next-sentence (objective mlm)
//   t5, bart   span corruption / text infilling, or translation pairs          (objective
//              span | infill | translate)
// make_task picks the Task from the model config's "arch"; each family implements its factory
// in its own file (task_gpt.cpp, task_bert.cpp, task_t5.cpp, task_rnn.cpp).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "llmkit/core/tensor.h"
#include "llmkit/nn/module.h"
#include "llmkit/tokenizer/tokenizer.h"

namespace llmkit::train {

struct TrainConfig;

// Named evaluation figures: always "loss" (mean per predicted token, nats); a family adds its own
// ("accuracy" for masked-token prediction). Perplexity is exp(loss) where the loss is a
// next-token (or next-target-token) loss.
using Metrics = std::map<std::string, double>;

// The data a task trains and evaluates on, prepared once per run directory.
struct TaskData {
  std::string train_shard, val_shard;  // token shards (llmkit/data/shards.h) of the text files
  std::vector<std::string> pairs;      // translation: parallel-corpus files (--pairs)
  std::string run_dir;                 // where a task may cache what it derives from the data
  const tokenizer::Tokenizer* tokenizer = nullptr;
  bool quiet = false;
};

class Task {
 public:
  virtual ~Task() = default;

  virtual nn::Module& model() = 0;
  // The model's config.json (what load_task rebuilds the model from).
  virtual nlohmann::json model_config() const = 0;
  // Tokens the model reads per micro-batch (for the tokens/s figure).
  virtual double tokens_per_batch() const = 0;

  // Draws the next training micro-batch (advancing the data position and the objective's
  // randomness) and returns its mean loss, with the autograd graph for backward().
  virtual Tensor next_loss() = 0;

  // Metrics over the validation data: the first max_batches batches (0: all of it), in eval
  // mode, without gradients, deterministic (the same figures every call). Restores train mode.
  // Empty when the task has no validation data (sft / dpo / reward without --val).
  virtual Metrics evaluate(int64_t max_batches) = 0;
  // The metric the progress line and the closing summary report ("perplexity" or "accuracy").
  virtual std::string headline_metric() const { return "perplexity"; }

  // Everything next_loss depends on besides the weights (data position, RNG states, dropout),
  // so that a resumed run continues bit for bit.
  virtual nlohmann::json state() const = 0;
  virtual void load_state(const nlohmann::json& state) = 0;

  // The tensors a checkpoint saves and restores (model.safetensors): by default every parameter;
  // a fine-tuning task returns only what trains (the head, the adapters), as the body is the
  // pretrained model it was built from.
  virtual nn::NamedTensors checkpoint_tensors() { return model().named_parameters(); }

  // The model's embedding tables (token, position, segment, shared, relative-position bias),
  // which AdamW never decays (adamw.h); matched by identity, whatever their names.
  virtual std::vector<Tensor> embedding_tables() const = 0;
};

// The least text an objective needs, in tokens of the run's tokenizer, so that a run too small
// fails before step 1 saying how much is needed: train_tokens for one training batch,
// val_tokens for one evaluation; *_why says what they are made of.
struct DataNeeds {
  int64_t train_tokens = 0, val_tokens = 0;
  std::string train_why, val_why;
};
DataNeeds task_data_needs(const nlohmann::json& model_config, const TrainConfig& tc);

// The special tokens a family needs in its tokenizer (added when `train` trains the BPE), e.g.
// [PAD] [CLS] [SEP] [MASK] for bert, <pad> </s> <extra_id_0..99> for t5.
std::vector<std::string> task_special_tokens(const nlohmann::json& model_config,
                                             const TrainConfig& tc);

// Builds the model (initialised from tc.seed) and its objective for model_config["arch"]:
// "gpt" (also llama-style presets), "bert", "t5" (also "bart"), "rnn". An Error names an unknown
// arch or an objective the arch does not support.
std::unique_ptr<Task> make_task(const nlohmann::json& model_config, const TrainConfig& tc,
                                const TaskData& data);

// The per-family factories make_task dispatches to (one file each).
std::unique_ptr<Task> make_gpt_task(const nlohmann::json& model_config, const TrainConfig& tc,
                                    const TaskData& data);
std::unique_ptr<Task> make_bert_task(const nlohmann::json& model_config, const TrainConfig& tc,
                                     const TaskData& data);
std::unique_ptr<Task> make_t5_task(const nlohmann::json& model_config, const TrainConfig& tc,
                                   const TaskData& data);
std::unique_ptr<Task> make_rnn_task(const nlohmann::json& model_config, const TrainConfig& tc,
                                    const TaskData& data);
DataNeeds gpt_data_needs(const nlohmann::json& model_config, const TrainConfig& tc);
DataNeeds bert_data_needs(const nlohmann::json& model_config, const TrainConfig& tc);
DataNeeds t5_data_needs(const nlohmann::json& model_config, const TrainConfig& tc);
DataNeeds rnn_data_needs(const nlohmann::json& model_config, const TrainConfig& tc);
std::vector<std::string> bert_special_tokens(const nlohmann::json& model_config,
                                             const TrainConfig& tc);
std::vector<std::string> t5_special_tokens(const nlohmann::json& model_config,
                                           const TrainConfig& tc);

}  // namespace llmkit::train
