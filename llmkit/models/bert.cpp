// BERT (see bert.h): config, the encoder, the pretraining heads and sentence pooling.
// B batch, T time, C channels, V vocab, NH heads, HS head size, H FFN hidden, M masked tokens.
#include "llmkit/models/bert.h"
#include "llmkit/models/config_file.h"

#include <algorithm>
#include <nlohmann/json.hpp>

namespace llmkit::models {

using nlohmann::json;

// --- config ---

void BertConfig::validate() const {
  auto positive = [](int64_t v, const char* name) {
    LLMKIT_CHECK(v > 0, "config: ", name, " must be positive, got ", v);
  };
  positive(vocab_size, "vocab_size");
  positive(n_layer, "n_layer");
  positive(n_head, "n_head");
  positive(n_embd, "n_embd");
  positive(block_size, "block_size");
  positive(type_vocab_size, "type_vocab_size");
  LLMKIT_CHECK(ffn_hidden >= 0, "config: ffn_hidden must be >= 0 (0: 4 n_embd), got ", ffn_hidden);
  LLMKIT_CHECK(n_embd % n_head == 0, "config: n_embd ", n_embd, " is not divisible by n_head ",
               n_head);
  LLMKIT_CHECK(dropout >= 0 && dropout < 1, "config: dropout ", dropout, " outside [0, 1)");
  LLMKIT_CHECK(norm_eps > 0, "config: norm_eps must be positive, got ", norm_eps);
  LLMKIT_CHECK(pad_id >= -1 && pad_id < vocab_size, "config: pad_id ", pad_id,
               " outside [-1, vocab_size ", vocab_size, ")");
  // Sizes before anything is allocated: C n_embd, H FFN hidden, V vocab, T block_size.
  check_dims({{"n_layer", n_layer},
              {"n_head", n_head},
              {"n_embd", n_embd},
              {"block_size", block_size},
              {"type_vocab_size", type_vocab_size},
              {"ffn_hidden", ffn_hidden}},
             vocab_size);
  const int64_t C = n_embd, H = hidden(), V = vocab_size, T = block_size;
  const int64_t layer = size_add(size_mul(4 * C, C), size_mul(2 * C, H));
  int64_t params = size_add(size_mul(n_layer, layer), size_mul(size_add(V, T), C));
  params = size_add(params, size_mul(type_vocab_size, C));
  check_model_size(params, "the parameter count");
  check_model_size(size_mul(T, std::max({C, H, V})), "one sequence's widest activation");
  check_model_size(size_mul(size_mul(T, T), n_head), "one sequence's attention scores");
}

BertConfig BertConfig::from_json(const json& j) {
  LLMKIT_CHECK(j.is_object(), "config: the model config must be a JSON object");
  static const char* known[] = {"arch",    "vocab_size", "n_layer",         "n_head",
                                "n_embd",  "block_size", "type_vocab_size", "ffn_hidden",
                                "dropout", "norm_eps",   "pad_id",          "pretraining_heads"};
  for (auto& [key, v] : j.items()) {
    bool ok = false;
    for (const char* k : known) ok |= key == k;
    LLMKIT_CHECK(ok, "config: unknown field '", key, "' for arch bert");
  }
  BertConfig c;
  auto get = [&](const char* key, auto& field) { read_field(j, key, field); };
  get("arch", c.arch);
  get("vocab_size", c.vocab_size);
  get("n_layer", c.n_layer);
  get("n_head", c.n_head);
  get("n_embd", c.n_embd);
  get("block_size", c.block_size);
  get("type_vocab_size", c.type_vocab_size);
  get("ffn_hidden", c.ffn_hidden);
  get("dropout", c.dropout);
  get("norm_eps", c.norm_eps);
  get("pad_id", c.pad_id);
  get("pretraining_heads", c.pretraining_heads);
  LLMKIT_CHECK(c.arch == "bert", "config: arch '", c.arch, "' is not bert");
  c.validate();
  return c;
}

json BertConfig::to_json() const {
  return json{{"arch", arch},
              {"vocab_size", vocab_size},
              {"n_layer", n_layer},
              {"n_head", n_head},
              {"n_embd", n_embd},
              {"block_size", block_size},
              {"type_vocab_size", type_vocab_size},
              {"ffn_hidden", hidden()},
              {"dropout", dropout},
              {"norm_eps", norm_eps},
              {"pad_id", pad_id},
              {"pretraining_heads", pretraining_heads}};
}

Pooling parse_pooling(const std::string& name) {
  if (name == "cls") return Pooling::Cls;
  if (name == "mean") return Pooling::Mean;
  fail("pooling '", name, "' is not one of cls, mean");
}

// --- embeddings ---

BertEmbeddings::BertEmbeddings(const BertConfig& c, Generator* gen, DType dt) {
  word_embeddings = register_module("word_embeddings",
                                    std::make_shared<nn::Embedding>(c.vocab_size, c.n_embd, dt));
  position_embeddings = register_module(
      "position_embeddings", std::make_shared<nn::Embedding>(c.block_size, c.n_embd, dt));
  token_type_embeddings = register_module(
      "token_type_embeddings", std::make_shared<nn::Embedding>(c.type_vocab_size, c.n_embd, dt));
  norm =
      register_module("LayerNorm", std::make_shared<nn::LayerNorm>(c.n_embd, true, c.norm_eps, dt));
  dropout_ = register_module("dropout", std::make_shared<nn::Dropout>(c.dropout, gen));
  std::vector<int32_t> pos(c.block_size);
  for (int64_t t = 0; t < c.block_size; ++t) pos[t] = static_cast<int32_t>(t);
  positions_ = Tensor::from_vector(pos, {c.block_size});
}

Tensor BertEmbeddings::forward(const Tensor& ids, const Tensor& token_type_ids) {
  const int64_t T = ids.size(1);
  Tensor x = word_embeddings->forward(ids);                         // [B, T, C]
  x = x + position_embeddings->forward(positions_.slice(0, 0, T));  // + [T, C]
  if (token_type_ids.defined())
    x = x + token_type_embeddings->forward(token_type_ids);  // + [B, T, C]
  else
    x = x + token_type_embeddings->weight.select(0, 0);  // + [C]: segment 0
  return dropout_->forward(norm->forward(x));
}

// --- encoder layer ---

BertLayer::BertLayer(const BertConfig& c, Generator* gen, DType dt) : n_head_(c.n_head) {
  const int64_t C = c.n_embd, H = c.hidden();
  query = register_module("attention.self.query", std::make_shared<nn::Linear>(C, C, true, dt));
  key = register_module("attention.self.key", std::make_shared<nn::Linear>(C, C, true, dt));
  value = register_module("attention.self.value", std::make_shared<nn::Linear>(C, C, true, dt));
  attn_out =
      register_module("attention.output.dense", std::make_shared<nn::Linear>(C, C, true, dt));
  attn_norm = register_module("attention.output.LayerNorm",
                              std::make_shared<nn::LayerNorm>(C, true, c.norm_eps, dt));
  intermediate =
      register_module("intermediate.dense", std::make_shared<nn::Linear>(C, H, true, dt));
  output = register_module("output.dense", std::make_shared<nn::Linear>(H, C, true, dt));
  output_norm =
      register_module("output.LayerNorm", std::make_shared<nn::LayerNorm>(C, true, c.norm_eps, dt));
  dropout_ = register_module("dropout", std::make_shared<nn::Dropout>(c.dropout, gen));
}

Tensor BertLayer::forward(const Tensor& x, const Tensor& key_mask) {
  const int64_t B = x.size(0), T = x.size(1), C = x.size(2), NH = n_head_, HS = C / NH;
  // [B, T, C] -> [B, NH, T, HS] views; the attention kernel takes the strides as they are.
  auto heads = [&](const nn::Linear& proj) {
    return proj.forward(x).reshape({B, T, NH, HS}).transpose(1, 2);
  };
  ops::AttentionOptions opt;
  opt.causal = false;  // bidirectional: every token sees every real token
  opt.key_mask = key_mask;
  Tensor a = ops::scaled_dot_product_attention(heads(*query), heads(*key), heads(*value), opt);
  a = a.transpose(1, 2).reshape({B, T, C});
  Tensor y = attn_norm->forward(x + dropout_->forward(attn_out->forward(a)));  // post-LN
  Tensor h = ops::gelu(intermediate->forward(y), ops::GeluApprox::Erf);        // [B, T, H]
  return output_norm->forward(y + dropout_->forward(output->forward(h)));
}

// --- the model ---

Bert::Bert(const BertConfig& config, uint64_t seed, DType dt, bool initialise)
    : cfg_(config), gen_(seed) {
  cfg_.validate();
  const int64_t C = cfg_.n_embd;
  embeddings =
      register_module("bert.embeddings", std::make_shared<BertEmbeddings>(cfg_, &gen_, dt));
  for (int64_t i = 0; i < cfg_.n_layer; ++i)
    layer.push_back(register_module("bert.encoder.layer." + std::to_string(i),
                                    std::make_shared<BertLayer>(cfg_, &gen_, dt)));
  pooler = register_module("bert.pooler.dense", std::make_shared<nn::Linear>(C, C, true, dt));
  if (!cfg_.pretraining_heads) {
    if (initialise) init_weights(seed);
    return;
  }
  transform = register_module("cls.predictions.transform.dense",
                              std::make_shared<nn::Linear>(C, C, true, dt));
  transform_norm = register_module("cls.predictions.transform.LayerNorm",
                                   std::make_shared<nn::LayerNorm>(C, true, cfg_.norm_eps, dt));
  decoder_bias = register_parameter("cls.predictions.bias", Tensor::zeros({cfg_.vocab_size}, dt));
  seq_relationship =
      register_module("cls.seq_relationship", std::make_shared<nn::Linear>(C, 2, true, dt));
  if (initialise) init_weights(seed);
}

void Bert::init_weights(uint64_t seed) {
  NoGradGuard ng;
  Generator g(seed);
  for (auto& [name, p] : named_parameters()) {
    const bool is_bias = name.size() > 5 && name.compare(name.size() - 5, 5, ".bias") == 0;
    if (name.find("LayerNorm") != std::string::npos)
      p.fill_(is_bias ? 0.0 : 1.0);
    else if (is_bias)
      p.zero_();
    else
      g.normal_(p, 0.0, 0.02);
  }
  if (cfg_.pad_id >= 0) embeddings->word_embeddings->weight.select(0, cfg_.pad_id).zero_();
}

Tensor Bert::padding_mask(const Tensor& ids) const {
  Tensor m = Tensor::empty(ids.shape(), DType::U8);
  const Tensor ic = ids.contiguous();
  const int32_t* p = ic.data<int32_t>();
  uint8_t* pm = m.data<uint8_t>();
  for (int64_t i = 0; i < ids.numel(); ++i) pm[i] = cfg_.pad_id < 0 || p[i] != cfg_.pad_id;
  return m;
}

Tensor Bert::encode(const Tensor& ids, const Tensor& token_type_ids, const Tensor& attention_mask) {
  LLMKIT_CHECK(ids.dim() == 2 && ids.dtype() == DType::I32, "Bert: ids ", ids.str(),
               " must be i32 [B, T]");
  const int64_t T = ids.size(1);
  LLMKIT_CHECK(T >= 1 && T <= cfg_.block_size, "Bert: ", T,
               " positions outside the context window [1, block_size ", cfg_.block_size, "]");
  if (token_type_ids.defined())
    LLMKIT_CHECK(token_type_ids.dtype() == DType::I32 && token_type_ids.shape() == ids.shape(),
                 "Bert: token_type_ids ", token_type_ids.str(), " must be i32 shaped like ids ",
                 ids.str());
  Tensor mask = attention_mask;
  if (mask.defined()) {
    LLMKIT_CHECK(mask.dtype() == DType::U8 && mask.shape() == ids.shape(), "Bert: attention_mask ",
                 mask.str(), " must be u8 shaped like ids ", ids.str());
  } else if (cfg_.pad_id >= 0) {
    // Only build a mask when there is padding: the kernel is faster without one.
    const Tensor ic = ids.contiguous();
    const int32_t* p = ic.data<int32_t>();
    bool any_pad = false;
    for (int64_t i = 0; i < ids.numel() && !any_pad; ++i) any_pad = p[i] == cfg_.pad_id;
    if (any_pad) mask = padding_mask(ids);
  }
  Tensor x = embeddings->forward(ids, token_type_ids);
  for (auto& l : layer) x = l->forward(x, mask);
  return x;
}

void Bert::require_heads(const char* what) const {
  LLMKIT_CHECK(cfg_.pretraining_heads, "Bert: ", what,
               " needs the pretraining heads (cls.*); this model is an encoder only "
               "(pretraining_heads = false)");
}

Tensor Bert::mlm_head(const Tensor& hidden) {
  require_heads("the MLM head");
  Tensor h = ops::gelu(transform->forward(hidden), ops::GeluApprox::Erf);
  h = transform_norm->forward(h);
  return ops::linear(h, embeddings->word_embeddings->weight, decoder_bias);  // tied decoder
}

Tensor Bert::pooled(const Tensor& hidden) {
  return ops::tanh(pooler->forward(hidden.select(1, 0)));  // [CLS] -> [B, C]
}

Tensor Bert::nsp_head(const Tensor& hidden) {
  require_heads("the NSP head");
  return seq_relationship->forward(pooled(hidden));
}

BertOutput Bert::forward(const Tensor& ids, const Tensor& token_type_ids,
                         const Tensor& attention_mask) {
  require_heads("forward (MLM and NSP logits)");
  BertOutput o;
  o.hidden = encode(ids, token_type_ids, attention_mask);
  o.mlm_logits = mlm_head(o.hidden);
  o.nsp_logits = nsp_head(o.hidden);
  return o;
}

Tensor Bert::pretraining_loss(const Tensor& ids, const Tensor& token_type_ids,
                              const Tensor& attention_mask, const Tensor& labels,
                              const Tensor& nsp_labels, BertOutput* out) {
  require_heads("pretraining_loss");
  LLMKIT_CHECK(labels.dtype() == DType::I32 && labels.shape() == ids.shape(), "Bert: labels ",
               labels.str(), " must be i32 shaped like ids ", ids.str());
  Tensor hidden = encode(ids, token_type_ids, attention_mask);
  const int64_t B = hidden.size(0), T = hidden.size(1), C = hidden.size(2);
  // The decoder ([M, C] x [C, V]) runs at the M labelled positions only, not all B T: with 15%
  // masking that is a seventh of the largest GEMM of the model. The row gather is an embedding
  // lookup into the hidden states, whose backward scatters into them.
  const Tensor lc = labels.contiguous();
  const int32_t* pl = lc.data<int32_t>();
  std::vector<int32_t> rows, targets;
  for (int64_t i = 0; i < B * T; ++i)
    if (pl[i] != -100) {
      rows.push_back(static_cast<int32_t>(i));
      targets.push_back(pl[i]);
    }
  LLMKIT_CHECK(!rows.empty(), "Bert: labels hold no masked position (all -100)");
  const int64_t M = static_cast<int64_t>(rows.size());
  Tensor picked = ops::embedding(Tensor::from_vector(rows, {M}), hidden.reshape({B * T, C}));
  Tensor logits = mlm_head(picked);  // [M, V]
  Tensor loss = ops::cross_entropy(logits, Tensor::from_vector(targets, {M}));
  if (out != nullptr) {
    out->hidden = hidden;
    out->mlm_logits = logits;
  }
  if (nsp_labels.defined()) {
    LLMKIT_CHECK(nsp_labels.dtype() == DType::I32 && nsp_labels.shape() == Shape({B}),
                 "Bert: nsp_labels ", nsp_labels.str(), " must be i32 [", B, "]");
    Tensor nsp = nsp_head(hidden);
    if (out != nullptr) out->nsp_logits = nsp;
    loss = loss + ops::cross_entropy(nsp, nsp_labels);
  }
  return loss;
}

Tensor Bert::pool(const Tensor& hidden, const Tensor& attention_mask, Pooling pooling) {
  LLMKIT_CHECK(hidden.dim() == 3, "Bert: hidden states ", hidden.str(), " must be [B, T, C]");
  if (pooling == Pooling::Cls) return hidden.select(1, 0);
  if (!attention_mask.defined()) return ops::mean(hidden, {1});
  const int64_t B = hidden.size(0), T = hidden.size(1);
  LLMKIT_CHECK(attention_mask.dtype() == DType::U8 && attention_mask.shape() == Shape({B, T}),
               "Bert: attention_mask ", attention_mask.str(), " must be u8 [", B, ", ", T, "]");
  // sum_t h[b, t] m[b, t] / sum_t m[b, t]
  Tensor m = attention_mask.contiguous().to(hidden.dtype()).reshape({B, T, 1});
  Tensor count = ops::sum(m, {1});  // [B, 1]
  for (double n : count.to_vector<double>())
    LLMKIT_CHECK(n > 0, "Bert: mean pooling over a sequence with no unmasked token");
  return ops::sum(hidden * m, {1}) / count;
}

Tensor Bert::sentence_embedding(const Tensor& ids, Pooling pooling, const Tensor& token_type_ids,
                                const Tensor& attention_mask) {
  Tensor mask = attention_mask.defined() ? attention_mask : padding_mask(ids);
  return pool(encode(ids, token_type_ids, mask), mask, pooling);
}

}  // namespace llmkit::models
