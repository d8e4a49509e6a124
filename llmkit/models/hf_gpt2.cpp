// Hugging Face GPT-2 import/export (see hf_gpt2.h): config.json fields, the prefix and the Conv1D
// transposes.
#include "llmkit/models/hf_gpt2.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "llmkit/models/config_file.h"

namespace llmkit::models {

using nlohmann::json;

namespace {

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.rfind(prefix, 0) == 0;
}
bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Hugging Face's GPT-2 keeps these four as Conv1D: weight [in, out].
bool is_conv1d(const std::string& name) {
  for (const char* s :
       {".attn.c_attn.weight", ".attn.c_proj.weight", ".mlp.c_fc.weight", ".mlp.c_proj.weight"})
    if (ends_with(name, s)) return true;
  return false;
}

// The attention-mask buffers older GPT-2 files carry ("h.3.attn.bias", "h.3.attn.masked_bias").
bool is_mask_buffer(const std::string& name) {
  return starts_with(name, "h.") &&
         (ends_with(name, ".attn.bias") || ends_with(name, ".attn.masked_bias"));
}

}  // namespace

GPTConfig gpt2_config_from_hf(const json& hf) {
  LLMKIT_CHECK(hf.is_object(), "config: a Hugging Face config must be a JSON object");
  LLMKIT_CHECK(!hf.contains("arch"),
               "config: this is an llmkit config (it has \"arch\"), not a "
               "Hugging Face one (GPTConfig::from_json reads it)");
  if (const auto it = hf.find("model_type"); it != hf.end())
    LLMKIT_CHECK(it->is_string() && *it == "gpt2", "config: model_type ", it->dump(),
                 " is not gpt2");
  std::string act = "gelu_new";
  read_field(hf, "activation_function", act);
  // gelu_new, gelu_pytorch_tanh and gelu_fast are one function, 0.5 x (1 + tanh(sqrt(2/pi)
  // (x + 0.044715 x^3))), written three ways: our "gelu" (ops::GeluApprox::Tanh).
  LLMKIT_CHECK(act == "gelu_new" || act == "gelu_pytorch_tanh" || act == "gelu_fast",
               "config: activation_function '", act,
               "' is not supported (only the tanh GELU: gelu_new, gelu_pytorch_tanh, gelu_fast)");
  bool scale = true, inverse_layer = false, cross = false;
  read_field(hf, "scale_attn_weights", scale);
  read_field(hf, "scale_attn_by_inverse_layer_idx", inverse_layer);
  read_field(hf, "add_cross_attention", cross);
  LLMKIT_CHECK(scale, "config: scale_attn_weights false is not supported");
  LLMKIT_CHECK(!inverse_layer, "config: scale_attn_by_inverse_layer_idx true is not supported");
  LLMKIT_CHECK(!cross, "config: add_cross_attention true is not supported");
  // reorder_and_upcast_attn only changes the order of float16 operations: in float32 it is
  // the same attention, so it is accepted and ignored.

  GPTConfig c;  // arch gpt: learned positions, LayerNorm, GELU, biases, pre-LN
  c.arch = "gpt";
  c.n_layer = 12;  // GPT2Config's defaults (gpt2 small) where a field is absent
  c.n_head = 12;
  c.n_embd = 768;
  c.block_size = 1024;
  c.vocab_size = 50257;
  c.norm_eps = 1e-5;
  c.dropout = 0.1;
  read_field(hf, "n_layer", c.n_layer);
  read_field(hf, "n_head", c.n_head);
  read_field(hf, "n_embd", c.n_embd);
  read_field(hf, "n_ctx", c.block_size);  // the old name; n_positions wins
  read_field(hf, "n_positions", c.block_size);
  read_field(hf, "vocab_size", c.vocab_size);
  read_field(hf, "layer_norm_epsilon", c.norm_eps);
  read_field(hf, "resid_pdrop", c.dropout);
  if (const auto it = hf.find("n_inner"); it != hf.end() && !it->is_null())
    read_field(hf, "n_inner", c.ffn_hidden);
  read_field(hf, "tie_word_embeddings", c.tie_embeddings);
  c.validate();
  return c;
}

json gpt2_config_to_hf(const GPTConfig& c) {
  LLMKIT_CHECK(c.arch == "gpt" && c.pos_encoding == "learned" && c.norm == "layernorm" &&
                   c.activation == "gelu" && c.bias && !c.post_ln && c.kv_heads() == c.n_head,
               "GPT-2 export: the config is not the GPT-2 layout (arch gpt, learned positions, "
               "layernorm, gelu, bias, pre-LN, no grouped heads); got arch ",
               c.arch, ", pos_encoding ", c.pos_encoding, ", norm ", c.norm, ", activation ",
               c.activation);
  return json{{"architectures", {"GPT2LMHeadModel"}},
              {"model_type", "gpt2"},
              {"activation_function", "gelu_new"},
              {"vocab_size", c.vocab_size},
              {"n_positions", c.block_size},
              {"n_embd", c.n_embd},
              {"n_layer", c.n_layer},
              {"n_head", c.n_head},
              {"n_inner", c.hidden()},
              {"layer_norm_epsilon", c.norm_eps},
              {"resid_pdrop", c.dropout},
              {"embd_pdrop", c.dropout},
              // Our attention kernel has no dropout on the probabilities.
              {"attn_pdrop", 0.0},
              {"initializer_range", 0.02},
              {"scale_attn_weights", true},
              {"tie_word_embeddings", c.tie_embeddings},
              {"torch_dtype", "float32"}};
}

