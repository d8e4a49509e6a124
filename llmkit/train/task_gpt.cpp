// The decoder family's Task (gpt and llama-style configs): next-token prediction (1.1.3 사전
// 학습) on random windows of block_size + 1 tokens from the train shard; validation is the mean
// next-token loss over consecutive windows of the val shard. The reference for the other
// families' tasks.
#include <nlohmann/json.hpp>
#include <optional>

#include "llmkit/data/batches.h"
#include "llmkit/data/shards.h"
#include "llmkit/models/gpt.h"
#include "llmkit/train/task.h"
#include "llmkit/train/trainer.h"

namespace llmkit::train {

namespace {

class GptTask : public Task {
 public:
  GptTask(const models::GPTConfig& c, const TrainConfig& tc, const TaskData& data)
      : model_(c, tc.seed), batch_(tc.batch_size) {
    if (!data.train_shard.empty()) {
      train_.emplace(data::TokenShard::open(data.train_shard));
      sampler_.emplace(*train_, tc.batch_size, c.block_size, tc.seed);
    }
    val_path_ = data.val_shard;
  }

  nn::Module& model() override { return model_; }
  nlohmann::json model_config() const override { return model_.config().to_json(); }
  double tokens_per_batch() const override {
    return static_cast<double>(batch_) * model_.config().block_size;
  }

  Tensor next_loss() override {
    LLMKIT_CHECK(sampler_.has_value(), "gpt task: no training data");
    auto [ids, targets] = sampler_->next_tensors();
    return model_.loss(ids, targets);
  }

  Metrics evaluate(int64_t max_batches) override {
    LLMKIT_CHECK(!val_path_.empty(), "gpt task: no validation data");
    return {{"loss", evaluate_shard(model_, val_path_, batch_, max_batches)}};
  }

  nlohmann::json state() const override {
    return {{"sampler_position", sampler_ ? sampler_->position() : 0},
            {"dropout_rng",
             {{"seed", model_.dropout_generator().seed()},
              {"offset", model_.dropout_generator().offset()}}}};
  }

  void load_state(const nlohmann::json& s) override {
    if (sampler_) sampler_->set_position(s.at("sampler_position").get<uint64_t>());
    model_.dropout_generator().set_state(s.at("dropout_rng").at("seed").get<uint64_t>(),
                                         s.at("dropout_rng").at("offset").get<uint64_t>());
  }

  std::vector<Tensor> embedding_tables() const override {
    std::vector<Tensor> t = {model_.wte->weight};
    if (model_.wpe) t.push_back(model_.wpe->weight);
    return t;
  }

  models::GPT& gpt() { return model_; }

 private:
  models::GPT model_;
  int64_t batch_;
  std::optional<data::TokenShard> train_;
  std::optional<data::BatchSampler> sampler_;
  std::string val_path_;
};

}  // namespace

DataNeeds gpt_data_needs(const nlohmann::json& model_config, const TrainConfig&) {
  const int64_t T = models::GPTConfig::from_json(model_config).block_size;
  const std::string why = "one window of block_size + 1 = " + std::to_string(T + 1) + " tokens";
  return {T + 1, T + 1, why, why};
}

std::unique_ptr<Task> make_gpt_task(const nlohmann::json& model_config, const TrainConfig& tc,
                                    const TaskData& data) {
  LLMKIT_CHECK(tc.objective == "clm", "config: arch '", model_config.value("arch", "gpt"),
               "' trains with objective clm (next-token prediction), not '", tc.objective, "'");
  return std::make_unique<GptTask>(models::GPTConfig::from_json(model_config), tc, data);
}

}  // namespace llmkit::train
