// The Tasks of instruction and preference tuning (align.h), each a train::Task the Trainer's loop
// runs: SftTask (task_sft.cpp), DpoTask (task_dpo.cpp), RewardTask (task_reward.cpp). Not here:
// loading, choosing what trains, exporting (align.cpp).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "llmkit/data/conversations.h"
#include "llmkit/data/preferences.h"
#include "llmkit/models/classifier.h"
#include "llmkit/models/gpt.h"
#include "llmkit/train/task.h"

namespace llmkit::train {

// Shuffled epochs over n items: the order of epoch e is a Fisher-Yates shuffle from a generator
// seeded by (seed, e), so a resumed run rebuilds it from (epoch, position) alone.
class EpochOrder {
 public:
  EpochOrder(size_t n, uint64_t seed);
  // The next `count` items (wrapping into the next epoch).
  std::vector<size_t> next(size_t count);
  nlohmann::json state() const;
  void load_state(const nlohmann::json& s, const char* who);

 private:
  void shuffle();
  size_t n_;
  uint64_t seed_;
  int64_t epoch_ = 0;
  size_t pos_ = 0;
  std::vector<size_t> order_;
};

// What every alignment task shares: the model's parameters to checkpoint (all for full
// fine-tuning, the trainable ones for LoRA) and its embedding tables.
nn::NamedTensors trainable_or_all(nn::Module& model, bool save_all);
std::vector<Tensor> gpt_embedding_tables(const models::GPT& gpt);

// Next-token loss on the assistant tokens of conversations. pack: rows of row_len tokens holding
// several examples (GPT::forward_packed), built once from a seeded shuffle; the rows then come in
// shuffled epochs. Not packed: one example per row, a batch padded to its longest row. Evaluation:
// the loss per assistant token over every validation example, and its perplexity.
class SftTask : public Task {
 public:
  SftTask(models::GPT& model, std::vector<data::SftExample> train,
          std::vector<data::SftExample> val, bool pack, int64_t row_len, int64_t batch_size,
          int32_t pad_id, uint64_t seed, bool save_all, nlohmann::json model_config);

  nn::Module& model() override { return model_; }
  nlohmann::json model_config() const override { return model_config_; }
  double tokens_per_batch() const override;
  Tensor next_loss() override;
  Metrics evaluate(int64_t max_batches) override;
  nlohmann::json state() const override;
  void load_state(const nlohmann::json& state) override;
  nn::NamedTensors checkpoint_tensors() override { return trainable_or_all(model_, save_all_); }
  std::vector<Tensor> embedding_tables() const override { return gpt_embedding_tables(model_); }

  const data::PackedRows& rows() const { return rows_; }

 private:
  Tensor rows_loss(const std::vector<size_t>& rows, const data::PackedRows& from);
  models::GPT& model_;
  data::PackedRows rows_, val_rows_;  // packed, or one example per row (padded to row_len)
  int64_t batch_;
  bool save_all_;
  nlohmann::json model_config_;
  EpochOrder order_;
};

// The rows of a preference batch: for B pairs, 2B rows [chosen_0 .. chosen_B-1, rejected_0 ..
// rejected_B-1], each prompt + answer right-padded with pad_id, labels -100 on the prompt and the
// padding (the ids of the answer elsewhere), key mask 1 on real tokens.
struct PairBatch {
  Tensor ids, labels, mask;  // i32 [2B, T], i32 [2B, T], u8 [2B, T]
  int64_t pairs = 0;
};
PairBatch make_pair_batch(const std::vector<data::PreferenceExample>& ex,
                          const std::vector<size_t>& idx, int32_t pad_id);

// DPO (align.h: dpo). The reference log-probabilities of every pair come from the model as it is
// when the task is built (before any step): compute_reference() fills them, or set_reference
// gives them back (the run directory's cache).
class DpoTask : public Task {
 public:
  DpoTask(models::GPT& model, std::vector<data::PreferenceExample> train,
          std::vector<data::PreferenceExample> val, double beta, int64_t batch_size, int32_t pad_id,
          uint64_t seed, bool save_all, nlohmann::json model_config);

  // Summed answer log-probabilities under the current model (no gradient, eval mode), for every
  // train and val pair: {train chosen, train rejected, val chosen, val rejected}.
  std::vector<std::vector<double>> compute_reference(bool quiet);
  void set_reference(std::vector<std::vector<double>> ref);

  nn::Module& model() override { return model_; }
  nlohmann::json model_config() const override { return model_config_; }
  double tokens_per_batch() const override;
  Tensor next_loss() override;
  Metrics evaluate(int64_t max_batches) override;
  std::string headline_metric() const override { return "rewards/accuracies"; }
  nlohmann::json state() const override;
  void load_state(const nlohmann::json& state) override;
  nn::NamedTensors checkpoint_tensors() override { return trainable_or_all(model_, save_all_); }
  std::vector<Tensor> embedding_tables() const override { return gpt_embedding_tables(model_); }

  // The figures of the last training micro-batch (TRL's train logs), and of the last evaluation.
  const Metrics& last_train_metrics() const { return train_metrics_; }

 private:
  // Policy log-probabilities [2B] (chosen then rejected) of the pairs idx of `ex`.
  Tensor policy_logps(const std::vector<data::PreferenceExample>& ex,
                      const std::vector<size_t>& idx);
  Metrics batch_metrics(const Tensor& loss, const Tensor& chosen_rewards,
                        const Tensor& rejected_rewards, const Tensor& policy) const;
  models::GPT& model_;
  std::vector<data::PreferenceExample> train_, val_;
  double beta_;
  int64_t batch_;
  int32_t pad_id_;
  bool save_all_;
  nlohmann::json model_config_;
  EpochOrder order_;
  std::vector<std::vector<double>> ref_;
  Metrics train_metrics_;
};

// The reward model (align.h: reward_train): a Classifier with one output, trained with the
// Bradley-Terry loss -log sigmoid(r_chosen - r_rejected). Its inputs are the ids of prompt +
// answer (PreferenceExample; for an encoder body [CLS] ... [SEP] around them).
class RewardTask : public Task {
 public:
  RewardTask(models::Classifier& model, std::vector<data::PreferenceExample> train,
             std::vector<data::PreferenceExample> val, int64_t batch_size, int32_t pad_id,
             uint64_t seed, bool save_all, nlohmann::json model_config);

  nn::Module& model() override { return model_; }
  nlohmann::json model_config() const override { return model_config_; }
  double tokens_per_batch() const override;
  Tensor next_loss() override;
  Metrics evaluate(int64_t max_batches) override;
  std::string headline_metric() const override { return "accuracy"; }
  nlohmann::json state() const override;
  void load_state(const nlohmann::json& state) override;
  nn::NamedTensors checkpoint_tensors() override { return trainable_or_all(model_, save_all_); }
  std::vector<Tensor> embedding_tables() const override;

 private:
  Tensor scores(const std::vector<data::PreferenceExample>& ex, const std::vector<size_t>& idx);
  models::Classifier& model_;
  std::vector<data::PreferenceExample> train_, val_;
  int64_t batch_;
  int32_t pad_id_;
  bool save_all_;
  nlohmann::json model_config_;
  EpochOrder order_;
};

}  // namespace llmkit::train
