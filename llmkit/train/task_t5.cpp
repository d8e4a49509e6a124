// The encoder-decoder family's Task (t5 and bart configs), with three objectives:
//   span       T5 span corruption of random token windows of the text shards (1.1.3 사전 학습)
//   infill     BART text infilling of random windows (Poisson spans -> one <mask> each)
//   translate  (source, target) pairs of parallel-corpus files (--pairs), encoded once; a fixed
//              hash split of the sources (data/pairs.h) is held out for evaluate()
// Batches are padded to their longest member (sources with <pad>, labels with -100). Windows and
// pair indices come from a counter-based generator, so (seed, offset) resumes the exact stream;
// evaluation corrupts the validation windows with a fixed seed, so it is the same every call.
#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <optional>

#include "llmkit/data/pairs.h"
#include "llmkit/data/shards.h"
#include "llmkit/data/span_corruption.h"
#include "llmkit/models/config_file.h"
#include "llmkit/models/t5.h"
#include "llmkit/train/task.h"
#include "llmkit/train/trainer.h"
#include "llmkit/train/translate.h"

namespace llmkit::train {

namespace {

using data::Seq2SeqExample;

// How many <extra_id_k> a span-corruption window of the model's block_size can need.
int64_t sentinels_needed(int64_t block_size, const TrainConfig& tc) {
  const data::SpanLengths l =
      data::span_corruption_lengths(block_size, tc.noise_density, tc.mean_span);
  const int64_t noise = std::max<int64_t>(1, std::llround(l.tokens * tc.noise_density));
  return std::max<int64_t>(1, std::llround(noise / tc.mean_span));
}

class T5Task : public Task {
 public:
  T5Task(const models::T5Config& c, const TrainConfig& tc, const TaskData& data)
      : model_(c, tc.seed), tc_(tc), data_gen_(tc.seed ^ 0x7435da7aull) {
    LLMKIT_CHECK(data.tokenizer != nullptr, "t5 task: needs a tokenizer");
    const tokenizer::Tokenizer& tok = *data.tokenizer;
    LLMKIT_CHECK(tok.vocab_size() <= c.vocab_size, "t5 task: the tokenizer has ", tok.vocab_size(),
                 " tokens but the model's vocab_size is ", c.vocab_size);
    check_token(tok, "<pad>", c.pad_id, "pad_id");
    check_token(tok, "</s>", c.eos_id, "eos_id");
    if (tc.objective == "translate") {
      load_pairs(data, tok);
    } else {
      // `llmkit eval` gives only the validation shard; training needs the train shard.
      LLMKIT_CHECK(!data.train_shard.empty() || !data.val_shard.empty(), "t5 task: objective ",
                   tc.objective, " needs text data (--data)");
      if (!data.train_shard.empty()) train_.emplace(data::TokenShard::open(data.train_shard));
      if (!data.val_shard.empty()) val_.emplace(data::TokenShard::open(data.val_shard));
      if (tc.objective == "span") {
        const int64_t n = sentinels_needed(c.block_size, tc);
        for (int64_t k = 0; k < n; ++k) {
          const std::string name = "<extra_id_" + std::to_string(k) + ">";
          const auto id = tok.find_token(name);
          LLMKIT_CHECK(id.has_value(), "t5 task: the tokenizer lacks the sentinel ", name,
                       " (train it with the t5 special tokens)");
          sentinels_.push_back(*id);
        }
        const auto l = data::span_corruption_lengths(c.block_size, tc.noise_density, tc.mean_span);
        window_ = l.tokens;
        target_len_ = l.target;
      } else {
        const auto id = tok.find_token("<mask>");
        LLMKIT_CHECK(id.has_value(), "t5 task: the tokenizer lacks <mask> (infill objective)");
        mask_id_ = *id;
        window_ = c.block_size - 1;
        target_len_ = c.block_size;
      }
      LLMKIT_CHECK(target_len_ <= c.block_size, "t5 task: targets of ", target_len_,
                   " tokens exceed block_size ", c.block_size);
      LLMKIT_CHECK(!train_ || train_->size() >= window_, "t5 task: the training text has ",
                   train_ ? train_->size() : 0, " tokens, fewer than one window of ", window_);
    }
  }

  nn::Module& model() override { return model_; }
  nlohmann::json model_config() const override { return model_.config().to_json(); }
  double tokens_per_batch() const override {
    if (tc_.objective == "translate") return static_cast<double>(tc_.batch_size) * mean_pair_len_;
    return static_cast<double>(tc_.batch_size) * (model_.config().block_size + target_len_);
  }

  Tensor next_loss() override {
    LLMKIT_CHECK(tc_.objective == "translate" || train_.has_value(), "t5 task: no training text");
    batch_.clear();
    for (int64_t b = 0; b < tc_.batch_size; ++b) {
      if (tc_.objective == "translate") {
        batch_.push_back(train_pairs_[data_gen_.randint(train_pairs_.size())]);
      } else {
        const auto start = static_cast<int64_t>(
            data_gen_.randint(static_cast<uint64_t>(train_->size() - window_ + 1)));
        batch_.push_back(corrupt(*train_, start, data_gen_));
      }
    }
    auto [src, labels] = collate(batch_);
    return model_.loss(src, labels);
  }

