#include "llmkit/models/rnn_lm.h"

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>

#include "llmkit/core/autograd.h"
#include "llmkit/models/config_file.h"

namespace llmkit::models {

using nlohmann::json;

void RNNLMConfig::validate() const {
  auto positive = [](int64_t v, const char* name) {
    LLMKIT_CHECK(v > 0, "config: ", name, " must be positive, got ", v);
  };
  LLMKIT_CHECK(arch == "rnn", "config: arch '", arch, "' is not rnn");
  nn::parse_cell(cell);
  positive(n_layer, "n_layer");
  positive(n_embd, "n_embd");
  positive(hidden, "hidden");
  positive(vocab_size, "vocab_size");
  positive(block_size, "block_size");
  LLMKIT_CHECK(dropout >= 0 && dropout < 1, "config: dropout ", dropout, " outside [0, 1)");
  LLMKIT_CHECK(!tie_embeddings || n_embd == hidden, "config: tie_embeddings needs n_embd (", n_embd,
               ") == hidden (", hidden, ")");
  // Sizes before anything is allocated: E n_embd, H hidden, V vocab; at most 4 gates (LSTM).
  check_dims(
      {{"n_layer", n_layer}, {"n_embd", n_embd}, {"hidden", hidden}, {"block_size", block_size}},
      vocab_size);
  const int64_t E = n_embd, H = hidden, V = vocab_size;
  const int64_t layer = size_mul(4 * H, size_add(std::max(E, H), H + 2));
  const int64_t params =
      size_add(size_mul(n_layer, layer), size_add(size_mul(V, E), size_mul(H, V)));
  check_model_size(params, "the parameter count");
  check_model_size(size_mul(block_size, std::max({E, 4 * H, V})),
                   "one sequence's widest activation");
}

RNNLMConfig RNNLMConfig::from_json(const json& j) {
  LLMKIT_CHECK(j.is_object(), "config: the model config must be a JSON object");
  RNNLMConfig c;
  auto get = [&](const char* key, auto& field) { read_field(j, key, field); };
  get("arch", c.arch);
  get("cell", c.cell);
  get("n_layer", c.n_layer);
  get("n_embd", c.n_embd);
  get("hidden", c.hidden);
  get("vocab_size", c.vocab_size);
  get("block_size", c.block_size);
  get("dropout", c.dropout);
  get("tie_embeddings", c.tie_embeddings);
  static const char* known[] = {"arch",       "cell",       "n_layer", "n_embd",        "hidden",
                                "vocab_size", "block_size", "dropout", "tie_embeddings"};
  for (auto& [key, v] : j.items()) {
    bool ok = false;
    for (const char* k : known) ok |= key == k;
    LLMKIT_CHECK(ok, "config: unknown field '", key, "' for arch rnn");
  }
  c.validate();
  return c;
}

json RNNLMConfig::to_json() const {
  return json{{"arch", arch},
              {"cell", cell},
              {"n_layer", n_layer},
              {"n_embd", n_embd},
              {"hidden", hidden},
              {"vocab_size", vocab_size},
              {"block_size", block_size},
              {"dropout", dropout},
              {"tie_embeddings", tie_embeddings}};
}

RNNLMConfig RNNLMConfig::load(const std::string& path) {
  return load_config_file<RNNLMConfig>(path);
}

RNNLM::RNNLM(const RNNLMConfig& config, uint64_t seed, DType dt) : cfg_(config), gen_(seed) {
  cfg_.validate();
  embedding = register_module("embedding",
                              std::make_shared<nn::Embedding>(cfg_.vocab_size, cfg_.n_embd, dt));
  rnn = register_module(
      "rnn", std::make_shared<nn::RNN>(nn::parse_cell(cfg_.cell), cfg_.n_embd, cfg_.hidden,
                                       cfg_.n_layer, cfg_.dropout, &gen_, dt));
  if (!cfg_.tie_embeddings)
    head = register_module("head",
                           std::make_shared<nn::Linear>(cfg_.hidden, cfg_.vocab_size, false, dt));
  drop_ = register_module("drop", std::make_shared<nn::Dropout>(cfg_.dropout, &gen_));
  init_weights(seed);
}

void RNNLM::init_weights(uint64_t seed) {
  NoGradGuard ng;
  Generator g(seed);
  g.uniform_(embedding->weight, -0.1, 0.1);
  if (head) g.uniform_(head->weight, -0.1, 0.1);
  rnn->reset_parameters(g);
}

Tensor RNNLM::forward(const Tensor& ids, nn::RNNState* state) {
  LLMKIT_CHECK(ids.dim() == 2 && ids.dtype() == DType::I32, "RNNLM: ids ", ids.str(),
               " must be i32 [B, T]");
  Tensor x = drop_->forward(embedding->forward(ids));  // [B, T, n_embd]
  Tensor y = drop_->forward(rnn->forward(x, state));   // [B, T, hidden]
  return ops::linear(y, head_weight());                // [B, T, V]
}

Tensor RNNLM::loss(const Tensor& ids, const Tensor& targets, nn::RNNState* state) {
  return ops::cross_entropy(forward(ids, state), targets);
}

Tensor RNNLM::step(const Tensor& ids, nn::RNNState& state) {
  LLMKIT_CHECK(ids.dim() == 1 && ids.dtype() == DType::I32, "RNNLM: step ids ", ids.str(),
               " must be i32 [B]");
  Tensor x = drop_->forward(embedding->forward(ids));  // [B, n_embd]
  Tensor y = drop_->forward(rnn->step(x, state));      // [B, hidden]
  return ops::linear(y, head_weight());                // [B, V]
}

}  // namespace llmkit::models
