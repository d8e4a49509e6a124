// GGUF (general.architecture "gpt2") -> GPTConfig (arch "gpt") and our GPT-2 tensor names: the
// reading side of gguf_export.h's "gpt2" files (and of llama.cpp's own GPT-2 conversions). ggml's
// tensors are [out, in] like ours (ne[0] = in), attn_qkv is our fused c_attn.
#include <cstdio>
#include <string>

#include "llmkit/io/gguf.h"
#include "llmkit/models/gguf_config.h"
#include "llmkit/models/hf_gpt2.h"

namespace llmkit::models {

GPTConfig gpt2_config_from_gguf(const io::GgufFile& f) {
  const std::string arch = f.get("general.architecture").as_string();
  LLMKIT_CHECK(arch == "gpt2", f.path, ": general.architecture '", arch, "' is not gpt2");
  auto num = [&](const char* key) { return f.get(key).as_int(); };
  auto num_or = [&](const char* key, int64_t def) { return gguf_config::int_or(f, key, def); };
  GPTConfig c;  // arch gpt: learned positions, LayerNorm with biases, gelu, pre-LN
  c.n_embd = num("gpt2.embedding_length");
  c.ffn_hidden = num_or("gpt2.feed_forward_length", 4 * c.n_embd);
  c.n_layer = num("gpt2.block_count");
  c.n_head = num("gpt2.attention.head_count");
  c.n_kv_head = num_or("gpt2.attention.head_count_kv", c.n_head);
  c.block_size = num("gpt2.context_length");
  c.norm_eps = gguf_config::f32_decimal(f.get("gpt2.attention.layer_norm_epsilon").as_float());
  c.vocab_size = num_or("gpt2.vocab_size", f.tensor("token_embd.weight").shape().at(0));
  c.tie_embeddings = f.find_tensor("output.weight") == nullptr;
  gguf_config::finish(f, c);
  return c;
}

io::NamedTensors gpt2_weights_from_gguf(const io::GgufFile& f, const GPTConfig& c) {
  io::NamedTensors out;
  auto add = [&](const std::string& gguf, const std::string& ours) {
    out.emplace_back(ours, f.to_f32(f.tensor(gguf)));
  };
  add("token_embd.weight", "wte.weight");
  add("position_embd.weight", "wpe.weight");
  static const std::pair<const char*, const char*> names[] = {
      {"attn_norm", "ln_1"}, {"attn_qkv", "attn.c_attn"}, {"attn_output", "attn.c_proj"},
      {"ffn_norm", "ln_2"},  {"ffn_up", "mlp.c_fc"},      {"ffn_down", "mlp.c_proj"}};
  for (int64_t i = 0; i < c.n_layer; ++i) {
    const std::string g = "blk." + std::to_string(i) + ".", h = "h." + std::to_string(i) + ".";
    for (const auto& [gn, hn] : names)
      for (const char* part : {".weight", ".bias"}) add(g + gn + part, h + hn + part);
  }
  add("output_norm.weight", "ln_f.weight");
  add("output_norm.bias", "ln_f.bias");
  if (!c.tie_embeddings) add("output.weight", "lm_head.weight");
  return out;
}

}  // namespace llmkit::models
