// RNNLM: the recurrent language model the transformer replaced (1.2.1 RNN에서 트랜스포머로), as
// PyTorch's word_language_model example writes it:
//   x = embedding[ids]                    [B, T, n_embd]
//   y = rnn(dropout(x), state)            stacked LSTM or GRU, [B, T, hidden]
//   logits = dropout(y) head^T            head = embedding.weight when tied (n_embd == hidden)
// Everything before position t reaches it only through the fixed-size state: cheap per token
// (generation cost and memory do not grow with the context) but the early tokens are diluted.
// config.json: "arch": "rnn", "cell": "lstm" | "gru", n_layer, n_embd, hidden, vocab_size,
// block_size (the truncated-BPTT segment length used in training; no limit on inference length),
// dropout, tie_embeddings. Parameter names: embedding.weight, rnn.weight_ih_l0, ..., head.weight.
#pragma once

#include <memory>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "llmkit/nn/layers.h"
#include "llmkit/nn/rnn.h"

namespace llmkit::models {

struct RNNLMConfig {
  std::string arch = "rnn";
  std::string cell = "lstm";
  int64_t n_layer = 2, n_embd = 128, hidden = 128, vocab_size = 256, block_size = 64;
  double dropout = 0.0;
  bool tie_embeddings = false;  // only when n_embd == hidden

  void validate() const;  // Error naming the field
  static RNNLMConfig from_json(const nlohmann::json& j);
  nlohmann::json to_json() const;
  static RNNLMConfig load(const std::string& path);  // config.json or a training config
};

class RNNLM : public nn::Module {
 public:
  // Initialised (seeded) as word_language_model does: embedding and head U(-0.1, 0.1), the
  // recurrent layers PyTorch's U(-1/sqrt(H), 1/sqrt(H)). dt: F32, or F64 for gradient checks.
  explicit RNNLM(const RNNLMConfig& config, uint64_t seed = 0, DType dt = DType::F32);

  // ids i32 [B, T] -> logits [B, T, V]. With a state, it is the state before ids (empty: zeros)
  // and receives the state after them, so consecutive segments continue one another.
  Tensor forward(const Tensor& ids, nn::RNNState* state = nullptr);
  // Mean next-token cross-entropy of forward(ids, state) against targets [B, T] (-100 = ignore).
  Tensor loss(const Tensor& ids, const Tensor& targets, nn::RNNState* state = nullptr);
  // Generation: ids i32 [B] (one token per sequence) -> logits [B, V]; state advances by one.
  // Constant cost per token, whatever the length so far.
  Tensor step(const Tensor& ids, nn::RNNState& state);
  nn::RNNState make_state(int64_t batch) const { return rnn->zero_state(batch); }

  const RNNLMConfig& config() const { return cfg_; }
  Generator& dropout_generator() { return gen_; }
  const Generator& dropout_generator() const { return gen_; }
  void init_weights(uint64_t seed);

  std::shared_ptr<nn::Embedding> embedding;
  std::shared_ptr<nn::RNN> rnn;
  std::shared_ptr<nn::Linear> head;  // null when tied

 private:
  const Tensor& head_weight() const { return head ? head->weight : embedding->weight; }

  RNNLMConfig cfg_;
  Generator gen_;
  std::shared_ptr<nn::Dropout> drop_;
};

}  // namespace llmkit::models
