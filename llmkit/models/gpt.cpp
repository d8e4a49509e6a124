#include "llmkit/models/gpt.h"
#include "llmkit/models/config_file.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unordered_set>

namespace llmkit::models {

using nlohmann::json;

int64_t GPTConfig::hidden() const {
  if (ffn_hidden > 0) return ffn_hidden;
  if (activation == "swiglu") return (8 * n_embd / 3 + 63) / 64 * 64;
  return 4 * n_embd;
}

void GPTConfig::validate() const {
  auto positive = [](int64_t v, const char* name) {
    LLMKIT_CHECK(v > 0, "config: ", name, " must be positive, got ", v);
  };
  positive(n_layer, "n_layer");
  positive(n_head, "n_head");
  positive(n_embd, "n_embd");
  positive(block_size, "block_size");
  positive(vocab_size, "vocab_size");
  LLMKIT_CHECK(n_embd % n_head == 0, "config: n_embd ", n_embd, " is not divisible by n_head ",
               n_head);
  LLMKIT_CHECK(n_kv_head >= 0 && n_head % kv_heads() == 0, "config: n_head ", n_head,
               " is not a multiple of n_kv_head ", n_kv_head);
  LLMKIT_CHECK(dropout >= 0 && dropout < 1, "config: dropout ", dropout, " outside [0, 1)");
  nn::parse_pos_encoding(pos_encoding);
  nn::parse_norm(norm);
  nn::parse_activation(activation);
  LLMKIT_CHECK(pos_encoding != "rope" || (n_embd / n_head) % 2 == 0,
               "config: rope needs an even head size, got ", n_embd / n_head);
  if (pos_encoding == "rope") ops::rope_inv_freq(n_embd / n_head, rope_theta, rope_scaling);
  LLMKIT_CHECK(!(attention_bias || qkv_bias) || llama_layout(), "config: attention_bias and ",
               "qkv_bias need arch llama (arch gpt has 'bias')");
  LLMKIT_CHECK(ffn_hidden >= 0, "config: ffn_hidden must be >= 0 (0: the default), got ",
               ffn_hidden);
  // Sizes before anything is allocated: C n_embd, H FFN hidden, V vocab, T block_size.
  check_dims({{"n_layer", n_layer},
              {"n_head", n_head},
              {"n_embd", n_embd},
              {"block_size", block_size},
              {"ffn_hidden", ffn_hidden}},
             vocab_size);
  const int64_t C = n_embd, H = hidden(), V = vocab_size, T = block_size;
  const int64_t kv = kv_heads() * (C / n_head);
  const int64_t attn = size_add(size_mul(C, C + 2 * kv), size_mul(C, C));  // c_attn, c_proj
  const int64_t mlp = size_mul(size_mul(C, H), activation == "swiglu" ? 3 : 2);
  int64_t params = size_add(size_mul(n_layer, size_add(attn, mlp)), size_mul(V, C));
  if (!tie_embeddings) params = size_add(params, size_mul(V, C));
  if (pos_encoding == "learned") params = size_add(params, size_mul(T, C));
  check_model_size(params, "the parameter count");
  check_model_size(size_mul(T, std::max({C, H, V})), "one sequence's widest activation");
  check_model_size(size_mul(size_mul(T, T), n_head), "one sequence's attention scores");
}

GPTConfig GPTConfig::from_json(const json& j) {
  LLMKIT_CHECK(j.is_object(), "config: the model config must be a JSON object");
  GPTConfig c;
  auto get = [&](const char* key, auto& field) { read_field(j, key, field); };
  get("arch", c.arch);
  get("n_layer", c.n_layer);
  get("n_head", c.n_head);
  get("n_kv_head", c.n_kv_head);
  get("n_embd", c.n_embd);
  get("block_size", c.block_size);
  get("vocab_size", c.vocab_size);
  get("ffn_hidden", c.ffn_hidden);
  get("pos_encoding", c.pos_encoding);
  get("norm", c.norm);
  get("activation", c.activation);
  get("bias", c.bias);
  get("tie_embeddings", c.tie_embeddings);
  get("post_ln", c.post_ln);
  get("dropout", c.dropout);
  get("norm_eps", c.norm_eps);
  get("rope_theta", c.rope_theta);
  get("attention_bias", c.attention_bias);
  get("qkv_bias", c.qkv_bias);
  get("bos_token_id", c.bos_token_id);
  get("eos_token_ids", c.eos_token_ids);
  if (auto it = j.find("rope_scaling"); it != j.end() && !it->is_null()) {
    LLMKIT_CHECK(it->is_object(), "config: field 'rope_scaling' must be an object");
    read_field(*it, "type", c.rope_scaling.type);
    read_field(*it, "factor", c.rope_scaling.factor);
    read_field(*it, "low_freq_factor", c.rope_scaling.low_freq_factor);
    read_field(*it, "high_freq_factor", c.rope_scaling.high_freq_factor);
    read_field(*it, "original_max_position_embeddings",
               c.rope_scaling.original_max_position_embeddings);
  }
  static const char* known[] = {
      "arch",           "n_layer",    "n_head",       "n_kv_head",    "n_embd",     "block_size",
      "vocab_size",     "ffn_hidden", "pos_encoding", "norm",         "activation", "bias",
      "tie_embeddings", "post_ln",    "dropout",      "norm_eps",     "rope_theta", "rope_scaling",
      "attention_bias", "qkv_bias",   "bos_token_id", "eos_token_ids"};
  for (auto& [key, v] : j.items()) {
    bool ok = false;
    for (const char* k : known) ok |= key == k;
    LLMKIT_CHECK(ok, "config: unknown field '", key, "'");
  }
  LLMKIT_CHECK(c.arch == "gpt" || c.arch == "llama", "config: arch '", c.arch,
               "' is not a decoder (gpt, llama)");
  c.validate();
  return c;
}

json GPTConfig::to_json() const {
  json j{{"arch", arch},
         {"n_layer", n_layer},
         {"n_head", n_head},
         {"n_kv_head", kv_heads()},
         {"n_embd", n_embd},
         {"block_size", block_size},
         {"vocab_size", vocab_size},
         {"ffn_hidden", hidden()},
         {"pos_encoding", pos_encoding},
         {"norm", norm},
         {"activation", activation},
         {"bias", bias},
         {"tie_embeddings", tie_embeddings},
         {"post_ln", post_ln},
         {"dropout", dropout},
         {"norm_eps", norm_eps},
         {"rope_theta", rope_theta}};
  if (!rope_scaling.type.empty() && rope_scaling.type != "default") {
    json rs{{"type", rope_scaling.type}, {"factor", rope_scaling.factor}};
    if (rope_scaling.type == "llama3") {
      rs["low_freq_factor"] = rope_scaling.low_freq_factor;
      rs["high_freq_factor"] = rope_scaling.high_freq_factor;
      rs["original_max_position_embeddings"] = rope_scaling.original_max_position_embeddings;
    }
    j["rope_scaling"] = rs;
  }
  if (attention_bias) j["attention_bias"] = true;
  if (qkv_bias) j["qkv_bias"] = true;
  if (bos_token_id >= 0) j["bos_token_id"] = bos_token_id;
  if (!eos_token_ids.empty()) j["eos_token_ids"] = eos_token_ids;
  return j;
}

GPTConfig GPTConfig::load(const std::string& path) {
  return load_config_file<GPTConfig>(path);
}

Block::Block(const GPTConfig& c, Generator* gen, DType dt) : post_ln_(c.post_ln) {
  const nn::NormKind nk = nn::parse_norm(c.norm);
  const bool hf = c.llama_layout();
  ln_1 = register_module(hf ? "input_layernorm" : "ln_1",
                         std::make_shared<nn::Norm>(nk, c.n_embd, c.bias, c.norm_eps, dt));
  nn::AttentionConfig ac;
  ac.n_embd = c.n_embd;
  ac.n_head = c.n_head;
  ac.n_kv_head = c.kv_heads();
  ac.bias = c.bias;
  ac.causal = true;
  ac.pos = nn::parse_pos_encoding(c.pos_encoding);
  ac.rope_theta = c.rope_theta;
  ac.rope_scaling = c.rope_scaling;
  ac.dropout = c.dropout;
  ac.split_qkv = hf;
  ac.bias = c.bias || c.attention_bias;
  ac.qkv_bias = c.qkv_bias;
  attn = register_module(hf ? "self_attn" : "attn",
                         std::make_shared<nn::MultiHeadAttention>(ac, gen, dt));
  ln_2 = register_module(hf ? "post_attention_layernorm" : "ln_2",
                         std::make_shared<nn::Norm>(nk, c.n_embd, c.bias, c.norm_eps, dt));
  mlp = register_module("mlp", std::make_shared<nn::FeedForward>(c.n_embd, c.hidden(),
                                                                 nn::parse_activation(c.activation),
                                                                 c.bias, c.dropout, gen, dt, hf));
}

Tensor Block::forward(const Tensor& x, nn::KVCache* cache, const Tensor& key_mask,
                      const nn::PackedRows* packed) {
  if (post_ln_) {
    Tensor y = ln_1->forward(x + attn->forward(x, cache, key_mask, packed));
    return ln_2->forward(y + mlp->forward(y));
  }
  Tensor y = x + attn->forward(ln_1->forward(x), cache, key_mask, packed);
  return y + mlp->forward(ln_2->forward(y));
}

GPT::GPT(const GPTConfig& config, uint64_t seed, DType dt, bool init) : cfg_(config), gen_(seed) {
  cfg_.validate();
  const bool hf = cfg_.llama_layout();
  wte = register_module(hf ? "model.embed_tokens" : "wte",
                        std::make_shared<nn::Embedding>(cfg_.vocab_size, cfg_.n_embd, dt));
  const auto pos = nn::parse_pos_encoding(cfg_.pos_encoding);
  if (pos == nn::PosEncoding::Learned)
    wpe = register_module("wpe", std::make_shared<nn::Embedding>(cfg_.block_size, cfg_.n_embd, dt));
  if (pos == nn::PosEncoding::Sinusoidal)
    sinusoidal_ = nn::sinusoidal_table(cfg_.block_size, cfg_.n_embd, dt);
  drop_ = register_module("drop", std::make_shared<nn::Dropout>(cfg_.dropout, &gen_));
  for (int64_t i = 0; i < cfg_.n_layer; ++i)
    h.push_back(register_module((hf ? "model.layers." : "h.") + std::to_string(i),
                                std::make_shared<Block>(cfg_, &gen_, dt)));
  ln_f = register_module(hf ? "model.norm" : "ln_f",
                         std::make_shared<nn::Norm>(nn::parse_norm(cfg_.norm), cfg_.n_embd,
                                                    cfg_.bias, cfg_.norm_eps, dt));
  if (!cfg_.tie_embeddings)
    lm_head = register_module(
        "lm_head", std::make_shared<nn::Linear>(cfg_.n_embd, cfg_.vocab_size, false, dt));
  if (init) init_weights(seed);
}

void GPT::init_weights(uint64_t seed) {
  NoGradGuard ng;
  Generator g(seed);
  const double resid_std = 0.02 / std::sqrt(2.0 * cfg_.n_layer);
  for (auto& [name, p] : named_parameters()) {
    const bool is_bias = name.size() > 5 && name.compare(name.size() - 5, 5, ".bias") == 0;
    const bool is_norm = name.find("ln_") != std::string::npos ||
                         name.find("layernorm") != std::string::npos ||
                         name.rfind("model.norm.", 0) == 0;
    if (is_bias)
      p.zero_();
    else if (is_norm)
      p.fill_(1.0);
    else if (name.find("c_proj.weight") != std::string::npos ||
             name.find("o_proj.weight") != std::string::npos ||
             name.find("down_proj.weight") != std::string::npos)
      g.normal_(p, 0.0, resid_std);
    else
      g.normal_(p, 0.0, 0.02);
  }
}

Tensor GPT::forward(const Tensor& ids, std::vector<nn::KVCache>* caches, const Tensor& key_mask) {
  return lm_logits(hidden_states(ids, caches, key_mask));
}

namespace {

constexpr int32_t kPaddingSegment = -1;  // forward_packed's segment id of padding tokens

// The position of every token of packed rows within its example: 0 where an example starts, one
// more at each following token of it; padding (segment -1) at 0. An Error when an example's
// tokens are not contiguous (its id reappears after another example).
Tensor packed_positions(const Tensor& segments) {
  const int64_t B = segments.size(0), T = segments.size(1);
  const std::vector<int32_t> seg = segments.to_vector<int32_t>();
  std::vector<int32_t> pos(B * T, 0);
  for (int64_t b = 0; b < B; ++b) {
    std::unordered_set<int32_t> started;
    for (int64_t t = 0; t < T; ++t) {
      const int64_t i = b * T + t;
      if (seg[i] == kPaddingSegment) continue;
      if (t > 0 && seg[i - 1] == seg[i]) {
        pos[i] = pos[i - 1] + 1;
        continue;
      }
      LLMKIT_CHECK(started.insert(seg[i]).second, "GPT::forward_packed: segment ", seg[i],
                   " of row ", b, " resumes at position ", t,
                   " after another segment (an example's tokens must be contiguous)");
    }
  }
  return Tensor::from_vector(pos, {B, T});
}

}  // namespace

Tensor GPT::forward_packed(const Tensor& ids, const Tensor& segments) {
  LLMKIT_CHECK(ids.dim() == 2 && segments.dtype() == DType::I32 && segments.shape() == ids.shape(),
               "GPT::forward_packed: segments ", segments.str(),
               " must be i32 of the shape of ids ", ids.str());
  const nn::PackedRows packed{segments, packed_positions(segments)};
  return lm_logits(hidden_states(ids, nullptr, Tensor(), &packed));
}

Tensor GPT::forward_rows(const Tensor& ids, std::vector<nn::KVCache>& caches,
                         std::span<const int64_t> pad) {
  LLMKIT_CHECK(ids.dim() == 2 && ids.dtype() == DType::I32, "GPT::forward_rows: ids ", ids.str(),
               " must be i32 [B, T]");
  const int64_t B = ids.size(0), T = ids.size(1);
  LLMKIT_CHECK(!caches.empty() && static_cast<int64_t>(pad.size()) == B,
               "GPT::forward_rows: ", pad.size(), " paddings for ", B, " rows (and caches needed)");
  const int64_t pos0 = caches[0].len;
  std::vector<int32_t> pos(B * T), seg;
  std::vector<uint8_t> mask;
  bool padded = false;
  for (int64_t b = 0; b < B; ++b) {
    LLMKIT_CHECK(pad[b] >= 0 && (pos0 == 0 ? pad[b] < T : pad[b] <= pos0),
                 "GPT::forward_rows: row ", b, " has ", pad[b], " padding tokens but ",
                 pos0 == 0 ? "the first call holds " : "the caches hold ", pos0 == 0 ? T : pos0,
                 " columns (each row needs a real token and padding comes first)");
    padded = padded || pad[b] > 0;
    for (int64_t t = 0; t < T; ++t)
      pos[b * T + t] = static_cast<int32_t>(std::max<int64_t>(0, pos0 + t - pad[b]));
  }
  nn::PackedRows rows{Tensor(), Tensor::from_vector(pos, {B, T})};
  Tensor key_mask;
  if (padded && pos0 == 0) {
    // The first call: padding queries see only padding (segment -1), real ones only their row.
    seg.resize(B * T);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 0; t < T; ++t) seg[b * T + t] = t < pad[b] ? -1 : 0;
    rows.segments = Tensor::from_vector(seg, {B, T});
  } else if (padded) {
    // Later calls: the new tokens are real and see every real column of their row.
    const int64_t Tk = pos0 + T;
    mask.assign(B * Tk, 1);
    for (int64_t b = 0; b < B; ++b) std::fill_n(mask.begin() + b * Tk, pad[b], uint8_t{0});
    key_mask = Tensor::from_vector(mask, {B, Tk});
  }
  const Tensor h = hidden_states(ids, &caches, key_mask, &rows);
  return lm_logits(h.slice(1, T - 1, T)).reshape({B, -1});
}

