// T5 / BART encoder-decoder (t5.h). Shapes: B batch, Ts source length, Tt target length, C n_embd,
// NH heads, HS head size (d_kv), V vocabulary.
#include "llmkit/models/t5.h"
#include "llmkit/models/config_file.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

namespace llmkit::models {

using nlohmann::json;

// ---------------------------------------------------------------------------------------------
// config

void T5Config::validate() const {
  auto positive = [](int64_t v, const char* name) {
    LLMKIT_CHECK(v > 0, "config: ", name, " must be positive, got ", v);
  };
  LLMKIT_CHECK(arch == "t5" || arch == "bart", "config: arch '", arch,
               "' is not an encoder-decoder (t5, bart)");
  positive(vocab_size, "vocab_size");
  positive(n_layer, "n_layer");
  positive(n_head, "n_head");
  positive(n_embd, "n_embd");
  positive(block_size, "block_size");
  LLMKIT_CHECK(n_decoder_layer >= 0, "config: n_decoder_layer must be >= 0, got ", n_decoder_layer);
  LLMKIT_CHECK(d_kv >= 0 && ffn_hidden >= 0, "config: d_kv and ffn_hidden must be >= 0");
  LLMKIT_CHECK(d_kv > 0 || n_embd % n_head == 0, "config: n_embd ", n_embd,
               " is not divisible by n_head ", n_head, " (or set d_kv)");
  LLMKIT_CHECK(activation == "relu" || activation == "gelu" || activation == "gated-gelu",
               "config: activation '", activation, "' is not one of relu, gelu, gated-gelu");
  LLMKIT_CHECK(norm == "rmsnorm" || norm == "layernorm", "config: norm '", norm,
               "' is not one of rmsnorm, layernorm");
  LLMKIT_CHECK(pos_encoding == "relative" || pos_encoding == "learned", "config: pos_encoding '",
               pos_encoding, "' is not one of relative, learned");
  LLMKIT_CHECK(num_buckets >= 4, "config: num_buckets must be >= 4, got ", num_buckets);
  LLMKIT_CHECK(max_distance > num_buckets / 2, "config: max_distance ", max_distance,
               " must exceed num_buckets / 2 (", num_buckets / 2, ")");
  LLMKIT_CHECK(dropout >= 0 && dropout < 1, "config: dropout ", dropout, " outside [0, 1)");
  LLMKIT_CHECK(norm_eps > 0, "config: norm_eps must be positive");
  auto token = [&](int64_t id, const char* name) {
    LLMKIT_CHECK(id >= 0 && id < vocab_size, "config: ", name, " ", id,
                 " outside the vocabulary [0, ", vocab_size, ")");
  };
  token(pad_id, "pad_id");
  token(eos_id, "eos_id");
  token(decoder_start_id, "decoder_start_id");
  // Sizes before anything is allocated: C n_embd, I attention width, H FFN hidden, V vocab.
  check_dims({{"n_layer", n_layer},
              {"n_decoder_layer", n_decoder_layer},
              {"n_head", n_head},
              {"n_embd", n_embd},
              {"d_kv", d_kv},
              {"ffn_hidden", ffn_hidden},
              {"num_buckets", num_buckets},
              {"block_size", block_size}},
             vocab_size);
  const int64_t C = n_embd, I = size_mul(head_size(), n_head), H = hidden(), V = vocab_size;
  const int64_t T = block_size, layers = n_layer + decoder_layers();
  // self- and cross-attention (4 C x I each), FFN (at most 3 C x H)
  const int64_t layer = size_add(size_mul(8 * C, I), size_mul(3 * C, H));
  int64_t params = size_add(size_mul(layers, layer), size_mul(tie_embeddings ? V : 2 * V, C));
  params = size_add(params, size_mul(2 * num_buckets, n_head));
  if (pos_encoding == "learned") params = size_add(params, size_mul(2 * T, C));
  check_model_size(params, "the parameter count");
  check_model_size(size_mul(T, std::max({C, I, H, V})), "one sequence's widest activation");
  check_model_size(size_mul(size_mul(T, T), n_head), "one sequence's attention scores");
}

T5Config T5Config::from_json(const json& j) {
  LLMKIT_CHECK(j.is_object(), "config: the model config must be a JSON object");
  T5Config c;
  static const char* known[] = {"arch",
                                "vocab_size",
                                "n_layer",
                                "n_decoder_layer",
                                "n_head",
                                "n_embd",
                                "d_kv",
                                "ffn_hidden",
                                "activation",
                                "norm",
                                "pos_encoding",
                                "num_buckets",
                                "max_distance",
                                "block_size",
                                "tie_embeddings",
                                "bias",
                                "dropout",
                                "norm_eps",
                                "pad_id",
                                "eos_id",
                                "decoder_start_id"};
  for (auto& [key, v] : j.items()) {
    bool ok = false;
    for (const char* k : known) ok |= key == k;
    LLMKIT_CHECK(ok, "config: unknown field '", key, "'");
  }
  auto get = [&](const char* key, auto& field) { read_field(j, key, field); };
  get("arch", c.arch);
  if (c.arch == "bart") {  // BART's defaults; explicit fields below override them
    c.activation = "gelu";
    c.norm = "layernorm";
    c.pos_encoding = "learned";
    c.bias = true;
    c.norm_eps = 1e-5;
  }
  get("vocab_size", c.vocab_size);
  get("n_layer", c.n_layer);
  get("n_decoder_layer", c.n_decoder_layer);
  get("n_head", c.n_head);
  get("n_embd", c.n_embd);
  get("d_kv", c.d_kv);
  get("ffn_hidden", c.ffn_hidden);
  get("activation", c.activation);
  get("norm", c.norm);
  get("pos_encoding", c.pos_encoding);
  get("num_buckets", c.num_buckets);
  get("max_distance", c.max_distance);
  get("block_size", c.block_size);
  get("tie_embeddings", c.tie_embeddings);
  get("bias", c.bias);
  get("dropout", c.dropout);
  get("norm_eps", c.norm_eps);
  get("pad_id", c.pad_id);
  get("eos_id", c.eos_id);
  get("decoder_start_id", c.decoder_start_id);
  c.validate();
  return c;
}

json T5Config::to_json() const {
  return json{{"arch", arch},
              {"vocab_size", vocab_size},
              {"n_layer", n_layer},
              {"n_decoder_layer", decoder_layers()},
              {"n_head", n_head},
              {"n_embd", n_embd},
              {"d_kv", head_size()},
              {"ffn_hidden", hidden()},
              {"activation", activation},
              {"norm", norm},
              {"pos_encoding", pos_encoding},
              {"num_buckets", num_buckets},
              {"max_distance", max_distance},
              {"block_size", block_size},
              {"tie_embeddings", tie_embeddings},
              {"bias", bias},
              {"dropout", dropout},
              {"norm_eps", norm_eps},
              {"pad_id", pad_id},
              {"eos_id", eos_id},
              {"decoder_start_id", decoder_start_id}};
}

T5Config T5Config::load(const std::string& path) {
  return load_config_file<T5Config>(path);
}

// ---------------------------------------------------------------------------------------------
// relative positions

int32_t relative_position_bucket(int64_t relative_position, bool bidirectional, int64_t num_buckets,
                                 int64_t max_distance) {
  int64_t bucket = 0, n = relative_position;
  if (bidirectional) {
    num_buckets /= 2;
    if (n > 0) bucket += num_buckets;
    n = std::abs(n);
  } else {
    n = -std::min<int64_t>(n, 0);  // only the past: keys before the query
  }
  const int64_t max_exact = num_buckets / 2;
  if (n < max_exact) return static_cast<int32_t>(bucket + n);
  // Buckets max_exact ... num_buckets - 1 cover distances up to max_distance logarithmically.
  const float ratio = std::log(static_cast<float>(n) / static_cast<float>(max_exact)) /
                      static_cast<float>(std::log(static_cast<double>(max_distance) / max_exact));
  const int64_t large =
      max_exact + static_cast<int64_t>(ratio * static_cast<float>(num_buckets - max_exact));
  return static_cast<int32_t>(bucket + std::min(large, num_buckets - 1));
}

// ---------------------------------------------------------------------------------------------
// attention

T5Attention::T5Attention(const T5Config& c, bool has_relative_bias, DType dt)
    : n_head_(c.n_head),
      head_size_(c.head_size()),
      num_buckets_(c.num_buckets),
      max_distance_(c.max_distance),
      scale_(c.arch == "t5" ? 1.0 : 0.0) {
  const int64_t inner = n_head_ * head_size_;
  q = register_module("q", std::make_shared<nn::Linear>(c.n_embd, inner, c.bias, dt));
  k = register_module("k", std::make_shared<nn::Linear>(c.n_embd, inner, c.bias, dt));
  v = register_module("v", std::make_shared<nn::Linear>(c.n_embd, inner, c.bias, dt));
  o = register_module("o", std::make_shared<nn::Linear>(inner, c.n_embd, c.bias, dt));
  if (has_relative_bias)
    relative_attention_bias = register_module(
        "relative_attention_bias", std::make_shared<nn::Embedding>(c.num_buckets, c.n_head, dt));
}

Tensor T5Attention::heads(const nn::Linear& proj, const Tensor& x) const {
  const int64_t B = x.size(0), T = x.size(1);
  return proj.forward(x).reshape({B, T, n_head_, head_size_}).transpose(1, 2);
}

Tensor T5Attention::position_bias(int64_t Tq, int64_t Tk, int64_t pos0, bool bidirectional) const {
  LLMKIT_CHECK(relative_attention_bias != nullptr, "T5: position_bias on a layer without a table");
  std::vector<int32_t> buckets(Tq * Tk);
  for (int64_t i = 0; i < Tq; ++i)
    for (int64_t j = 0; j < Tk; ++j)
      buckets[i * Tk + j] =
          relative_position_bucket(j - (pos0 + i), bidirectional, num_buckets_, max_distance_);
  // table [num_buckets, NH] -> [Tq, Tk, NH] -> [NH, Tq, Tk]
  return relative_attention_bias->forward(Tensor::from_vector(buckets, {Tq, Tk}))
      .permute({2, 0, 1})
      .contiguous();
}

Tensor T5Attention::attend(const Tensor& qh, const Tensor& kh, const Tensor& vh, const Tensor& bias,
                           const Tensor& key_mask, bool causal) {
  const int64_t B = qh.size(0), T = qh.size(2);
  ops::AttentionOptions opt;
  opt.causal = causal;
  opt.key_mask = key_mask;
  opt.bias = bias;
  opt.scale = scale_;
  Tensor y = ops::scaled_dot_product_attention(qh, kh, vh, opt);  // [B, NH, T, HS]
  return o->forward(y.transpose(1, 2).reshape({B, T, n_head_ * head_size_}));
}

Tensor T5Attention::self_attention(const Tensor& x, const Tensor& bias, const Tensor& key_mask,
                                   bool causal, nn::KVCache* cache) {
  Tensor qh = heads(*q, x), kh = heads(*k, x), vh = heads(*v, x);
  if (cache != nullptr) {
    const int64_t pos0 = cache->len, T = x.size(1), cap = cache->k.size(2);
    LLMKIT_CHECK(pos0 + T <= cap, "T5: decoder cache of ", cap, " positions is full (", pos0,
                 " used, ", T, " more asked)");
    cache->k.slice(2, pos0, pos0 + T).copy_(kh);
    cache->v.slice(2, pos0, pos0 + T).copy_(vh);
    cache->len = pos0 + T;
    kh = cache->k.slice(2, 0, pos0 + T);
    vh = cache->v.slice(2, 0, pos0 + T);
  }
  return attend(qh, kh, vh, bias, key_mask, causal);
}

Tensor T5Attention::cross_attention(const Tensor& x, const Tensor& kh, const Tensor& vh,
                                    const Tensor& key_mask) {
  return attend(heads(*q, x), kh, vh, Tensor(), key_mask, false);
}

// ---------------------------------------------------------------------------------------------
// feed-forward, blocks, stacks

namespace {

// "layer.{i}" of a block: a named sub-module plus its "layer_norm", as Hugging Face nests them.
class T5SubLayer : public nn::Module {
 public:
  template <typename M>
  std::shared_ptr<M> add(const std::string& name, std::shared_ptr<M> m) {
    return register_module(name, std::move(m));
  }
};

std::shared_ptr<nn::Norm> make_norm(const T5Config& c, DType dt) {
  return std::make_shared<nn::Norm>(nn::parse_norm(c.norm), c.n_embd, c.bias, c.norm_eps, dt);
}

}  // namespace

T5DenseAct::T5DenseAct(const T5Config& c, Generator* gen, DType dt) : act_(c.activation) {
  const int64_t C = c.n_embd, H = c.hidden();
  if (act_ == "gated-gelu") {
    wi_0 = register_module("wi_0", std::make_shared<nn::Linear>(C, H, c.bias, dt));
    wi_1 = register_module("wi_1", std::make_shared<nn::Linear>(C, H, c.bias, dt));
  } else {
    wi = register_module("wi", std::make_shared<nn::Linear>(C, H, c.bias, dt));
  }
  wo = register_module("wo", std::make_shared<nn::Linear>(H, C, c.bias, dt));
  dropout_ = register_module("dropout", std::make_shared<nn::Dropout>(c.dropout, gen));
}

Tensor T5DenseAct::forward(const Tensor& x) const {
  Tensor h;
  if (act_ == "gated-gelu")  // T5 v1.1: gelu_new, the tanh approximation
    h = ops::gelu(wi_0->forward(x), ops::GeluApprox::Tanh) * wi_1->forward(x);
  else if (act_ == "gelu")  // BART: exact GELU
    h = ops::gelu(wi->forward(x), ops::GeluApprox::Erf);
  else
    h = ops::relu(wi->forward(x));
  return wo->forward(dropout_->forward(h));
}

T5Block::T5Block(const T5Config& c, bool is_decoder, bool has_relative_bias, Generator* gen,
                 DType dt)
    : is_decoder_(is_decoder) {
  auto l0 = register_module("layer.0", std::make_shared<T5SubLayer>());
  self_attn = l0->add("SelfAttention", std::make_shared<T5Attention>(c, has_relative_bias, dt));
  self_norm = l0->add("layer_norm", make_norm(c, dt));
  int ff_index = 1;
  if (is_decoder) {
    auto l1 = register_module("layer.1", std::make_shared<T5SubLayer>());
    cross_attn = l1->add("EncDecAttention", std::make_shared<T5Attention>(c, false, dt));
    cross_norm = l1->add("layer_norm", make_norm(c, dt));
    ff_index = 2;
  }
  auto lf = register_module("layer." + std::to_string(ff_index), std::make_shared<T5SubLayer>());
  ff = lf->add("DenseReluDense", std::make_shared<T5DenseAct>(c, gen, dt));
  ff_norm = lf->add("layer_norm", make_norm(c, dt));
  dropout_ = register_module("dropout", std::make_shared<nn::Dropout>(c.dropout, gen));
}

Tensor T5Block::forward(const Tensor& x, const Tensor& bias, const Tensor& self_mask,
                        nn::KVCache* cache, const Tensor& cross_k, const Tensor& cross_v,
                        const Tensor& cross_mask) {
  Tensor h = x + dropout_->forward(self_attn->self_attention(self_norm->forward(x), bias, self_mask,
                                                             is_decoder_, cache));
  if (is_decoder_)
    h = h + dropout_->forward(
                cross_attn->cross_attention(cross_norm->forward(h), cross_k, cross_v, cross_mask));
  return h + dropout_->forward(ff->forward(ff_norm->forward(h)));
}

T5Stack::T5Stack(const T5Config& c, bool is_decoder, Generator* gen, DType dt) {
  if (c.pos_encoding == "learned")
    embed_positions = register_module("embed_positions",
                                      std::make_shared<nn::Embedding>(c.block_size, c.n_embd, dt));
  const int64_t n = is_decoder ? c.decoder_layers() : c.n_layer;
  const bool relative = c.pos_encoding == "relative";
  for (int64_t i = 0; i < n; ++i)
    block.push_back(
        register_module("block." + std::to_string(i),
                        std::make_shared<T5Block>(c, is_decoder, relative && i == 0, gen, dt)));
  final_layer_norm = register_module("final_layer_norm", make_norm(c, dt));
}

// ---------------------------------------------------------------------------------------------
// the model

T5::T5(const T5Config& config, uint64_t seed, DType dt) : cfg_(config), gen_(seed) {
  cfg_.validate();
  shared =
      register_module("shared", std::make_shared<nn::Embedding>(cfg_.vocab_size, cfg_.n_embd, dt));
  encoder = register_module("encoder", std::make_shared<T5Stack>(cfg_, false, &gen_, dt));
  decoder = register_module("decoder", std::make_shared<T5Stack>(cfg_, true, &gen_, dt));
  if (!cfg_.tie_embeddings)
    lm_head = register_module(
        "lm_head", std::make_shared<nn::Linear>(cfg_.n_embd, cfg_.vocab_size, false, dt));
  drop_ = register_module("drop", std::make_shared<nn::Dropout>(cfg_.dropout, &gen_));
  init_weights(seed);
}

namespace {
bool ends_with(const std::string& s, const char* suffix) {
  const std::string t(suffix);
  return s.size() >= t.size() && s.compare(s.size() - t.size(), t.size(), t) == 0;
}
}  // namespace

void T5::init_weights(uint64_t seed) {
  NoGradGuard ng;
  Generator g(seed);
  const double C = static_cast<double>(cfg_.n_embd), HS = static_cast<double>(cfg_.head_size()),
               NH = static_cast<double>(cfg_.n_head), H = static_cast<double>(cfg_.hidden());
  const bool t5 = cfg_.arch == "t5";
  for (auto& [name, p] : named_parameters()) {
    if (ends_with(name, ".bias")) {
      p.zero_();
    } else if (name.find("layer_norm") != std::string::npos) {
      p.fill_(1.0);
    } else if (!t5) {  // BART: N(0, 0.02) everywhere
      g.normal_(p, 0.0, 0.02);
    } else {  // T5 (Mesh TensorFlow): unit-variance activations at every layer, no 1/sqrt(HS)
      double std = 1.0;
      if (ends_with(name, ".q.weight"))
        std = 1.0 / std::sqrt(C * HS);  // the attention scale folded into q
      else if (ends_with(name, ".k.weight") || ends_with(name, ".v.weight") ||
               name.find(".wi") != std::string::npos ||
               name.find("relative_attention_bias") != std::string::npos ||
               name == "lm_head.weight")
        std = 1.0 / std::sqrt(C);
      else if (ends_with(name, ".o.weight"))
        std = 1.0 / std::sqrt(NH * HS);
      else if (ends_with(name, ".wo.weight"))
        std = 1.0 / std::sqrt(H);
      else if (name.find("embed_positions") != std::string::npos)
        std = 0.02;
      g.normal_(p, 0.0, std);
    }
  }
}

Tensor T5::source_mask(const Tensor& src) const {
  const std::vector<int32_t> ids = src.to_vector<int32_t>();
  std::vector<uint8_t> m(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) m[i] = ids[i] != cfg_.pad_id;
  return Tensor::from_vector(m, src.shape());
}

Tensor T5::shift_right(const Tensor& labels) const {
  LLMKIT_CHECK(labels.dim() == 2 && labels.dtype() == DType::I32, "T5: labels ", labels.str(),
               " must be i32 [B, T]");
  const int64_t B = labels.size(0), T = labels.size(1);
  const std::vector<int32_t> l = labels.to_vector<int32_t>();
  std::vector<int32_t> d(l.size());
  for (int64_t b = 0; b < B; ++b) {
    d[b * T] = static_cast<int32_t>(cfg_.decoder_start_id);
    for (int64_t t = 1; t < T; ++t) {
      const int32_t prev = l[b * T + t - 1];
      d[b * T + t] = prev == -100 ? static_cast<int32_t>(cfg_.pad_id) : prev;
    }
  }
  return Tensor::from_vector(d, {B, T});
}

Tensor T5::embed(const T5Stack& stack, const Tensor& ids, int64_t pos0) {
  const int64_t T = ids.size(1);
  Tensor x = shared->forward(ids);  // [B, T, C]
  if (stack.embed_positions) {
    std::vector<int32_t> pos(T);
    for (int64_t t = 0; t < T; ++t) pos[t] = static_cast<int32_t>(pos0 + t);
    x = x + stack.embed_positions->forward(Tensor::from_vector(pos, {T}));
  }
  return drop_->forward(x);
}

Tensor T5::logits(const Tensor& y) {
  if (lm_head) return lm_head->forward(y);
  // T5 rescales before the tied projection: the shared table has unit-variance rows.
  if (cfg_.arch == "t5")
    return ops::linear(y * (1.0 / std::sqrt(double(cfg_.n_embd))), shared->weight);
  return ops::linear(y, shared->weight);
}

namespace {
void check_ids(const Tensor& ids, int64_t pos0, const T5Config& c, const char* what) {
  LLMKIT_CHECK(ids.dim() == 2 && ids.dtype() == DType::I32 && ids.size(1) > 0, "T5: ", what, " ",
               ids.str(), " must be i32 [B, T] with T > 0");
  LLMKIT_CHECK(pos0 + ids.size(1) <= c.block_size, "T5: ", what, " of ", pos0 + ids.size(1),
               " positions exceeds block_size ", c.block_size);
}
}  // namespace

Tensor T5::encode(const Tensor& src) {
  check_ids(src, 0, cfg_, "source");
  const int64_t T = src.size(1);
  const Tensor mask = source_mask(src);
  Tensor x = embed(*encoder, src, 0);
  Tensor bias;
  if (cfg_.pos_encoding == "relative")
    bias = encoder->block[0]->self_attn->position_bias(T, T, 0, true);
  for (auto& b : encoder->block) x = b->forward(x, bias, mask, nullptr, {}, {}, {});
  return drop_->forward(encoder->final_layer_norm->forward(x));
}

Tensor T5::decode(const Tensor& dec, const Tensor& enc, const Tensor& src_mask) {
  check_ids(dec, 0, cfg_, "decoder input");
  LLMKIT_CHECK(enc.dim() == 3 && enc.size(0) == dec.size(0) && enc.size(2) == cfg_.n_embd,
               "T5: encoder output ", enc.str(), " does not match decoder input ", dec.str());
  const int64_t T = dec.size(1);
  Tensor y = embed(*decoder, dec, 0);
  Tensor bias;
  if (cfg_.pos_encoding == "relative")
    bias = decoder->block[0]->self_attn->position_bias(T, T, 0, false);
  for (auto& b : decoder->block) {
    Tensor ck = b->cross_attn->heads(*b->cross_attn->k, enc);
    Tensor cv = b->cross_attn->heads(*b->cross_attn->v, enc);
    y = b->forward(y, bias, Tensor(), nullptr, ck, cv, src_mask);
  }
  return logits(drop_->forward(decoder->final_layer_norm->forward(y)));
}

Tensor T5::forward(const Tensor& src, const Tensor& dec) {
  LLMKIT_CHECK(src.dim() == 2 && dec.dim() == 2 && src.size(0) == dec.size(0), "T5: source ",
               src.str(), " and decoder input ", dec.str(), " need the same batch size");
  return decode(dec, encode(src), source_mask(src));
}

Tensor T5::loss(const Tensor& src, const Tensor& labels) {
  return ops::cross_entropy(forward(src, shift_right(labels)), labels);
}

T5DecodeState T5::start_decoding(const Tensor& enc, const Tensor& src_mask, int64_t capacity) {
  const int64_t B = enc.size(0), cap = std::min(capacity, cfg_.block_size);
  const DType dt = shared->weight.dtype();
  T5DecodeState st;
  st.src_mask = src_mask;
  for (auto& b : decoder->block) {
    st.self.push_back({Tensor::zeros({B, cfg_.n_head, cap, cfg_.head_size()}, dt),
                       Tensor::zeros({B, cfg_.n_head, cap, cfg_.head_size()}, dt), 0});
    st.cross_k.push_back(b->cross_attn->heads(*b->cross_attn->k, enc).contiguous());
    st.cross_v.push_back(b->cross_attn->heads(*b->cross_attn->v, enc).contiguous());
  }
  return st;
}

Tensor T5::decode_step(const Tensor& dec, T5DecodeState& st) {
  const int64_t pos0 = st.len();
  check_ids(dec, pos0, cfg_, "decoder input");
  const int64_t T = dec.size(1);
  Tensor y = embed(*decoder, dec, pos0);
  Tensor bias;
  if (cfg_.pos_encoding == "relative")
    bias = decoder->block[0]->self_attn->position_bias(T, pos0 + T, pos0, false);
  for (size_t i = 0; i < decoder->block.size(); ++i)
    y = decoder->block[i]->forward(y, bias, Tensor(), &st.self[i], st.cross_k[i], st.cross_v[i],
                                   st.src_mask);
  return logits(drop_->forward(decoder->final_layer_norm->forward(y)));
}

std::vector<std::vector<int32_t>> T5::generate(const Tensor& src, const T5GenerateOptions& opt) {
  NoGradGuard ng;
  const bool was_training = is_training();
  eval();
  const int64_t B = src.size(0), V = cfg_.vocab_size;
  const int64_t max_new = std::min(opt.max_new_tokens, cfg_.block_size);
  const Tensor enc = encode(src), mask = source_mask(src);
  std::vector<std::vector<int32_t>> out(B);
  std::vector<bool> done(B, false);
  std::vector<int32_t> seq(B, static_cast<int32_t>(cfg_.decoder_start_id));  // [B, t + 1]
  T5DecodeState st;
  if (opt.use_cache) st = start_decoding(enc, mask, max_new);
  std::vector<int32_t> next(B);
  for (int64_t t = 0; t < max_new; ++t) {
    Tensor lg;
    if (opt.use_cache) {
      std::vector<int32_t> last(B);
      for (int64_t b = 0; b < B; ++b) last[b] = seq[b * (t + 1) + t];
      lg = decode_step(Tensor::from_vector(last, {B, 1}), st);  // [B, 1, V]
    } else {
      lg = decode(Tensor::from_vector(seq, {B, t + 1}), enc, mask).slice(1, t, t + 1);
    }
    const std::vector<float> v = lg.contiguous().to(DType::F32).to_vector<float>();  // [B * V]
    bool all_done = true;
    for (int64_t b = 0; b < B; ++b) {
      next[b] = static_cast<int32_t>(cfg_.pad_id);
      if (done[b]) continue;
      std::span<const float> row(v.data() + b * V, static_cast<size_t>(V));
      const int32_t id =
          opt.pick ? opt.pick(row, b)
                   : static_cast<int32_t>(std::max_element(row.begin(), row.end()) - row.begin());
      if (id == cfg_.eos_id) {
        done[b] = true;
      } else {
        out[b].push_back(id);
        next[b] = id;
        all_done = false;
      }
    }
    if (all_done) break;
    std::vector<int32_t> grown(B * (t + 2));
    for (int64_t b = 0; b < B; ++b) {
      std::copy(seq.begin() + b * (t + 1), seq.begin() + (b + 1) * (t + 1),
                grown.begin() + b * (t + 2));
      grown[b * (t + 2) + t + 1] = next[b];
    }
    seq.swap(grown);
  }
  train(was_training);
  return out;
}

}  // namespace llmkit::models
