// DPO's Task (align_tasks.h: DpoTask), its loss (align.h: dpo_loss, TRL's sigmoid loss) and the
// preference batches shared with the reward model. Not here: loading and exporting (align.cpp).
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "llmkit/ops/ops.h"
#include "llmkit/train/align.h"
#include "llmkit/train/align_tasks.h"

namespace llmkit::train {

using nlohmann::json;

Tensor sequence_log_probs(const Tensor& logits, const Tensor& labels) {
  LLMKIT_CHECK(logits.dim() == 3 && labels.dim() == 2 && labels.dtype() == DType::I32 &&
                   logits.size(0) == labels.size(0) && logits.size(1) == labels.size(1),
               "sequence_log_probs: logits ", logits.str(), " and labels ", labels.str(),
               " must be [B, T, V] and i32 [B, T]");
  // The logits at t predict the token at t + 1: shift the labels left instead of the logits.
  const int64_t B = labels.size(0), T = labels.size(1);
  const std::vector<int32_t> l = labels.contiguous().to_vector<int32_t>();
  std::vector<int32_t> next(l.size(), -100);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t + 1 < T; ++t) next[b * T + t] = l[b * T + t + 1];
  return ops::sum(ops::token_log_probs(logits, Tensor::from_vector(next, {B, T})), {1});
}

DpoLoss dpo_loss(const Tensor& policy_chosen, const Tensor& policy_rejected,
                 const Tensor& ref_chosen, const Tensor& ref_rejected, double beta) {
  // TRL (loss_type "sigmoid", label_smoothing 0):
  //   logits = (pi_c - pi_r) - (ref_c - ref_r);  loss = -log sigmoid(beta * logits)
  const Tensor logits = (policy_chosen - policy_rejected) - (ref_chosen - ref_rejected);
  DpoLoss out;
  out.loss = ops::mean(-ops::log_sigmoid(logits * beta));
  NoGradGuard ng;
  out.chosen_rewards = (policy_chosen - ref_chosen) * beta;
  out.rejected_rewards = (policy_rejected - ref_rejected) * beta;
  return out;
}

PairBatch make_pair_batch(const std::vector<data::PreferenceExample>& ex,
                          const std::vector<size_t>& idx, int32_t pad_id) {
  PairBatch p;
  p.pairs = std::ssize(idx);
  const int64_t R = 2 * p.pairs;
  int64_t T = 1;
  for (size_t i : idx)
    T = std::max<int64_t>(T, std::ssize(ex[i].prompt) +
                                 std::max(std::ssize(ex[i].chosen), std::ssize(ex[i].rejected)));
  std::vector<int32_t> ids(R * T, pad_id), labels(R * T, -100);
  std::vector<uint8_t> mask(R * T, 0);
  for (int64_t k = 0; k < R; ++k) {
    const data::PreferenceExample& e = ex[idx[k % p.pairs]];
    const std::vector<int32_t>& answer = k < p.pairs ? e.chosen : e.rejected;
    int64_t t = 0;
    for (int32_t id : e.prompt) {
      ids[k * T + t] = id;
      mask[k * T + t++] = 1;
    }
    for (int32_t id : answer) {
      ids[k * T + t] = labels[k * T + t] = id;
      mask[k * T + t++] = 1;
    }
  }
  p.ids = Tensor::from_vector(ids, {R, T});
  p.labels = Tensor::from_vector(labels, {R, T});
  p.mask = Tensor::from_vector(mask, {R, T});
  return p;
}

DpoTask::DpoTask(models::GPT& model, std::vector<data::PreferenceExample> train,
                 std::vector<data::PreferenceExample> val, double beta, int64_t batch_size,
                 int32_t pad_id, uint64_t seed, bool save_all, json model_config)
    : model_(model),
      train_(std::move(train)),
      val_(std::move(val)),
      beta_(beta),
      batch_(batch_size),
      pad_id_(pad_id),
      save_all_(save_all),
      model_config_(std::move(model_config)),
      order_(train_.size(), seed) {
  LLMKIT_CHECK(!train_.empty(), "dpo: no training pairs");
  LLMKIT_CHECK(batch_ > 0, "dpo: batch size must be positive");
  LLMKIT_CHECK(beta_ > 0 && std::isfinite(beta_), "dpo: beta must be > 0, got ", beta_);
}

double DpoTask::tokens_per_batch() const {
  double total = 0;
  for (const auto& e : train_)
    total += static_cast<double>(2 * e.prompt.size() + e.chosen.size() + e.rejected.size());
  return total / static_cast<double>(train_.size()) *
         static_cast<double>(std::min<size_t>(static_cast<size_t>(batch_), train_.size()));
}

Tensor DpoTask::policy_logps(const std::vector<data::PreferenceExample>& ex,
                             const std::vector<size_t>& idx) {
  const PairBatch p = make_pair_batch(ex, idx, pad_id_);
  // Right padding under a causal mask: no real token sees a pad, so no key mask is needed; it
  // is passed anyway so a model without causal masking could not read padding.
  return sequence_log_probs(model_.forward(p.ids, nullptr, p.mask), p.labels);
}

