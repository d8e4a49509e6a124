// The fine-tuning Task (finetune.h: ClassifyTask): labelled examples in shuffled epochs through
// a models::Classifier, evaluated over the whole validation set. Not here: loading the model,
// choosing what trains and exporting the result (finetune.cpp).
#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "llmkit/train/finetune.h"

namespace llmkit::train {

using nlohmann::json;

ClassifyTask::ClassifyTask(models::Classifier& model, ClassifyExamples train, ClassifyExamples val,
                           int64_t batch_size, uint64_t seed, bool save_all, json model_config)
    : model_(model),
      train_(std::move(train)),
      val_(std::move(val)),
      batch_(batch_size),
      seed_(seed),
      save_all_(save_all),
      model_config_(std::move(model_config)) {
  LLMKIT_CHECK(train_.size() > 0 && val_.size() > 0, "finetune: no training or validation data");
  LLMKIT_CHECK(batch_ > 0, "finetune: batch size must be positive");
  shuffle_epoch();
}

// The order of epoch_ (Fisher-Yates from a generator seeded by the run's seed and the epoch),
// so a resumed run rebuilds it from (epoch, position) alone.
void ClassifyTask::shuffle_epoch() {
  order_.resize(train_.size());
  for (size_t i = 0; i < order_.size(); ++i) order_[i] = i;
  Generator g(seed_ * 1000003ULL + static_cast<uint64_t>(epoch_) + 17);
  for (size_t i = order_.size(); i > 1; --i) std::swap(order_[i - 1], order_[g.randint(i)]);
  pos_ = 0;
}

double ClassifyTask::tokens_per_batch() const {
  double total = 0;
  for (const auto& r : train_.ids) total += static_cast<double>(r.size());
  return total / static_cast<double>(train_.size()) * static_cast<double>(batch_);
}

namespace {

// Labels (i32 [B]) or targets (f32 [B]) of the examples `idx`.
Tensor batch_targets(const ClassifyExamples& ex, const std::vector<size_t>& idx, bool regression) {
  const auto B = static_cast<int64_t>(idx.size());
  if (regression) {
    std::vector<float> t;
    for (size_t i : idx) t.push_back(ex.targets[i]);
    return Tensor::from_vector(t, {B});
  }
  std::vector<int32_t> l;
  for (size_t i : idx) l.push_back(ex.labels[i]);
  return Tensor::from_vector(l, {B});
}

infer::PaddedBatch batch_inputs(const ClassifyExamples& ex, const std::vector<size_t>& idx) {
  std::vector<std::vector<int32_t>> rows;
  for (size_t i : idx) rows.push_back(ex.ids[i]);
  return infer::pad_batch(rows, 0);
}

double pearson(const std::vector<double>& a, const std::vector<double>& b) {
  const double n = static_cast<double>(a.size());
  double ma = 0, mb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    ma += a[i] / n;
    mb += b[i] / n;
  }
  double sab = 0, saa = 0, sbb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) * (a[i] - ma);
    sbb += (b[i] - mb) * (b[i] - mb);
  }
  return saa > 0 && sbb > 0 ? sab / std::sqrt(saa * sbb) : 0.0;
}

}  // namespace

Tensor ClassifyTask::next_loss() {
  std::vector<size_t> idx;
  const size_t want = std::min(static_cast<size_t>(batch_), train_.size());
  while (idx.size() < want) {
    if (pos_ >= order_.size()) {
      ++epoch_;
      shuffle_epoch();
    }
    idx.push_back(order_[pos_++]);
  }
  const infer::PaddedBatch p = batch_inputs(train_, idx);
  const Tensor logits = model_.forward(p.ids, p.mask);
  return model_.loss(logits, batch_targets(train_, idx, model_.head_config().regression()));
}

Metrics ClassifyTask::evaluate(int64_t /*max_batches: always the whole set*/) {
  const bool was_training = model_.is_training();
  const bool regression = model_.head_config().regression();
  model_.eval();
  NoGradGuard ng;
  double loss_sum = 0;
  std::vector<int64_t> truth, pred;
  std::vector<double> score, target;
  for (size_t start = 0; start < val_.size(); start += static_cast<size_t>(batch_)) {
    std::vector<size_t> idx;
    for (size_t i = start; i < std::min(val_.size(), start + static_cast<size_t>(batch_)); ++i)
      idx.push_back(i);
    const infer::PaddedBatch p = batch_inputs(val_, idx);
    const Tensor logits = model_.forward(p.ids, p.mask);  // [B, L]
    loss_sum += model_.loss(logits, batch_targets(val_, idx, regression)).item<double>() *
                static_cast<double>(idx.size());
    const std::vector<float> v = logits.contiguous().to_vector<float>();
    const size_t L = v.size() / idx.size();
    for (size_t b = 0; b < idx.size(); ++b) {
      if (regression) {
        score.push_back(v[b]);
        target.push_back(val_.targets[idx[b]]);
      } else {
        pred.push_back(infer::argmax(std::span<const float>(v.data() + b * L, L)));
        truth.push_back(val_.labels[idx[b]]);
      }
    }
  }
  model_.train(was_training);
  Metrics m;
  m["loss"] = loss_sum / static_cast<double>(val_.size());
  if (regression) {
    m["mse"] = m["loss"];
    m["pearson"] = pearson(score, target);
    return metrics_ = m;
  }
  report_ = infer::classification_report(truth, pred, model_.head_config().labels);
  m["accuracy"] = report_.accuracy;
  m["macro_f1"] = report_.macro_f1;
  return metrics_ = m;
}

std::string ClassifyTask::headline_metric() const {
  return model_.head_config().regression() ? "pearson" : "accuracy";
}

json ClassifyTask::state() const {
  const Generator& g = model_.dropout_generator();
  return json{{"epoch", epoch_}, {"pos", pos_}, {"dropout_gen", {g.seed(), g.offset()}}};
}

void ClassifyTask::load_state(const json& s) {
  try {
    epoch_ = s.at("epoch").get<int64_t>();
    shuffle_epoch();
    pos_ = s.at("pos").get<size_t>();
    model_.dropout_generator().set_state(s.at("dropout_gen").at(0).get<uint64_t>(),
                                         s.at("dropout_gen").at(1).get<uint64_t>());
  } catch (const json::exception& e) {
    fail("finetune: task state ", s.dump(), " is malformed (", e.what(), ")");
  }
  LLMKIT_CHECK(pos_ <= order_.size(), "finetune: task state position ", pos_,
               " is past the training set (", order_.size(), " examples): other data?");
}

nn::NamedTensors ClassifyTask::checkpoint_tensors() {
  if (save_all_) return model_.named_parameters();
  nn::NamedTensors out;
  for (auto& [name, t] : model_.named_parameters())
    if (t.requires_grad()) out.emplace_back(name, t);
  return out;
}

std::vector<Tensor> ClassifyTask::embedding_tables() const {
  std::vector<Tensor> out;
  if (model_.bert) {
    const auto& e = *model_.bert->embeddings;
    out = {e.word_embeddings->weight, e.position_embeddings->weight,
           e.token_type_embeddings->weight};
  } else {
    out.push_back(model_.gpt->wte->weight);
    if (model_.gpt->wpe) out.push_back(model_.gpt->wpe->weight);
  }
  return out;
}

}  // namespace llmkit::train
