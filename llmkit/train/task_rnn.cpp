// The RNN family's Task: next-token prediction (objective clm) with truncated backpropagation
// through time (TBPTT), the way recurrent language models are trained. The train shard is cut
// into batch_size contiguous streams; every micro-batch advances each stream by block_size tokens
// and carries the final hidden state, detached, into the next micro-batch, so the model reads the
// corpus in order with an unbounded memory but gradients that stop block_size steps back. When
// the streams run out they start again from their beginnings with a zero state.
// state()/load_state() hold the stream position, the hidden state (as raw float bytes, so a
// resumed run continues bit for bit) and the dropout generator.
// evaluate(): mean next-token loss over the val shard read the same way (batch_size streams,
// segments of block_size, state carried), from a zero state, deterministic.
#include <cstring>
#include <nlohmann/json.hpp>
#include <optional>

#include "llmkit/core/autograd.h"
#include "llmkit/data/shards.h"
#include "llmkit/models/rnn_lm.h"
#include "llmkit/train/task.h"
#include "llmkit/train/trainer.h"

namespace llmkit::train {

namespace {

// Hex of a contiguous f32 tensor's bytes, and back: exact, unlike decimal text.
std::string to_hex(const Tensor& t) {
  static const char* kDigits = "0123456789abcdef";
  const Tensor c = t.contiguous();
  const auto* p = static_cast<const unsigned char*>(c.raw_data());
  const size_t n = c.numel() * dtype_size(c.dtype());
  std::string s(2 * n, '0');
  for (size_t i = 0; i < n; ++i) {
    s[2 * i] = kDigits[p[i] >> 4];
    s[2 * i + 1] = kDigits[p[i] & 15];
  }
  return s;
}

void from_hex(const std::string& s, const Tensor& t) {
  const size_t n = t.numel() * dtype_size(t.dtype());
  LLMKIT_CHECK(s.size() == 2 * n, "rnn task state: hidden state of ", s.size() / 2,
               " bytes, expected ", n, " for ", t.str());
  auto nib = [](char ch) -> unsigned {
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    fail("rnn task state: bad hex digit in the hidden state");
  };
  auto* p = static_cast<unsigned char*>(t.raw_data());
  for (size_t i = 0; i < n; ++i)
    p[i] = static_cast<unsigned char>(nib(s[2 * i]) << 4 | nib(s[2 * i + 1]));
}

// Fills ids/targets [S, len] from `streams` streams of `stride` tokens starting at `base`, each
// read from offset `pos` (targets are the next tokens).
void read_segment(const data::TokenShard& shard, int64_t streams, int64_t stride, int64_t pos,
                  int64_t len, std::vector<int32_t>& buf, int32_t* ids, int32_t* targets) {
  buf.resize(len + 1);
  for (int64_t b = 0; b < streams; ++b) {
    shard.read(b * stride + pos, len + 1, buf.data());
    std::memcpy(ids + b * len, buf.data(), len * sizeof(int32_t));
    std::memcpy(targets + b * len, buf.data() + 1, len * sizeof(int32_t));
  }
}

class RnnTask : public Task {
 public:
  RnnTask(const models::RNNLMConfig& c, const TrainConfig& tc, const TaskData& data)
      : model_(c, tc.seed), batch_(tc.batch_size), block_(c.block_size) {
    if (!data.train_shard.empty()) {
      train_.emplace(data::TokenShard::open(data.train_shard));
      stride_ = (train_->size() - 1) / batch_;
      LLMKIT_CHECK(stride_ >= block_, "rnn task: the train shard's ", train_->size(),
                   " tokens do not give ", batch_,
                   " streams (batch_size) of block_size + 1 = ", block_ + 1, " tokens");
    }
    val_path_ = data.val_shard;
    ids_ = Tensor::empty({batch_, block_}, DType::I32);
    targets_ = Tensor::empty({batch_, block_}, DType::I32);
  }

  nn::Module& model() override { return model_; }
  nlohmann::json model_config() const override { return model_.config().to_json(); }
  double tokens_per_batch() const override { return static_cast<double>(batch_) * block_; }

  Tensor next_loss() override {
    LLMKIT_CHECK(train_.has_value(), "rnn task: no training data");
    if (pos_ + block_ > stride_) {  // every stream is used up: start over from a zero state
      pos_ = 0;
      hidden_ = nn::RNNState();
    }
    read_segment(*train_, batch_, stride_, pos_, block_, buf_, ids_.data<int32_t>(),
                 targets_.data<int32_t>());
    pos_ += block_;
    if (hidden_.empty()) hidden_ = model_.make_state(batch_);
    Tensor loss = model_.loss(ids_, targets_, &hidden_);
    hidden_ = hidden_.detach();  // carry the values, not the graph (truncated BPTT)
    return loss;
  }