Tensor GPT::lm_logits(const Tensor& hidden) const {
  // lm_head through its forward: a LoRA adapter or a quantised base on it takes part.
  return lm_head ? lm_head->forward(hidden) : ops::linear(hidden, wte->weight);
}

Tensor GPT::hidden(const Tensor& ids, const Tensor& key_mask) {
  return hidden_states(ids, nullptr, key_mask);
}

Tensor GPT::hidden_states(const Tensor& ids, std::vector<nn::KVCache>* caches,
                          const Tensor& key_mask, const nn::PackedRows* packed) {
  LLMKIT_CHECK(ids.dim() == 2 && ids.dtype() == DType::I32, "GPT: ids ", ids.str(),
               " must be i32 [B, T]");
  const int64_t T = ids.size(1);
  const int64_t pos0 = caches != nullptr && !caches->empty() ? (*caches)[0].len : 0;
  LLMKIT_CHECK(pos0 + T <= cfg_.block_size, "GPT: ", pos0 + T,
               " positions exceed the context window (block_size ", cfg_.block_size, ")");
  Tensor x = wte->forward(ids);    // [B, T, C]
  if (packed != nullptr && wpe) {  // positions [B, T] restart in every example
    x = x + wpe->forward(packed->positions);
  } else if (packed != nullptr && sinusoidal_.defined()) {
    x = x + ops::embedding(packed->positions, sinusoidal_);
  } else if (wpe) {
    std::vector<int32_t> pos(T);
    for (int64_t t = 0; t < T; ++t) pos[t] = static_cast<int32_t>(pos0 + t);
    x = x + wpe->forward(Tensor::from_vector(pos, {T}));
  } else if (sinusoidal_.defined()) {
    x = x + sinusoidal_.slice(0, pos0, pos0 + T);
  }
  x = drop_->forward(x);
  for (size_t i = 0; i < h.size(); ++i)
    x = h[i]->forward(x, caches != nullptr ? &(*caches)[i] : nullptr, key_mask, packed);
  return ln_f->forward(x);
}

