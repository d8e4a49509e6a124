// GGUF (general.architecture "gpt2") -> GPTConfig and our GPT-2 tensor names (hf_gpt2.h). The
// names map one to one; unlike Hugging Face's Conv1D files nothing is transposed, since a ggml
// tensor's ne[0] is the input dimension, as in our [out, in] Linear weights.
#include <string>

#include "llmkit/io/gguf.h"
#include "llmkit/models/hf_gpt2.h"

namespace llmkit::models {

GPTConfig gpt2_config_from_gguf(const io::GgufFile& f) {
  const std::string arch = f.get("general.architecture").as_string();
  LLMKIT_CHECK(arch == "gpt2", f.path, ": general.architecture '", arch, "' is not gpt2");
  auto num = [&](const char* key) { return f.get(key).as_int(); };
  GPTConfig c;
  c.arch = "gpt";
  c.n_embd = num("gpt2.embedding_length");
  c.n_layer = num("gpt2.block_count");
  c.n_head = num("gpt2.attention.head_count");
  c.block_size = num("gpt2.context_length");
  if (const io::GgufValue* v = f.find("gpt2.feed_forward_length")) c.ffn_hidden = v->as_int();
  if (const io::GgufValue* v = f.find("gpt2.attention.layer_norm_epsilon"))
    c.norm_eps = static_cast<float>(v->as_float()) == 1e-5f ? 1e-5 : v->as_float();
  c.vocab_size = f.tensor("token_embd.weight").shape().at(0);
  c.tie_embeddings = f.find_tensor("output.weight") == nullptr;
  if (const io::GgufValue* v = f.find("tokenizer.ggml.bos_token_id")) c.bos_token_id = v->as_int();
  if (const io::GgufValue* e = f.find("tokenizer.ggml.eos_token_id"))
    c.eos_token_ids = {e->as_int()};
  try {
    c.validate();
  } catch (const Error& e) {
    fail(f.path, ": ", e.what());
  }
  return c;
}

io::NamedTensors gpt2_weights_from_gguf(const io::GgufFile& f, const GPTConfig& c) {
  io::NamedTensors out;
  auto add = [&](const std::string& gguf, const std::string& ours) {
    out.emplace_back(ours, f.to_f32(f.tensor(gguf)));
  };
  add("token_embd.weight", "wte.weight");
  add("position_embd.weight", "wpe.weight");
  add("output_norm.weight", "ln_f.weight");
  add("output_norm.bias", "ln_f.bias");
  if (!c.tie_embeddings) add("output.weight", "lm_head.weight");
  static const std::pair<const char*, const char*> names[] = {
      {"attn_norm", "ln_1"}, {"attn_qkv", "attn.c_attn"}, {"attn_output", "attn.c_proj"},
      {"ffn_norm", "ln_2"},  {"ffn_up", "mlp.c_fc"},      {"ffn_down", "mlp.c_proj"}};
  for (int64_t i = 0; i < c.n_layer; ++i) {
    const std::string g = "blk." + std::to_string(i) + ".";
    const std::string h = "h." + std::to_string(i) + ".";
    for (const auto& [gn, ours] : names) {
      add(g + gn + ".weight", h + ours + ".weight");
      add(g + gn + ".bias", h + ours + ".bias");
    }
  }
  return out;
}

}  // namespace llmkit::models
