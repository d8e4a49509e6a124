// SFT's Task (align_tasks.h: SftTask) and what the alignment tasks share (EpochOrder, the
// checkpoint and embedding lists). Not here: loading and exporting (align.cpp).
#include <algorithm>
#include <cmath>

#include "llmkit/core/random.h"
#include "llmkit/ops/ops.h"
#include "llmkit/train/align_tasks.h"

namespace llmkit::train {

using nlohmann::json;

EpochOrder::EpochOrder(size_t n, uint64_t seed) : n_(n), seed_(seed) {
  shuffle();
}

void EpochOrder::shuffle() {
  order_.resize(n_);
  for (size_t i = 0; i < n_; ++i) order_[i] = i;
  Generator g(seed_ * 1000003ULL + static_cast<uint64_t>(epoch_) + 17);
  for (size_t i = n_; i > 1; --i) std::swap(order_[i - 1], order_[g.randint(i)]);
  pos_ = 0;
}

std::vector<size_t> EpochOrder::next(size_t count) {
  std::vector<size_t> out;
  count = std::min(count, n_);
  while (out.size() < count) {
    if (pos_ >= order_.size()) {
      ++epoch_;
      shuffle();
    }
    out.push_back(order_[pos_++]);
  }
  return out;
}

json EpochOrder::state() const {
  return json{{"epoch", epoch_}, {"pos", pos_}};
}

void EpochOrder::load_state(const json& s, const char* who) {
  try {
    epoch_ = s.at("epoch").get<int64_t>();
    shuffle();
    pos_ = s.at("pos").get<size_t>();
  } catch (const json::exception& e) {
    fail(who, ": task state ", s.dump(), " is malformed (", e.what(), ")");
  }
  LLMKIT_CHECK(pos_ <= n_, who, ": task state position ", pos_, " is past the training set (", n_,
               " items): other data?");
}

nn::NamedTensors trainable_or_all(nn::Module& model, bool save_all) {
  if (save_all) return model.named_parameters();
  nn::NamedTensors out;
  for (auto& [name, t] : model.named_parameters())
    if (t.requires_grad()) out.emplace_back(name, t);
  return out;
}

std::vector<Tensor> gpt_embedding_tables(const models::GPT& gpt) {
  std::vector<Tensor> out{gpt.wte->weight};
  if (gpt.wpe) out.push_back(gpt.wpe->weight);
  return out;
}

namespace {

// One example per row, padded to the longest: the unpacked layout, in the same PackedRows form.
data::PackedRows one_per_row(const std::vector<data::SftExample>& ex, int64_t row_len,
                             int32_t pad_id) {
  data::PackedRows r;
  r.row_len = 1;
  for (const auto& e : ex) r.row_len = std::max<int64_t>(r.row_len, std::ssize(e.ids));
  r.row_len = std::min(r.row_len, row_len);
  r.rows = std::ssize(ex);
  const auto n = static_cast<size_t>(r.rows * r.row_len);
  r.ids.assign(n, pad_id);
  r.labels.assign(n, -100);
  r.segments.assign(n, -1);
  for (size_t i = 0; i < ex.size(); ++i) {
    const size_t len = std::min(ex[i].ids.size(), static_cast<size_t>(r.row_len));
    const size_t at = i * static_cast<size_t>(r.row_len);
    std::copy_n(ex[i].ids.begin(), len, r.ids.begin() + static_cast<std::ptrdiff_t>(at));
    std::copy_n(ex[i].labels.begin(), len, r.labels.begin() + static_cast<std::ptrdiff_t>(at));
    std::fill_n(r.segments.begin() + static_cast<std::ptrdiff_t>(at), len, 0);
    r.tokens += static_cast<int64_t>(len);
  }
  r.examples = r.rows;
  return r;
}

}  // namespace

SftTask::SftTask(models::GPT& model, std::vector<data::SftExample> train,
                 std::vector<data::SftExample> val, bool pack, int64_t row_len, int64_t batch_size,
                 int32_t pad_id, uint64_t seed, bool save_all, json model_config)
    : model_(model),
      batch_(batch_size),
      save_all_(save_all),
      model_config_(std::move(model_config)),
      order_(0, seed) {
  LLMKIT_CHECK(!train.empty(), "sft: no training conversations");
  LLMKIT_CHECK(batch_ > 0, "sft: batch size must be positive");
  if (pack) {
    // First-fit packing in a seeded order, so rows mix sources and lengths.
    std::vector<size_t> idx(train.size());
    for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
    Generator g(seed * 2654435761ULL + 5);
    for (size_t i = idx.size(); i > 1; --i) std::swap(idx[i - 1], idx[g.randint(i)]);
    std::vector<data::SftExample> shuffled;
    shuffled.reserve(train.size());
    for (size_t i : idx) shuffled.push_back(std::move(train[i]));
    rows_ = data::pack_examples(shuffled, row_len, pad_id);
    val_rows_ = data::pack_examples(val, row_len, pad_id);
  } else {
    rows_ = one_per_row(train, row_len, pad_id);
    val_rows_ = one_per_row(val, row_len, pad_id);
  }
  order_ = EpochOrder(static_cast<size_t>(rows_.rows), seed);
}

double SftTask::tokens_per_batch() const {
  return static_cast<double>(rows_.tokens) / static_cast<double>(rows_.rows) *
         static_cast<double>(std::min<int64_t>(batch_, rows_.rows));
}

// The mean next-token loss over the assistant tokens of `rows` of `from`: the batch is cut after
// its last real token; a position predicts the next one only inside its own example.
Tensor SftTask::rows_loss(const std::vector<size_t>& rows, const data::PackedRows& from) {
  const int64_t L = from.row_len;
  int64_t T = 1;
  for (size_t r : rows)
    for (int64_t t = L; t > 0; --t)
      if (from.segments[r * L + t - 1] >= 0) {
        T = std::max(T, t);
        break;
      }
  const auto B = std::ssize(rows);
  std::vector<int32_t> ids(B * T), seg(B * T), tgt(B * T, -100);
  for (int64_t b = 0; b < B; ++b) {
    const size_t at = rows[b] * static_cast<size_t>(L);
    for (int64_t t = 0; t < T; ++t) {
      ids[b * T + t] = from.ids[at + t];
      seg[b * T + t] = from.segments[at + t];
      if (t + 1 < T && from.segments[at + t] >= 0 &&
          from.segments[at + t + 1] == from.segments[at + t])
        tgt[b * T + t] = from.labels[at + t + 1];
    }
  }
  const Tensor logits =
      model_.forward_packed(Tensor::from_vector(ids, {B, T}), Tensor::from_vector(seg, {B, T}));
  return ops::cross_entropy(logits, Tensor::from_vector(tgt, {B, T}));
}

Tensor SftTask::next_loss() {
  return rows_loss(order_.next(static_cast<size_t>(batch_)), rows_);
}

Metrics SftTask::evaluate(int64_t /*max_batches: the whole set*/) {
  Metrics m;
  if (val_rows_.rows == 0) return m;
  const bool was_training = model_.is_training();
  model_.eval();
  NoGradGuard ng;
  double sum = 0, count = 0;
  for (int64_t start = 0; start < val_rows_.rows; start += batch_) {
    std::vector<size_t> rows;
    for (int64_t r = start; r < std::min(val_rows_.rows, start + batch_); ++r)
      rows.push_back(static_cast<size_t>(r));
    // Weight each batch by its labelled tokens: the mean per assistant token over the set.
    double n = 0;
    for (size_t r : rows)
      for (int64_t t = 1; t < val_rows_.row_len; ++t) {
        const size_t i = r * static_cast<size_t>(val_rows_.row_len) + static_cast<size_t>(t);
        if (val_rows_.labels[i] != -100 && val_rows_.segments[i] == val_rows_.segments[i - 1])
          n += 1;
      }
    if (n == 0) continue;
    sum += rows_loss(rows, val_rows_).item<double>() * n;
    count += n;
  }
  model_.train(was_training);
  m["loss"] = count > 0 ? sum / count : 0.0;
  m["perplexity"] = std::exp(m["loss"]);
  m["tokens"] = count;
  return m;
}

json SftTask::state() const {
  const Generator& g = model_.dropout_generator();
  return json{{"order", order_.state()}, {"dropout_gen", {g.seed(), g.offset()}}};
}

void SftTask::load_state(const json& s) {
  try {
    order_.load_state(s.at("order"), "sft");
    model_.dropout_generator().set_state(s.at("dropout_gen").at(0).get<uint64_t>(),
                                         s.at("dropout_gen").at(1).get<uint64_t>());
  } catch (const json::exception& e) {
    fail("sft: task state ", s.dump(), " is malformed (", e.what(), ")");
  }
}

}  // namespace llmkit::train
