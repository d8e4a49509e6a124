// Hugging Face BERT import/export (see hf_bert.h): config.json fields and the name map.
#include "llmkit/models/hf_bert.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "llmkit/models/config_file.h"

namespace llmkit::models {

using nlohmann::json;

namespace {

bool starts_with(const std::string& s, const char* prefix) {
  return s.rfind(prefix, 0) == 0;
}

// A string field, or `fallback` when absent or null; an Error when it is another type.
std::string string_field(const json& hf, const char* key, const std::string& fallback) {
  const auto it = hf.find(key);
  if (it == hf.end() || it->is_null()) return fallback;
  LLMKIT_CHECK(it->is_string(), "config: field '", key, "' must be a string, got ", it->dump());
  return it->get<std::string>();
}

bool bool_field(const json& hf, const char* key) {
  bool v = false;
  read_field(hf, key, v);
  return v;
}

}  // namespace

BertConfig bert_config_from_hf(const json& hf) {
  LLMKIT_CHECK(hf.is_object(), "config: a Hugging Face config must be a JSON object");
  LLMKIT_CHECK(!hf.contains("arch"),
               "config: this is an llmkit config (it has \"arch\"), not a "
               "Hugging Face one (BertConfig::from_json reads it)");
  const std::string model_type = string_field(hf, "model_type", "bert");
  LLMKIT_CHECK(model_type == "bert", "config: model_type '", model_type,
               "' is not bert (not a BERT encoder; only BERT-architecture encoders load here)");
  const std::string pos = string_field(hf, "position_embedding_type", "absolute");
  LLMKIT_CHECK(pos == "absolute", "config: position_embedding_type '", pos,
               "' is not supported (only absolute)");
  // Hugging Face's "gelu" is the exact erf form, which is what our BERT layers compute.
  const std::string act = string_field(hf, "hidden_act", "gelu");
  LLMKIT_CHECK(act == "gelu", "config: hidden_act '", act,
               "' is not supported (only gelu, the exact erf form)");
  LLMKIT_CHECK(!bool_field(hf, "is_decoder"),
               "config: is_decoder true is not supported (BERT as "
               "an encoder only)");
  LLMKIT_CHECK(!bool_field(hf, "add_cross_attention"),
               "config: add_cross_attention true is not supported");

  // Hugging Face's BertConfig defaults (bert-base-uncased) where a field is absent.
  BertConfig c;
  c.vocab_size = 30522;
  c.n_embd = 768;
  c.n_layer = 12;
  c.n_head = 12;
  c.ffn_hidden = 3072;
  c.block_size = 512;
  c.type_vocab_size = 2;
  c.norm_eps = 1e-12;
  c.dropout = 0.1;
  c.pad_id = 0;
  read_field(hf, "vocab_size", c.vocab_size);
  read_field(hf, "hidden_size", c.n_embd);
  read_field(hf, "num_hidden_layers", c.n_layer);
  read_field(hf, "num_attention_heads", c.n_head);
  read_field(hf, "intermediate_size", c.ffn_hidden);
  read_field(hf, "max_position_embeddings", c.block_size);
  read_field(hf, "type_vocab_size", c.type_vocab_size);
  read_field(hf, "layer_norm_eps", c.norm_eps);
  read_field(hf, "hidden_dropout_prob", c.dropout);
  if (const auto it = hf.find("pad_token_id"); it != hf.end() && it->is_null())
    c.pad_id = -1;
  else
    read_field(hf, "pad_token_id", c.pad_id);

  c.pretraining_heads = false;
  if (const auto it = hf.find("architectures"); it != hf.end() && it->is_array())
    for (const auto& a : *it) c.pretraining_heads |= a.is_string() && a == "BertForPreTraining";
  c.validate();
  return c;
}

json bert_config_to_hf(const BertConfig& c) {
  return json{
      {"architectures", {c.pretraining_heads ? "BertForPreTraining" : "BertModel"}},
      {"model_type", "bert"},
      {"vocab_size", c.vocab_size},
      {"hidden_size", c.n_embd},
      {"num_hidden_layers", c.n_layer},
      {"num_attention_heads", c.n_head},
      {"intermediate_size", c.hidden()},
      {"hidden_act", "gelu"},
      {"hidden_dropout_prob", c.dropout},
      // Our attention has no dropout on the probabilities; 0 says so exactly.
      {"attention_probs_dropout_prob", 0.0},
      {"max_position_embeddings", c.block_size},
      {"type_vocab_size", c.type_vocab_size},
      {"initializer_range", 0.02},
      {"layer_norm_eps", c.norm_eps},
      {"pad_token_id", c.pad_id >= 0 ? json(c.pad_id) : json(nullptr)},
      {"position_embedding_type", "absolute"},
      {"torch_dtype", "float32"},
  };
}

void bert_load_hf_weights(Bert& model, const io::NamedTensors& tensors) {
  const bool heads = model.config().pretraining_heads;
  // Hugging Face name (gamma/beta renamed) -> tensor.
  std::map<std::string, Tensor> hf;
  bool prefixed = false;
  for (const auto& [name, t] : tensors) {
    std::string n = name;
    if (n.find("LayerNorm.") != std::string::npos) {
      if (n.size() > 6 && n.compare(n.size() - 6, 6, ".gamma") == 0)
        n = n.substr(0, n.size() - 6) + ".weight";
      else if (n.size() > 5 && n.compare(n.size() - 5, 5, ".beta") == 0)
        n = n.substr(0, n.size() - 5) + ".bias";
    }
    prefixed |= starts_with(n, "bert.");
    LLMKIT_CHECK(hf.emplace(n, t).second, "BERT weights: tensor '", name, "' appears twice");
  }
  std::map<std::string, Tensor> state;
  for (const auto& [ours, p] : model.named_parameters()) {
    // Our encoder names carry "bert."; a BertModel checkpoint's do not.
    const std::string name = starts_with(ours, "bert.") && !prefixed ? ours.substr(5) : ours;
    const auto it = hf.find(name);
    LLMKIT_CHECK(it != hf.end(), "BERT weights: missing tensor '", name, "' (shape ",
                 shape_str(p.shape()), ")");
    LLMKIT_CHECK(it->second.shape() == p.shape(), "BERT weights: tensor '", name, "' has shape ",
                 shape_str(it->second.shape()), ", the model expects ", shape_str(p.shape()));
    state.emplace(ours, it->second);
    hf.erase(it);
  }
  for (const auto& [name, t] : hf) {
    const bool ignorable =
        name == "embeddings.position_ids" || name == "bert.embeddings.position_ids" ||
        starts_with(name, "cls.predictions.decoder.") || (!heads && starts_with(name, "cls."));
    LLMKIT_CHECK(ignorable, "BERT weights: unexpected tensor '", name, "' ", shape_str(t.shape()),
                 " (not part of a BertModel / BertForPreTraining",
                 heads ? "" : " encoder; its config names no pretraining heads", ")");
  }
  NoGradGuard ng;
  model.load_state_dict(state, /*strict=*/true);
}

io::NamedTensors bert_hf_weights(const Bert& model) {
  const bool heads = model.config().pretraining_heads;
  io::NamedTensors out;
  for (const auto& [name, p] : model.named_parameters())
    out.emplace_back(!heads && starts_with(name, "bert.") ? name.substr(5) : name, p);
  return out;
}

std::unique_ptr<Bert> load_hf_bert_dir(const std::string& dir) {
  const std::string config_path = dir + "/config.json";
  BertConfig cfg;
  try {
    const json j = read_config_json(config_path);
    if (j.is_object() && j.contains("arch")) {  // an llmkit model directory
      const json& arch = j.at("arch");
      LLMKIT_CHECK(arch == "bert", "arch ", arch.dump(),
                   " is not a BERT encoder (a decoder or another model)");
      cfg = BertConfig::from_json(j);
    } else {
      cfg = bert_config_from_hf(j);
    }
  } catch (const Error& e) {
    fail(config_path, ": ", e.what());
  }
  const std::string weights_path = dir + "/model.safetensors";
  LLMKIT_CHECK(std::filesystem::exists(weights_path), "BERT directory '", dir,
               "' has no model.safetensors");
  auto model = std::make_unique<Bert>(cfg, 0, DType::F32, /*initialise=*/false);  // all loaded
  // skip: the int64 "embeddings.position_ids" buffer many BERT files hold (no llmkit dtype).
  const io::SafetensorsFile file = io::load_safetensors(weights_path, /*skip_unsupported=*/true);
  try {
    bert_load_hf_weights(*model, file.tensors);
  } catch (const Error& e) {
    fail(weights_path, ": ", e.what());
  }
  model->eval();
  return model;
}

void save_hf_bert_dir(const Bert& model, const std::string& dir) {
  std::filesystem::create_directories(dir);
  io::save_safetensors(dir + "/model.safetensors", bert_hf_weights(model), {{"format", "pt"}});
  std::ofstream out(dir + "/config.json");
  out << bert_config_to_hf(model.config()).dump(2) << "\n";
  LLMKIT_CHECK(out.good(), "cannot write '", dir, "/config.json'");
}

}  // namespace llmkit::models