  Metrics evaluate(int64_t max_batches) override {
    LLMKIT_CHECK(!val_path_.empty(), "rnn task: no validation data");
    const data::TokenShard val = data::TokenShard::open(val_path_);
    LLMKIT_CHECK(val.size() >= 2, "rnn task: the val shard has ", val.size(),
                 " tokens; need at least 2");
    NoGradGuard ng;
    const bool was_training = model_.is_training();
    model_.eval();
    const int64_t streams = std::min<int64_t>(batch_, val.size() - 1);
    const int64_t stride = (val.size() - 1) / streams;
    nn::RNNState s = model_.make_state(streams);
    std::vector<int32_t> ids, tgt, buf;
    double sum = 0;
    int64_t count = 0, segments = 0;
    for (int64_t pos = 0; pos < stride && (max_batches <= 0 || segments < max_batches);
         pos += block_, ++segments) {
      const int64_t len = std::min(block_, stride - pos);
      ids.resize(streams * len);
      tgt.resize(streams * len);
      read_segment(val, streams, stride, pos, len, buf, ids.data(), tgt.data());
      const double l = model_
                           .loss(Tensor::from_vector(ids, {streams, len}),
                                 Tensor::from_vector(tgt, {streams, len}), &s)
                           .item<double>();
      sum += l * streams * len;
      count += streams * len;
    }
    model_.train(was_training);
    return {{"loss", sum / count}};
  }

  std::vector<Tensor> embedding_tables() const override { return {model_.embedding->weight}; }

  nlohmann::json state() const override {
    nlohmann::json h = nlohmann::json::array(), c = nlohmann::json::array();
    for (const Tensor& t : hidden_.h) h.push_back(to_hex(t));
    for (const Tensor& t : hidden_.c) c.push_back(to_hex(t));
    return {{"stream_position", pos_},
            {"stream_stride", stride_},
            {"hidden", {{"h", h}, {"c", c}}},
            {"dropout_rng",
             {{"seed", model_.dropout_generator().seed()},
              {"offset", model_.dropout_generator().offset()}}}};
  }

  void load_state(const nlohmann::json& s) override {
    try {
      LLMKIT_CHECK(s.at("stream_stride").get<int64_t>() == stride_,
                   "rnn task state: the streams were cut for different data (stride ",
                   s.at("stream_stride").get<int64_t>(), ", now ", stride_, ")");
      pos_ = s.at("stream_position").get<int64_t>();
      const auto& h = s.at("hidden").at("h");
      const auto& c = s.at("hidden").at("c");
      hidden_ = nn::RNNState();
      if (!h.empty()) {
        hidden_ = model_.make_state(batch_);
        LLMKIT_CHECK(h.size() == hidden_.h.size() && c.size() == hidden_.c.size(),
                     "rnn task state: hidden state for ", h.size(), " layers, model has ",
                     hidden_.h.size());
        for (size_t l = 0; l < h.size(); ++l) from_hex(h[l].get<std::string>(), hidden_.h[l]);
        for (size_t l = 0; l < c.size(); ++l) from_hex(c[l].get<std::string>(), hidden_.c[l]);
      }
      model_.dropout_generator().set_state(s.at("dropout_rng").at("seed").get<uint64_t>(),
                                           s.at("dropout_rng").at("offset").get<uint64_t>());
    } catch (const nlohmann::json::exception& e) {
      fail("rnn task state: ", e.what());
    }
  }

 private:
  models::RNNLM model_;
  int64_t batch_, block_;
  std::optional<data::TokenShard> train_;
  int64_t stride_ = 0;   // tokens per stream
  int64_t pos_ = 0;      // offset of the next segment within every stream
  nn::RNNState hidden_;  // carried between micro-batches (detached); empty = zeros
  std::string val_path_;
  Tensor ids_, targets_;  // [batch, block], reused
  std::vector<int32_t> buf_;
};

}  // namespace

DataNeeds rnn_data_needs(const nlohmann::json& model_config, const TrainConfig& tc) {
  const int64_t T = models::RNNLMConfig::from_json(model_config).block_size;
  return {tc.batch_size * T + 1, 2,
          "batch_size " + std::to_string(tc.batch_size) + " streams of block_size " +
              std::to_string(T) + " tokens, plus 1",
          "2 tokens, one prediction"};
}

std::unique_ptr<Task> make_rnn_task(const nlohmann::json& model_config, const TrainConfig& tc,
                                    const TaskData& data) {
  LLMKIT_CHECK(tc.objective == "clm", "config: arch 'rnn' trains with objective clm (next-token ",
               "prediction, truncated BPTT), not '", tc.objective, "'");
  return std::make_unique<RnnTask>(models::RNNLMConfig::from_json(model_config), tc, data);
}

}  // namespace llmkit::train
