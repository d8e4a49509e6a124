// The reward model's Task (align_tasks.h: RewardTask): a one-output Classifier trained with the
// Bradley-Terry loss on preference pairs, as TRL's RewardTrainer. Not here: loading and
// exporting (align.cpp).
#include <algorithm>

#include "llmkit/ops/ops.h"
#include "llmkit/train/align_tasks.h"

namespace llmkit::train {

using nlohmann::json;

RewardTask::RewardTask(models::Classifier& model, std::vector<data::PreferenceExample> train,
                       std::vector<data::PreferenceExample> val, int64_t batch_size, int32_t pad_id,
                       uint64_t seed, bool save_all, json model_config)
    : model_(model),
      train_(std::move(train)),
      val_(std::move(val)),
      batch_(batch_size),
      pad_id_(pad_id),
      save_all_(save_all),
      model_config_(std::move(model_config)),
      order_(train_.size(), seed) {
  LLMKIT_CHECK(!train_.empty(), "reward: no training pairs");
  LLMKIT_CHECK(batch_ > 0, "reward: batch size must be positive");
  LLMKIT_CHECK(model_.head_config().num_labels() == 1, "reward: the model's head has ",
               model_.head_config().num_labels(), " outputs; a reward model has one");
}

double RewardTask::tokens_per_batch() const {
  double total = 0;
  for (const auto& e : train_)
    total += static_cast<double>(2 * e.prompt.size() + e.chosen.size() + e.rejected.size());
  return total / static_cast<double>(train_.size()) *
         static_cast<double>(std::min<size_t>(static_cast<size_t>(batch_), train_.size()));
}

// The rewards [2B, 1] of the pairs idx: chosen rows first, then rejected.
Tensor RewardTask::scores(const std::vector<data::PreferenceExample>& ex,
                          const std::vector<size_t>& idx) {
  const PairBatch p = make_pair_batch(ex, idx, pad_id_);
  return model_.forward(p.ids, p.mask);
}

namespace {

// -log sigmoid(r_chosen - r_rejected), the Bradley-Terry negative log-likelihood that the
// chosen answer wins; and the per-pair margins.
Tensor bradley_terry(const Tensor& r, int64_t B, Tensor* margins) {
  const std::vector<Tensor> cr = ops::split(r, {B, B}, 0);
  const Tensor d = cr[0] - cr[1];
  if (margins) *margins = d;
  return ops::mean(-ops::log_sigmoid(d));
}

}  // namespace

Tensor RewardTask::next_loss() {
  const std::vector<size_t> idx = order_.next(static_cast<size_t>(batch_));
  return bradley_terry(scores(train_, idx), std::ssize(idx), nullptr);
}

Metrics RewardTask::evaluate(int64_t /*max_batches: the whole set*/) {
  Metrics m;
  if (val_.empty()) return m;
  const bool was_training = model_.is_training();
  model_.eval();
  NoGradGuard ng;
  double loss = 0, correct = 0, margin = 0;
  for (size_t start = 0; start < val_.size(); start += static_cast<size_t>(batch_)) {
    std::vector<size_t> idx;
    for (size_t i = start; i < std::min(val_.size(), start + static_cast<size_t>(batch_)); ++i)
      idx.push_back(i);
    Tensor d;
    loss += bradley_terry(scores(val_, idx), std::ssize(idx), &d).item<double>() *
            static_cast<double>(idx.size());
    for (double x : d.to(DType::F64).contiguous().to_vector<double>()) {
      correct += x > 0 ? 1 : 0;
      margin += x;
    }
  }
  model_.train(was_training);
  const auto n = static_cast<double>(val_.size());
  m["loss"] = loss / n;
  m["accuracy"] = correct / n;
  m["margin"] = margin / n;
  return m;
}

json RewardTask::state() const {
  const Generator& g = model_.dropout_generator();
  return json{{"order", order_.state()}, {"dropout_gen", {g.seed(), g.offset()}}};
}

void RewardTask::load_state(const json& s) {
  try {
    order_.load_state(s.at("order"), "reward");
    model_.dropout_generator().set_state(s.at("dropout_gen").at(0).get<uint64_t>(),
                                         s.at("dropout_gen").at(1).get<uint64_t>());
  } catch (const json::exception& e) {
    fail("reward: task state ", s.dump(), " is malformed (", e.what(), ")");
  }
}

std::vector<Tensor> RewardTask::embedding_tables() const {
  if (model_.gpt) return gpt_embedding_tables(*model_.gpt);
  const auto& e = *model_.bert->embeddings;
  return {e.word_embeddings->weight, e.position_embeddings->weight,
          e.token_type_embeddings->weight};
}

}  // namespace llmkit::train