std::vector<std::vector<double>> DpoTask::compute_reference(bool quiet) {
  const bool was_training = model_.is_training();
  model_.eval();
  NoGradGuard ng;
  std::vector<std::vector<double>> ref(4);
  const std::vector<data::PreferenceExample>* sets[2] = {&train_, &val_};
  size_t done = 0;
  const size_t total = train_.size() + val_.size();
  for (int s = 0; s < 2; ++s) {
    const auto& ex = *sets[s];
    for (size_t start = 0; start < ex.size(); start += static_cast<size_t>(batch_)) {
      std::vector<size_t> idx;
      for (size_t i = start; i < std::min(ex.size(), start + static_cast<size_t>(batch_)); ++i)
        idx.push_back(i);
      const std::vector<double> lp = policy_logps(ex, idx).to(DType::F64).to_vector<double>();
      for (size_t b = 0; b < idx.size(); ++b) {
        ref[2 * s].push_back(lp[b]);
        ref[2 * s + 1].push_back(lp[idx.size() + b]);
      }
      done += idx.size();
      if (!quiet)
        std::fprintf(stderr, "\rdpo: reference log-probabilities %zu / %zu pairs", done, total);
    }
  }
  if (!quiet) std::fprintf(stderr, "\n");
  model_.train(was_training);
  ref_ = ref;
  return ref;
}

void DpoTask::set_reference(std::vector<std::vector<double>> ref) {
  LLMKIT_CHECK(ref.size() == 4 && ref[0].size() == train_.size() &&
                   ref[1].size() == train_.size() && ref[2].size() == val_.size() &&
                   ref[3].size() == val_.size(),
               "dpo: the reference log-probabilities do not match the data (", train_.size(),
               " train / ", val_.size(), " val pairs)");
  ref_ = std::move(ref);
}

namespace {

Tensor gather_ref(const std::vector<double>& v, const std::vector<size_t>& idx, DType dt) {
  std::vector<double> out;
  for (size_t i : idx) out.push_back(v[i]);
  return Tensor::from_vector(out, {std::ssize(idx)}).to(dt);
}

double mean_of(const Tensor& t) {
  return ops::mean(t).item<double>();
}

}  // namespace

Metrics DpoTask::batch_metrics(const Tensor& loss, const Tensor& chosen_rewards,
                               const Tensor& rejected_rewards, const Tensor& policy) const {
  NoGradGuard ng;
  const int64_t B = chosen_rewards.size(0);
  const std::vector<Tensor> pc = ops::split(policy, {B, B}, 0);
  const std::vector<double> c = chosen_rewards.to(DType::F64).contiguous().to_vector<double>();
  const std::vector<double> r = rejected_rewards.to(DType::F64).contiguous().to_vector<double>();
  double acc = 0;
  for (int64_t b = 0; b < B; ++b) acc += c[b] > r[b] ? 1.0 : 0.0;
  Metrics m;
  m["loss"] = loss.item<double>();
  m["rewards/chosen"] = mean_of(chosen_rewards);
  m["rewards/rejected"] = mean_of(rejected_rewards);
  m["rewards/accuracies"] = acc / static_cast<double>(B);
  m["rewards/margins"] = m["rewards/chosen"] - m["rewards/rejected"];
  m["logps/chosen"] = mean_of(pc[0]);
  m["logps/rejected"] = mean_of(pc[1]);
  return m;
}

Tensor DpoTask::next_loss() {
  LLMKIT_CHECK(!ref_.empty(), "dpo: the reference log-probabilities were not computed");
  const std::vector<size_t> idx = order_.next(static_cast<size_t>(batch_));
  const Tensor policy = policy_logps(train_, idx);
  const int64_t B = std::ssize(idx);
  const std::vector<Tensor> pc = ops::split(policy, {B, B}, 0);
  const DpoLoss d = dpo_loss(pc[0], pc[1], gather_ref(ref_[0], idx, policy.dtype()),
                             gather_ref(ref_[1], idx, policy.dtype()), beta_);
  train_metrics_ = batch_metrics(d.loss, d.chosen_rewards, d.rejected_rewards, policy);
  return d.loss;
}

Metrics DpoTask::evaluate(int64_t /*max_batches: the whole set*/) {
  Metrics sum;
  if (val_.empty()) return sum;
  const bool was_training = model_.is_training();
  model_.eval();
  NoGradGuard ng;
  for (size_t start = 0; start < val_.size(); start += static_cast<size_t>(batch_)) {
    std::vector<size_t> idx;
    for (size_t i = start; i < std::min(val_.size(), start + static_cast<size_t>(batch_)); ++i)
      idx.push_back(i);
    const Tensor policy = policy_logps(val_, idx);
    const int64_t B = std::ssize(idx);
    const std::vector<Tensor> pc = ops::split(policy, {B, B}, 0);
    const DpoLoss d = dpo_loss(pc[0], pc[1], gather_ref(ref_[2], idx, policy.dtype()),
                               gather_ref(ref_[3], idx, policy.dtype()), beta_);
    // Every figure is a mean over the batch: weight by its pairs for the mean over the set.
    for (const auto& [k, v] : batch_metrics(d.loss, d.chosen_rewards, d.rejected_rewards, policy))
      sum[k] += v * static_cast<double>(B);
  }
  model_.train(was_training);
  for (auto& [k, v] : sum) v /= static_cast<double>(val_.size());
  return sum;
}

json DpoTask::state() const {
  const Generator& g = model_.dropout_generator();
  return json{{"order", order_.state()}, {"dropout_gen", {g.seed(), g.offset()}}};
}

void DpoTask::load_state(const json& s) {
  try {
    order_.load_state(s.at("order"), "dpo");
    model_.dropout_generator().set_state(s.at("dropout_gen").at(0).get<uint64_t>(),
                                         s.at("dropout_gen").at(1).get<uint64_t>());
  } catch (const json::exception& e) {
    fail("dpo: task state ", s.dump(), " is malformed (", e.what(), ")");
  }
}

}  // namespace llmkit::train
