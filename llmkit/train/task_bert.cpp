// The encoder family's Task (arch bert): masked-token prediction (1.1.3 사전 학습; 15% of the
// tokens, 80% [MASK] / 10% random / 10% kept), with next-sentence prediction when the train
// config says nsp. Training rows are random windows of the train shard wrapped as [CLS] text [SEP]
// (or [CLS] A [SEP] B [SEP]); validation is one pass over consecutive windows of the val shard
// with a fixed masking seed, so every evaluation scores the same masked tokens. The loss is the
// MLM cross-entropy over the masked tokens (plus the NSP cross-entropy when nsp); the headline
// metric is the MLM accuracy on masked tokens.
#include <algorithm>
#include <nlohmann/json.hpp>
#include <optional>

#include "llmkit/data/mlm.h"
#include "llmkit/data/shards.h"
#include "llmkit/models/bert.h"
#include "llmkit/train/task.h"
#include "llmkit/train/trainer.h"

namespace llmkit::train {

namespace {

// The validation masking seed: fixed, so that runs with different training seeds are scored on
// the same masked tokens.
constexpr uint64_t kValSeed = 0x5eed;

data::BertSpecialIds special_ids(const tokenizer::Tokenizer* tok) {
  data::BertSpecialIds s;  // without a tokenizer: the order of bert_special_tokens
  if (tok == nullptr) return s;
  auto id = [&](const char* name) {
    const auto i = tok->find_token(name);
    LLMKIT_CHECK(
        i.has_value(), "bert: the tokenizer has no ", name,
        " token (bert needs [PAD] [UNK] [CLS] [SEP] [MASK]; train the tokenizer with them)");
    return *i;
  };
  s.pad = id("[PAD]");
  s.cls = id("[CLS]");
  s.sep = id("[SEP]");
  s.mask = id("[MASK]");
  return s;
}

class BertTask : public Task {
 public:
  BertTask(const models::BertConfig& c, const TrainConfig& tc, const TaskData& data,
           const data::BertSpecialIds& special)
      : model_(c, tc.seed), batch_(tc.batch_size), nsp_(tc.nsp) {
    LLMKIT_CHECK(!nsp_ || c.type_vocab_size >= 2,
                 "config: next-sentence prediction (nsp) needs "
                 "type_vocab_size >= 2, got ",
                 c.type_vocab_size);
    data::MlmBatcher::Options o;
    o.batch = tc.batch_size;
    o.block = c.block_size;
    o.nsp = tc.nsp;
    o.special = special;
    o.masking.mask_prob = tc.mask_prob;
    const int32_t tok_vocab = data.tokenizer ? data.tokenizer->vocab_size() : 0;
    auto open = [&](const std::string& path, std::optional<data::TokenShard>& shard) {
      shard.emplace(data::TokenShard::open(path));
      LLMKIT_CHECK(shard->vocab_size() <= c.vocab_size, path, ": token ids up to ",
                   shard->vocab_size(), " do not fit the model's vocab_size ", c.vocab_size);
      // Random replacements come from the tokenizer's ids (the model may have spare rows).
      o.masking.vocab_size =
          tok_vocab > 0 ? std::min<int32_t>(tok_vocab, c.vocab_size) : shard->vocab_size();
    };
    if (!data.train_shard.empty()) {
      open(data.train_shard, train_shard_);
      o.seed = tc.seed;
      train_.emplace(*train_shard_, o);
    }
    if (!data.val_shard.empty()) {
      open(data.val_shard, val_shard_);
      o.seed = kValSeed;
      o.sequential = true;
      val_.emplace(*val_shard_, o);
    }
  }

  nn::Module& model() override { return model_; }
  nlohmann::json model_config() const override { return model_.config().to_json(); }
  double tokens_per_batch() const override {
    return static_cast<double>(batch_) * model_.config().block_size;
  }

  Tensor next_loss() override {
    LLMKIT_CHECK(train_.has_value(), "bert task: no training data");
    const data::MlmBatch b = *train_->next();
    return model_.pretraining_loss(b.ids, b.token_type_ids, Tensor(), b.labels, b.nsp_labels);
  }

  Metrics evaluate(int64_t max_batches) override;
  std::string headline_metric() const override { return "accuracy"; }

  std::vector<Tensor> embedding_tables() const override {
    const auto& e = *model_.embeddings;
    return {e.word_embeddings->weight, e.position_embeddings->weight,
            e.token_type_embeddings->weight};
  }

  nlohmann::json state() const override {
    const auto p = train_ ? train_->position() : data::MlmBatcher::Position{};
    return {{"window_rng_offset", p.windows},
            {"masking_rng_offset", p.masking},
            {"dropout_rng",
             {{"seed", model_.dropout_generator().seed()},
              {"offset", model_.dropout_generator().offset()}}}};
  }