Tensor GPT::loss(const Tensor& ids, const Tensor& targets) {
  return ops::cross_entropy(forward(ids), targets);
}

std::vector<nn::KVCache> GPT::make_caches(int64_t batch, int64_t capacity) const {
  std::vector<nn::KVCache> c;
  for (const auto& b : h)
    c.push_back(b->attn->make_cache(batch, std::min(capacity, cfg_.block_size)));
  return c;
}

std::map<std::string, Tensor> upgrade_gpt_state(const GPTConfig& c,
                                                std::map<std::string, Tensor> state) {
  if (!c.llama_layout() || !state.count("wte.weight")) return state;
  const int64_t HS = c.n_embd / c.n_head, q = c.n_head * HS, kv = c.kv_heads() * HS, H = c.hidden();
  std::map<std::string, Tensor> out;
  auto rows = [](const Tensor& t, int64_t a, int64_t b) { return t.slice(0, a, b).contiguous(); };
  for (auto& [name, t] : state) {
    auto ends = [&](const std::string& s) {
      return name.size() >= s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0;
    };
    std::string leaf = ends(".weight") ? "weight" : "bias";
    if (name == "wte.weight") {
      out["model.embed_tokens.weight"] = t;
    } else if (name.rfind("ln_f.", 0) == 0) {
      out["model.norm." + name.substr(5)] = t;
    } else if (name.rfind("h.", 0) == 0) {
      const size_t dot = name.find('.', 2);
      const std::string pre = "model.layers." + name.substr(2, dot - 2) + ".";
      const std::string rest = name.substr(dot + 1);
      if (rest.rfind("ln_1.", 0) == 0) {
        out[pre + "input_layernorm." + rest.substr(5)] = t;
      } else if (rest.rfind("ln_2.", 0) == 0) {
        out[pre + "post_attention_layernorm." + rest.substr(5)] = t;
      } else if (rest.rfind("attn.c_attn.", 0) == 0) {
        LLMKIT_CHECK(t.size(0) == q + 2 * kv, "checkpoint: ", name, " has ", t.size(0),
                     " rows, the config says ", q + 2 * kv);
        out[pre + "self_attn.q_proj." + leaf] = rows(t, 0, q);
        out[pre + "self_attn.k_proj." + leaf] = rows(t, q, q + kv);
        out[pre + "self_attn.v_proj." + leaf] = rows(t, q + kv, q + 2 * kv);
      } else if (rest.rfind("attn.c_proj.", 0) == 0) {
        out[pre + "self_attn.o_proj." + leaf] = t;
      } else if (rest.rfind("mlp.c_fc.", 0) == 0) {
        if (c.activation == "swiglu") {
          LLMKIT_CHECK(t.size(0) == 2 * H, "checkpoint: ", name, " has ", t.size(0),
                       " rows, the config says ", 2 * H);
          out[pre + "mlp.gate_proj." + leaf] = rows(t, 0, H);
          out[pre + "mlp.up_proj." + leaf] = rows(t, H, 2 * H);
        } else {
          out[pre + "mlp.up_proj." + leaf] = t;
        }
      } else if (rest.rfind("mlp.c_proj.", 0) == 0) {
        out[pre + "mlp.down_proj." + leaf] = t;
      } else {
        out[name] = t;
      }
    } else {
      out[name] = t;
    }
  }
  return out;
}

}  // namespace llmkit::models