void gpt2_load_hf_weights(GPT& model, const io::NamedTensors& tensors) {
  LLMKIT_CHECK(model.config().arch == "gpt", "GPT-2 weights: the model has arch '",
               model.config().arch, "', not gpt (the GPT-2 layout)");
  const bool tied = model.config().tie_embeddings;
  // Name without "transformer." -> (name as in the file, tensor).
  std::map<std::string, std::pair<std::string, Tensor>> hf;
  for (const auto& [name, t] : tensors) {
    const std::string n = starts_with(name, "transformer.") ? name.substr(12) : name;
    LLMKIT_CHECK(hf.emplace(n, std::make_pair(name, t)).second, "GPT-2 weights: tensor '", n,
                 "' appears twice (with and without the transformer. prefix)");
  }
  std::map<std::string, Tensor> state;
  for (const auto& [ours, p] : model.named_parameters()) {
    const auto it = hf.find(ours);
    LLMKIT_CHECK(it != hf.end(), "GPT-2 weights: missing tensor '", ours, "' (shape ",
                 shape_str(p.shape()),
                 is_conv1d(ours) ? " as [out, in]; Conv1D stores [in, out]" : "", ")");
    const auto& [file_name, t] = it->second;
    if (is_conv1d(ours)) {
      const Shape want = {p.size(1), p.size(0)};
      LLMKIT_CHECK(t.shape() == want, "GPT-2 weights: tensor '", file_name, "' has shape ",
                   shape_str(t.shape()), ", the model expects ", shape_str(want),
                   " (Conv1D [in, out])");
      state.emplace(ours, t.transpose(0, 1));
    } else {
      LLMKIT_CHECK(t.shape() == p.shape(), "GPT-2 weights: tensor '", file_name, "' has shape ",
                   shape_str(t.shape()), ", the model expects ", shape_str(p.shape()));
      state.emplace(ours, t);
    }
    hf.erase(it);
  }
  for (const auto& [n, entry] : hf) {
    const bool ignorable = is_mask_buffer(n) || (tied && n == "lm_head.weight");
    LLMKIT_CHECK(ignorable, "GPT-2 weights: unexpected tensor '", entry.first, "' ",
                 shape_str(entry.second.shape()), " (not part of GPT2LMHeadModel",
                 n == "lm_head.weight" ? "; the config ties lm_head to wte" : "", ")");
  }
  NoGradGuard ng;
  model.load_state_dict(state, /*strict=*/true);
}

io::NamedTensors gpt2_hf_weights(const GPT& model) {
  gpt2_config_to_hf(model.config());  // an Error when the layout is not GPT-2's
  io::NamedTensors out;
  for (const auto& [name, p] : model.named_parameters()) {
    if (name == "lm_head.weight")
      out.emplace_back(name, p);  // nn.Linear in Hugging Face too, [V, C]
    else if (is_conv1d(name))
      out.emplace_back("transformer." + name, p.transpose(0, 1).contiguous());
    else
      out.emplace_back("transformer." + name, p);
  }
  return out;
}

std::unique_ptr<GPT> load_hf_gpt2_dir(const std::string& dir) {
  const std::string config_path = dir + "/config.json";
  GPTConfig cfg;
  try {
    cfg = gpt2_config_from_hf(read_config_json(config_path));
  } catch (const Error& e) {
    fail(config_path, ": ", e.what());
  }
  const std::string weights_path = dir + "/model.safetensors";
  LLMKIT_CHECK(std::filesystem::exists(weights_path), "GPT-2 directory '", dir,
               "' has no model.safetensors");
  auto model = std::make_unique<GPT>(cfg);
  // skip: attention-mask buffers some writers store as BOOL (ignored by the name map anyway).
  const io::SafetensorsFile file = io::load_safetensors(weights_path, /*skip_unsupported=*/true);
  try {
    gpt2_load_hf_weights(*model, file.tensors);
  } catch (const Error& e) {
    fail(weights_path, ": ", e.what());
  }
  model->eval();
  return model;
}

void save_hf_gpt2_dir(const GPT& model, const std::string& dir) {
  const json config = gpt2_config_to_hf(model.config());
  std::filesystem::create_directories(dir);
  io::save_safetensors(dir + "/model.safetensors", gpt2_hf_weights(model), {{"format", "pt"}});
  std::ofstream out(dir + "/config.json");
  out << config.dump(2) << "\n";
  LLMKIT_CHECK(out.good(), "cannot write '", dir, "/config.json'");
}

}  // namespace llmkit::models