  Metrics evaluate(int64_t max_batches) override {
    NoGradGuard ng;
    const bool was_training = model_.is_training();
    model_.eval();
    std::vector<Seq2SeqExample> all;
    const int64_t limit = max_batches > 0 ? max_batches * tc_.batch_size : INT64_MAX;
    if (tc_.objective == "translate") {
      LLMKIT_CHECK(!val_pairs_.empty(), "t5 task: no held-out pairs to evaluate on");
      for (size_t i = 0; i < val_pairs_.size() && static_cast<int64_t>(i) < limit; ++i)
        all.push_back(val_pairs_[i]);
    } else {
      LLMKIT_CHECK(val_.has_value() && val_->size() >= window_,
                   "t5 task: no validation text (or less than one window)");
      Generator g(tc_.seed + 1);  // the same corruption every evaluation
      for (int64_t s = 0; s + window_ <= val_->size() && static_cast<int64_t>(all.size()) < limit;
           s += window_)
        all.push_back(corrupt(*val_, s, g));
    }
    double sum = 0, count = 0;
    for (size_t i = 0; i < all.size(); i += tc_.batch_size) {
      batch_.assign(all.begin() + i,
                    all.begin() + std::min(all.size(), i + static_cast<size_t>(tc_.batch_size)));
      auto [src, labels] = collate(batch_);
      double n = 0;
      for (const auto& ex : batch_) n += static_cast<double>(ex.target.size());
      sum += model_.loss(src, labels).item<double>() * n;
      count += n;
    }
    model_.train(was_training);
    return {{"loss", sum / std::max(count, 1.0)}};
  }

  std::vector<Tensor> embedding_tables() const override {
    std::vector<Tensor> t = {model_.shared->weight};
    for (const auto* stack : {model_.encoder.get(), model_.decoder.get()}) {
      if (stack->embed_positions) t.push_back(stack->embed_positions->weight);
      for (const auto& b : stack->block)
        for (const auto* a : {b->self_attn.get(), b->cross_attn.get()})
          if (a != nullptr && a->relative_attention_bias)
            t.push_back(a->relative_attention_bias->weight);
    }
    return t;
  }

  nlohmann::json state() const override {
    return {{"data_rng", {{"seed", data_gen_.seed()}, {"offset", data_gen_.offset()}}},
            {"dropout_rng",
             {{"seed", model_.dropout_generator().seed()},
              {"offset", model_.dropout_generator().offset()}}}};
  }

  void load_state(const nlohmann::json& s) override {
    data_gen_.set_state(s.at("data_rng").at("seed").get<uint64_t>(),
                        s.at("data_rng").at("offset").get<uint64_t>());
    model_.dropout_generator().set_state(s.at("dropout_rng").at("seed").get<uint64_t>(),
                                         s.at("dropout_rng").at("offset").get<uint64_t>());
  }

 private:
  static void check_token(const tokenizer::Tokenizer& tok, const char* token, int64_t id,
                          const char* field) {
    const auto found = tok.find_token(token);
    LLMKIT_CHECK(found.has_value() && *found == id, "t5 task: model config ", field, " ", id,
                 " is not the tokenizer's ", token, " (",
                 found ? std::to_string(*found) : std::string("absent"), ")");
  }

  void load_pairs(const TaskData& data, const tokenizer::Tokenizer& tok) {
    LLMKIT_CHECK(!data.pairs.empty(),
                 "t5 task: objective translate needs a pairs file (train --pairs FILE; "
                 "evaluate a translation model with `llmkit translate --model DIR --pairs FILE`)");
    std::vector<data::TextPair> pairs, train, held;
    for (const auto& f : data.pairs) {
      auto p = data::read_pairs(f);
      pairs.insert(pairs.end(), std::make_move_iterator(p.begin()),
                   std::make_move_iterator(p.end()));
    }
    data::split_pairs(pairs, tc_.val_fraction, train, held);
    // Both checks run when the task is built, before step 1 (not at the first evaluation).
    LLMKIT_CHECK(!train.empty(), "data: all ", pairs.size(),
                 " pairs fall in the held-out split (val_fraction ", tc_.val_fraction,
                 "); training needs at least 1: give more pairs or lower val_fraction");
    LLMKIT_CHECK(!held.empty(), "data: none of the ", pairs.size(),
                 " pairs falls in the held-out split (val_fraction ", tc_.val_fraction,
                 ", chosen by a hash of each source), and evaluation needs at least 1: give more "
                 "pairs (about ",
                 static_cast<int64_t>(std::ceil(3.0 / tc_.val_fraction)),
                 " or more) or raise val_fraction");
    const auto& c = model_.config();
    const auto eos = static_cast<int32_t>(c.eos_id);
    double total = 0;
    auto encode = [&](const std::vector<data::TextPair>& in, std::vector<Seq2SeqExample>& out) {
      std::vector<std::string> texts;
      for (const auto& p : in) {
        texts.push_back(p.source);
        texts.push_back(p.target);
      }
      const auto ids = tok.encode_batch(texts);  // in parallel, once per run
      for (size_t i = 0; i < in.size(); ++i) {
        Seq2SeqExample ex{ids[2 * i], ids[2 * i + 1]};
        for (auto* v : {&ex.input, &ex.target}) {
          if (static_cast<int64_t>(v->size()) > c.block_size - 1) v->resize(c.block_size - 1);
          v->push_back(eos);
        }
        total += static_cast<double>(ex.input.size() + ex.target.size());
        out.push_back(std::move(ex));
      }
    };
    encode(train, train_pairs_);
    mean_pair_len_ = total / static_cast<double>(train_pairs_.size());
    encode(held, val_pairs_);
  }