  void load_state(const nlohmann::json& s) override {
    try {
      if (train_)
        train_->set_position({s.at("window_rng_offset").get<uint64_t>(),
                              s.at("masking_rng_offset").get<uint64_t>(), 0});
      model_.dropout_generator().set_state(s.at("dropout_rng").at("seed").get<uint64_t>(),
                                           s.at("dropout_rng").at("offset").get<uint64_t>());
    } catch (const nlohmann::json::exception& e) {
      fail("bert task: the saved task state is incomplete (", e.what(), ")");
    }
  }

 private:
  models::Bert model_;
  int64_t batch_;
  bool nsp_;
  std::optional<data::TokenShard> train_shard_, val_shard_;
  std::optional<data::MlmBatcher> train_, val_;
};

Metrics BertTask::evaluate(int64_t max_batches) {
  LLMKIT_CHECK(val_.has_value(), "bert task: no validation data");
  const bool was_training = model_.is_training();
  model_.eval();
  NoGradGuard ng;
  val_->restart();
  double loss_sum = 0, nsp_loss_sum = 0;
  int64_t masked = 0, correct = 0, pairs = 0, nsp_correct = 0;
  auto argmax_hits = [](const Tensor& logits, const std::vector<int32_t>& want) {
    const int64_t V = logits.size(1);
    const float* p = logits.data<float>();
    int64_t hits = 0;
    for (size_t i = 0; i < want.size(); ++i) {
      const float* row = p + static_cast<int64_t>(i) * V;
      hits += std::max_element(row, row + V) - row == want[i];
    }
    return hits;
  };
  for (int64_t n = 0; max_batches <= 0 || n < max_batches; ++n) {
    const auto b = val_->next();
    if (!b) break;
    models::BertOutput out;
    const double loss =
        model_.pretraining_loss(b->ids, b->token_type_ids, Tensor(), b->labels, Tensor(), &out)
            .item<float>();
    std::vector<int32_t> targets;  // the labelled positions, in the order of out.mlm_logits
    for (int32_t l : b->labels.to_vector<int32_t>())
      if (l != -100) targets.push_back(l);
    const auto m = static_cast<int64_t>(targets.size());
    loss_sum += loss * static_cast<double>(m);  // the batch loss is a mean over its m tokens
    masked += m;
    correct += argmax_hits(out.mlm_logits, targets);
    if (nsp_) {
      Tensor logits = model_.nsp_head(out.hidden);  // [B, 2]
      const auto labels = b->nsp_labels.to_vector<int32_t>();
      const auto rows = static_cast<int64_t>(labels.size());
      nsp_loss_sum += ops::cross_entropy(logits, b->nsp_labels).item<float>() * rows;
      nsp_correct += argmax_hits(logits, labels);
      pairs += rows;
    }
  }
  model_.train(was_training);
  LLMKIT_CHECK(masked > 0, "bert task: the validation data gave no masked token");
  Metrics m = {{"loss", loss_sum / masked},
               {"accuracy", static_cast<double>(correct) / masked},
               {"tokens", static_cast<double>(masked)}};
  if (nsp_) {
    m["nsp_loss"] = nsp_loss_sum / pairs;
    m["nsp_accuracy"] = static_cast<double>(nsp_correct) / pairs;
  }
  return m;
}

}  // namespace

DataNeeds bert_data_needs(const nlohmann::json& model_config, const TrainConfig& tc) {
  const int64_t T = models::BertConfig::from_json(model_config).block_size;
  const int64_t content = T - (tc.nsp ? 3 : 2);
  const std::string why = "one window of block_size - " + std::string(tc.nsp ? "3" : "2") + " = " +
                          std::to_string(content) + " tokens between [CLS] and [SEP]";
  return {content, content, why, why};
}

std::unique_ptr<Task> make_bert_task(const nlohmann::json& model_config, const TrainConfig& tc,
                                     const TaskData& data) {
  LLMKIT_CHECK(tc.objective == "mlm",
               "config: arch 'bert' trains with objective mlm (masked-token "
               "prediction), not '",
               tc.objective, "'");
  models::BertConfig c = models::BertConfig::from_json(model_config);
  const data::BertSpecialIds special = special_ids(data.tokenizer);
  if (data.tokenizer != nullptr) c.pad_id = special.pad;  // the tokenizer decides
  return std::make_unique<BertTask>(c, tc, data, special);
}

std::vector<std::string> bert_special_tokens(const nlohmann::json&, const TrainConfig&) {
  return tokenizer::kBertSpecialTokens;
}

}  // namespace llmkit::train
