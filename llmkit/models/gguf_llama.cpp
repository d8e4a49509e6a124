// GGUF (general.architecture "llama") -> GPTConfig and Hugging Face llama tensor names
// (hf_llama.h). llama.cpp's convert_hf_to_gguf.py permutes the rows of q_proj and k_proj so that
// GGML's RoPE, which rotates adjacent pairs (2i, 2i+1), computes what Hugging Face's rotate_half
// does on pairs (i, i + HS/2); ours is rotate_half, so the permutation is undone here, as
// transformers' GGUF loader does.
#include <cstdio>
#include <string>

#include "llmkit/io/gguf.h"
#include "llmkit/models/gguf_config.h"
#include "llmkit/models/hf_llama.h"

namespace llmkit::models {

GPTConfig llama_config_from_gguf(const io::GgufFile& f) {
  const std::string arch = f.get("general.architecture").as_string();
  LLMKIT_CHECK(arch == "llama", f.path, ": general.architecture '", arch,
               "' is not supported (llama)");
  auto num = [&](const char* key) { return f.get(key).as_int(); };
  auto num_or = [&](const char* key, int64_t def) { return gguf_config::int_or(f, key, def); };
  auto real_or = [&](const char* key, double def) { return gguf_config::float_or(f, key, def); };
  GPTConfig c = llama_base_config();
  c.n_embd = num("llama.embedding_length");
  c.ffn_hidden = num("llama.feed_forward_length");
  c.n_layer = num("llama.block_count");
  c.n_head = num("llama.attention.head_count");
  c.n_kv_head = num_or("llama.attention.head_count_kv", c.n_head);
  c.block_size = num("llama.context_length");
  c.norm_eps = gguf_config::f32_decimal(real_or("llama.attention.layer_norm_rms_epsilon", 1e-5));
  c.rope_theta = real_or("llama.rope.freq_base", 10000.0);
  const io::GgufTensor& emb = f.tensor("token_embd.weight");
  c.vocab_size = num_or("llama.vocab_size", emb.shape().at(0));
  c.tie_embeddings = f.find_tensor("output.weight") == nullptr;
  if (const io::GgufValue* t = f.find("llama.rope.scaling.type")) {
    const std::string type = t->as_string();
    LLMKIT_CHECK(type == "none" || type == "linear", f.path, ": llama.rope.scaling.type '", type,
                 "' is not supported (none, linear)");
    if (type == "linear") {
      c.rope_scaling.type = "linear";
      c.rope_scaling.factor = real_or("llama.rope.scaling.factor", 1.0);
    }
  }
  if (c.n_head > 0 && c.n_embd % c.n_head == 0)
    LLMKIT_CHECK(num_or("llama.rope.dimension_count", c.n_embd / c.n_head) == c.n_embd / c.n_head,
                 f.path,
                 ": llama.rope.dimension_count differs from the head size (partial RoPE "
                 "is not supported)");
  gguf_config::finish(f, c);
  return c;
}

io::NamedTensors llama_weights_from_gguf(const io::GgufFile& f, const GPTConfig& c) {
  io::NamedTensors out;
  auto add = [&](const std::string& gguf, const std::string& hf, int64_t unpermute_heads = 0) {
    Tensor t = f.to_f32(f.tensor(gguf));
    if (unpermute_heads > 0) t = unpermute_rope_rows(t, unpermute_heads);
    out.emplace_back(hf, t);
  };
  add("token_embd.weight", "model.embed_tokens.weight");
  add("output_norm.weight", "model.norm.weight");
  if (!c.tie_embeddings) add("output.weight", "lm_head.weight");
  static const std::pair<const char*, const char*> names[] = {
      {"attn_norm", "input_layernorm"}, {"ffn_norm", "post_attention_layernorm"},
      {"attn_v", "self_attn.v_proj"},   {"attn_output", "self_attn.o_proj"},
      {"ffn_gate", "mlp.gate_proj"},    {"ffn_up", "mlp.up_proj"},
      {"ffn_down", "mlp.down_proj"}};
  for (int64_t i = 0; i < c.n_layer; ++i) {
    const std::string g = "blk." + std::to_string(i) + ".";
    const std::string h = "model.layers." + std::to_string(i) + ".";
    add(g + "attn_q.weight", h + "self_attn.q_proj.weight", c.n_head);
    add(g + "attn_k.weight", h + "self_attn.k_proj.weight", c.kv_heads());
    for (const auto& [gn, hn] : names) add(g + gn + ".weight", h + hn + ".weight");
    for (const char* b : {"attn_q", "attn_k", "attn_v", "attn_output"})  // Qwen2-style biases
      if (f.find_tensor(g + b + ".bias"))
        fail(f.path, ": ", g, b, ".bias: attention biases in GGUF are not supported");
  }
  return out;
}

}  // namespace llmkit::models