  Seq2SeqExample corrupt(const data::TokenShard& shard, int64_t start, Generator& g) {
    window_buf_.resize(window_);
    shard.read(start, window_, window_buf_.data());
    const auto eos = static_cast<int32_t>(model_.config().eos_id);
    if (tc_.objective == "span")
      return data::span_corruption(window_buf_, tc_.noise_density, tc_.mean_span, sentinels_, eos,
                                   g);
    return data::text_infilling(window_buf_, tc_.noise_density, tc_.mean_span, mask_id_, eos, g);
  }

  // Sources padded with pad_id, labels with -100, each to the longest in the batch.
  std::pair<Tensor, Tensor> collate(const std::vector<Seq2SeqExample>& batch) const {
    size_t Ts = 1, Tt = 1;
    for (const auto& ex : batch) {
      Ts = std::max(Ts, ex.input.size());
      Tt = std::max(Tt, ex.target.size());
    }
    const auto B = static_cast<int64_t>(batch.size());
    Tensor src =
        Tensor::full({B, static_cast<int64_t>(Ts)}, double(model_.config().pad_id), DType::I32);
    Tensor lab = Tensor::full({B, static_cast<int64_t>(Tt)}, -100.0, DType::I32);
    int32_t* s = src.data<int32_t>();
    int32_t* l = lab.data<int32_t>();
    for (int64_t b = 0; b < B; ++b) {
      std::copy(batch[b].input.begin(), batch[b].input.end(), s + b * Ts);
      std::copy(batch[b].target.begin(), batch[b].target.end(), l + b * Tt);
    }
    return {src, lab};
  }

  models::T5 model_;
  TrainConfig tc_;
  Generator data_gen_;
  std::optional<data::TokenShard> train_, val_;
  std::vector<int32_t> sentinels_, window_buf_;
  int32_t mask_id_ = -1;
  int64_t window_ = 0, target_len_ = 0;
  std::vector<Seq2SeqExample> train_pairs_, val_pairs_, batch_;
  double mean_pair_len_ = 0;
};

}  // namespace

DataNeeds t5_data_needs(const nlohmann::json& model_config, const TrainConfig& tc) {
  const int64_t T = models::T5Config::from_json(model_config).block_size;
  if (tc.objective == "translate") return {};  // pairs, checked when the task reads them
  if (tc.objective == "infill") {
    const std::string why =
        "one infilling window of block_size - 1 = " + std::to_string(T - 1) + " tokens";
    return {T - 1, T - 1, why, why};
  }
  const int64_t w = data::span_corruption_lengths(T, tc.noise_density, tc.mean_span).tokens;
  const std::string why = "one span-corruption window of " + std::to_string(w) +
                          " tokens (block_size " + std::to_string(T) + ")";
  return {w, w, why, why};
}

std::unique_ptr<Task> make_t5_task(const nlohmann::json& model_config, const TrainConfig& tc,
                                   const TaskData& data) {
  const models::T5Config c = models::T5Config::from_json(model_config);
  // Either preset takes any of the three objectives (same code, different config); span is
  // T5's pretraining, infill BART's.
  LLMKIT_CHECK(tc.objective == "span" || tc.objective == "infill" || tc.objective == "translate",
               "config: arch '", c.arch, "' trains with objective span, infill or translate, not '",
               tc.objective, "'");
  return std::make_unique<T5Task>(c, tc, data);
}

// <pad> </s> <unk> get ids 0, 1, 2 (the configs' pad_id 0, eos_id 1); <mask> for BART's
// infilling; then as many <extra_id_k> as a span-corruption window can need.
std::vector<std::string> t5_special_tokens(const nlohmann::json& model_config,
                                           const TrainConfig& tc) {
  std::vector<std::string> s = {"<pad>", "</s>", "<unk>", "<mask>"};
  if (tc.objective == "span") {
    int64_t block = 128;  // T5Config's default; read_field refuses 1e30 and the like
    models::read_field(model_config, "block_size", block);
    LLMKIT_CHECK(block > 0 && block <= models::kMaxModelElements,
                 "config: block_size must be positive and at most 2^40, got ", block);
    const int64_t n = sentinels_needed(block, tc);
    for (int64_t k = 0; k < n; ++k) s.push_back("<extra_id_" + std::to_string(k) + ">");
  }
  return s;
}

}  // namespace llmkit::train
