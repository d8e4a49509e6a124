// Hugging Face llama-family config.json <-> GPTConfig, and the GGUF q/k row un-permutation
// (hf_llama.h).
#include "llmkit/models/hf_llama.h"

#include "llmkit/models/config_file.h"

namespace llmkit::models {

using nlohmann::json;

bool is_llama_model_type(const std::string& t) {
  return t == "llama" || t == "smollm" || t == "mistral" || t == "qwen2";
}

namespace {

template <class T>
T need(const json& hf, const char* key) {
  LLMKIT_CHECK(hf.contains(key) && !hf.at(key).is_null(), "config.json: missing field '", key, "'");
  T v{};
  read_field(hf, key, v);
  return v;
}

template <class T>
T opt(const json& hf, const char* key, T def) {
  if (!hf.contains(key) || hf.at(key).is_null()) return def;
  read_field(hf, key, def);
  return def;
}

}  // namespace

GPTConfig llama_base_config() {
  GPTConfig c;
  c.arch = "llama";
  c.pos_encoding = "rope";
  c.norm = "rmsnorm";
  c.activation = "swiglu";
  c.bias = false;
  c.dropout = 0.0;
  return c;
}

GPTConfig llama_config_from_hf(const json& hf) {
  LLMKIT_CHECK(hf.is_object(), "config.json: not a JSON object");
  const std::string type = opt<std::string>(hf, "model_type", "");
  LLMKIT_CHECK(is_llama_model_type(type), "config.json: model_type '", type,
               "' is not a llama-family decoder (llama, smollm, mistral, qwen2)");
  GPTConfig c = llama_base_config();
  c.n_embd = need<int64_t>(hf, "hidden_size");
  c.ffn_hidden = need<int64_t>(hf, "intermediate_size");
  c.n_layer = need<int64_t>(hf, "num_hidden_layers");
  c.n_head = need<int64_t>(hf, "num_attention_heads");
  c.n_kv_head = opt<int64_t>(hf, "num_key_value_heads", c.n_head);
  c.block_size = opt<int64_t>(hf, "max_position_embeddings", 2048);
  c.vocab_size = need<int64_t>(hf, "vocab_size");
  c.norm_eps = opt<double>(hf, "rms_norm_eps", 1e-6);
  c.rope_theta = opt<double>(hf, "rope_theta", 10000.0);
  c.tie_embeddings = opt<bool>(hf, "tie_word_embeddings", false);
  const std::string act = opt<std::string>(hf, "hidden_act", "silu");
  LLMKIT_CHECK(act == "silu", "config.json: hidden_act '", act, "' is not supported (only silu)");
  LLMKIT_CHECK(!opt<bool>(hf, "mlp_bias", false), "config.json: mlp_bias true is not supported");
  if (hf.contains("head_dim") && !hf["head_dim"].is_null())
    LLMKIT_CHECK(c.n_head > 0 && need<int64_t>(hf, "head_dim") * c.n_head == c.n_embd,
                 "config.json: head_dim ", hf["head_dim"].dump(),
                 " is not hidden_size / num_attention_heads");
  if (type == "qwen2") {
    c.qkv_bias = true;
    if (opt<bool>(hf, "use_sliding_window", false)) {
      const int64_t w = opt<int64_t>(hf, "sliding_window", 0);
      LLMKIT_CHECK(w >= c.block_size, "config.json: sliding_window ", w,
                   " shorter than the context is not supported");
    }
  } else {
    c.attention_bias = opt<bool>(hf, "attention_bias", false);
  }
  if (type == "mistral" && hf.contains("sliding_window") && !hf["sliding_window"].is_null()) {
    const int64_t w = need<int64_t>(hf, "sliding_window");
    LLMKIT_CHECK(w >= c.block_size, "config.json: sliding_window ", w,
                 " shorter than max_position_embeddings ", c.block_size, " is not supported");
  }
  if (hf.contains("rope_scaling") && !hf["rope_scaling"].is_null()) {
    const json& rs = hf["rope_scaling"];
    LLMKIT_CHECK(rs.is_object(), "config.json: rope_scaling must be an object");
    std::string t = opt<std::string>(rs, "rope_type", opt<std::string>(rs, "type", "default"));
    LLMKIT_CHECK(t == "default" || t == "linear" || t == "llama3",
                 "config.json: rope_scaling type '", t,
                 "' is not supported (supported: default, linear, llama3)");
    c.rope_scaling.type = t == "default" ? "" : t;
    c.rope_scaling.factor = opt<double>(rs, "factor", 1.0);
    c.rope_scaling.low_freq_factor = opt<double>(rs, "low_freq_factor", 1.0);
    c.rope_scaling.high_freq_factor = opt<double>(rs, "high_freq_factor", 4.0);
    c.rope_scaling.original_max_position_embeddings =
        opt<double>(rs, "original_max_position_embeddings", 8192.0);
  }
  c.bos_token_id = opt<int64_t>(hf, "bos_token_id", -1);
  if (hf.contains("eos_token_id") && !hf["eos_token_id"].is_null()) {
    if (hf["eos_token_id"].is_array())
      c.eos_token_ids = opt<std::vector<int64_t>>(hf, "eos_token_id", {});
    else
      c.eos_token_ids = {need<int64_t>(hf, "eos_token_id")};
  }
  try {
    c.validate();
  } catch (const Error& e) {
    fail("config.json: ", e.what());
  }
  return c;
}

json llama_config_to_hf(const GPTConfig& c) {
  LLMKIT_CHECK(c.arch == "llama" && c.norm == "rmsnorm" && c.activation == "swiglu" &&
                   c.pos_encoding == "rope" && !c.bias && !c.post_ln,
               "convert: this llama config (norm ", c.norm, ", activation ", c.activation,
               ", pos_encoding ", c.pos_encoding, ", bias ", c.bias,
               ") has no Hugging Face equivalent (needs rmsnorm, swiglu, rope, bias false)");
  const bool qwen = c.qkv_bias && !c.attention_bias;
  json j{{"architectures", {qwen ? "Qwen2ForCausalLM" : "LlamaForCausalLM"}},
         {"model_type", qwen ? "qwen2" : "llama"},
         {"hidden_size", c.n_embd},
         {"intermediate_size", c.hidden()},
         {"num_hidden_layers", c.n_layer},
         {"num_attention_heads", c.n_head},
         {"num_key_value_heads", c.kv_heads()},
         {"max_position_embeddings", c.block_size},
         {"vocab_size", c.vocab_size},
         {"rms_norm_eps", c.norm_eps},
         {"rope_theta", c.rope_theta},
         {"tie_word_embeddings", c.tie_embeddings},
         {"hidden_act", "silu"},
         {"initializer_range", 0.02},
         {"torch_dtype", "float32"}};
  if (qwen) {
    j["use_sliding_window"] = false;
    j["sliding_window"] = nullptr;
  } else {
    LLMKIT_CHECK(!c.qkv_bias || c.attention_bias,
                 "convert: q/k/v biases with o_proj bias has no Hugging Face equivalent");
    j["attention_bias"] = c.attention_bias;
    j["mlp_bias"] = false;
    j["head_dim"] = c.n_embd / c.n_head;
  }
  if (c.rope_scaling.type.empty()) {
    j["rope_scaling"] = nullptr;
  } else {
    json rs{{"rope_type", c.rope_scaling.type}, {"factor", c.rope_scaling.factor}};
    if (c.rope_scaling.type == "llama3") {
      rs["low_freq_factor"] = c.rope_scaling.low_freq_factor;
      rs["high_freq_factor"] = c.rope_scaling.high_freq_factor;
      rs["original_max_position_embeddings"] =
          static_cast<int64_t>(c.rope_scaling.original_max_position_embeddings);
    }
    j["rope_scaling"] = rs;
  }
  if (c.bos_token_id >= 0) j["bos_token_id"] = c.bos_token_id;
  if (c.eos_token_ids.size() == 1) j["eos_token_id"] = c.eos_token_ids[0];
  if (c.eos_token_ids.size() > 1) j["eos_token_id"] = c.eos_token_ids;
  return j;
}

Tensor unpermute_rope_rows(const Tensor& w, int64_t n_head) {
  LLMKIT_CHECK(w.dim() >= 1 && n_head > 0 && w.size(0) % (2 * n_head) == 0, "gguf: cannot ",
               "un-permute ", w.str(), " for ", n_head, " heads");
  // convert_hf_to_gguf: w.reshape(n_head, 2, HS/2, *rest).swapaxes(1, 2).reshape(w.shape), i.e.
  // GGUF row (h, i, j) = HF row (h, j, i). Reading back: HF row (h, j, i) = GGUF row (h, i, j).
  const int64_t rows = w.size(0), half = rows / n_head / 2;
  Shape s = w.shape();
  Shape v = {n_head, half, 2};
  for (size_t d = 1; d < s.size(); ++d) v.push_back(s[d]);
  return w.contiguous().reshape(v).transpose(1, 2).contiguous().reshape(s);
}

Tensor permute_rope_rows(const Tensor& w, int64_t n_head) {
  LLMKIT_CHECK(w.dim() >= 1 && n_head > 0 && w.size(0) % (2 * n_head) == 0, "gguf: cannot ",
               "permute ", w.str(), " for ", n_head, " heads");
  // HF row (h, j, i) for j < 2, i < HS/2 -> GGUF row (h, i, j): view as [n_head, 2, HS/2, ...]
  // and swap the middle axes.
  const int64_t rows = w.size(0), half = rows / n_head / 2;
  Shape s = w.shape();
  Shape v = {n_head, 2, half};
  for (size_t d = 1; d < s.size(); ++d) v.push_back(s[d]);
  return w.contiguous().reshape(v).transpose(1, 2).contiguous().reshape(s);
}

}  // namespace llmkit::models
