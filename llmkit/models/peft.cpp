// PEFT's adapter directory (adapter_config.json + adapter_model.safetensors), written and read
// as peft 0.13's save_pretrained / PeftModel.from_pretrained do: tensor names
// "base_model.model.<Hugging Face module>.lora_A.weight" (the adapter name "default" left out),
// modules_to_save by their plain Hugging Face names, the config with every field PEFT writes
// (sorted keys, two-space indent). Not here: the adapter math (nn/lora.h), task heads.
#include "llmkit/models/peft.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <regex>

#include <nlohmann/json.hpp>

#include "llmkit/core/error.h"
#include "llmkit/io/atomic_file.h"
#include "llmkit/io/json_file.h"
#include "llmkit/io/safetensors.h"
#include "llmkit/models/bert.h"
#include "llmkit/models/gpt.h"
#include "llmkit/nn/layers.h"

namespace llmkit::models {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kPrefix = "base_model.model.";

// Our name -> Hugging Face's for the class PEFT wraps: GPT-2's body under "transformer."
// (GPT2LMHeadModel, GPT2ForSequenceClassification); a bare BERT encoder without "bert."
// (BertModel); llama and everything else unchanged.
struct NameMap {
  std::string arch;
  bool bare_bert = false;
  std::string hf(const std::string& ours) const {
    if (arch == "gpt") {
      const std::string first = ours.substr(0, ours.find('.'));
      if (first == "wte" || first == "wpe" || first == "h" || first == "ln_f")
        return "transformer." + ours;
    }
    if (arch == "bert" && bare_bert && ours.rfind("bert.", 0) == 0) return ours.substr(5);
    return ours;
  }
};

NameMap name_map(const nn::Module& model, const std::string& arch) {
  LLMKIT_CHECK(arch == "gpt" || arch == "llama" || arch == "bert", "PEFT adapter: arch '", arch,
               "' is not one of gpt, llama, bert");
  NameMap m{arch, false};
  if (const auto* b = dynamic_cast<const Bert*>(&model))
    m.bare_bert = !b->config().pretraining_heads;
  return m;
}

// The module part of a parameter name ("a.b.weight" -> "a.b").
std::string module_of(const std::string& param) {
  const auto dot = param.rfind('.');
  return dot == std::string::npos ? "" : param.substr(0, dot);
}

bool is_lora_param(const std::string& name) {
  return name.find(".lora_A.") != std::string::npos || name.find(".lora_B.") != std::string::npos;
}

bool is_saved_module_param(const std::string& name, const std::vector<std::string>& to_save) {
  return !to_save.empty() && !is_lora_param(name) &&
         nn::lora_name_matches(module_of(name), to_save);
}

// PEFT writes integers for integral alphas (lora_alpha: 16), floats otherwise.
json number(double v) {
  if (v == static_cast<double>(static_cast<int64_t>(v))) return static_cast<int64_t>(v);
  return v;
}

json list_or_null(const std::vector<std::string>& v) {
  return v.empty() ? json(nullptr) : json(v);
}

// A list of names, or PEFT's regex string (read back as the one entry "re:<regex>").
json targets_json(const std::vector<std::string>& t) {
  if (t.size() == 1 && t[0].rfind("re:", 0) == 0) return t[0].substr(3);
  return t;
}

json auto_mapping(const std::string& arch, const std::string& task_type) {
  if (!task_type.empty()) return nullptr;  // PEFT writes it for a model without task_type only
  if (arch == "gpt")
    return {{"base_model_class", "GPT2LMHeadModel"},
            {"parent_library", "transformers.models.gpt2.modeling_gpt2"}};
  if (arch == "llama")
    return {{"base_model_class", "LlamaForCausalLM"},
            {"parent_library", "transformers.models.llama.modeling_llama"}};
  return {{"base_model_class", "BertModel"},
          {"parent_library", "transformers.models.bert.modeling_bert"}};
}

json config_json(const std::string& arch, const AdapterInfo& info,
                 const std::vector<std::string>& adapted) {
  // GPT-2's projections are Conv1D in Hugging Face: PEFT records fan_in_fan_out for them.
  bool conv1d = false;
  for (const auto& a : adapted)
    conv1d = conv1d || (arch == "gpt" && nn::lora_name_matches(a, {"c_attn", "c_proj", "c_fc"}));
  const nn::LoraConfig& c = info.lora;
  return {{"alpha_pattern", json::object()},
          {"auto_mapping", auto_mapping(arch, info.task_type)},
          {"base_model_name_or_path", info.base_model_path},
          {"bias", "none"},
          {"fan_in_fan_out", conv1d},
          {"inference_mode", true},
          {"init_lora_weights", true},
          {"layer_replication", nullptr},
          {"layers_pattern", nullptr},
          {"layers_to_transform", nullptr},
          {"loftq_config", json::object()},
          {"lora_alpha", number(c.alpha)},
          {"lora_dropout", c.dropout},
          {"megatron_config", nullptr},
          {"megatron_core", "megatron.core"},
          {"modules_to_save", list_or_null(c.modules_to_save)},
          {"peft_type", "LORA"},
          {"r", c.r},
          {"rank_pattern", json::object()},
          {"revision", nullptr},
          {"target_modules", targets_json(c.target_modules)},
          {"task_type", info.task_type.empty() ? json(nullptr) : json(info.task_type)},
          {"use_dora", false},
          {"use_rslora", false}};
}

}  // namespace

void save_adapter(const nn::Module& model, const std::string& arch, const AdapterInfo& info,
                  const std::string& dir) {
  const NameMap map = name_map(model, arch);
  io::NamedTensors tensors;
  std::vector<std::string> adapted;
  for (const auto& [name, t] : model.named_parameters()) {
    if (is_lora_param(name)) {
      const std::string module = module_of(module_of(name));    // "...c_attn"
      const std::string leaf = name.substr(module.size() + 1);  // "lora_A.weight"
      tensors.emplace_back(kPrefix + map.hf(module) + "." + leaf, t);
      if (leaf == "lora_A.weight") adapted.push_back(module);
    } else if (is_saved_module_param(name, info.lora.modules_to_save)) {
      tensors.emplace_back(kPrefix + map.hf(name), t);
    }
  }
  LLMKIT_CHECK(!adapted.empty(), "PEFT adapter: the model has no LoRA adapter to save");
  fs::create_directories(dir);
  io::save_safetensors(dir + "/adapter_model.safetensors", tensors, {{"format", "pt"}});
  const json cfg = config_json(arch, info, adapted);
  io::write_file_atomic(dir + "/adapter_config.json", cfg.dump(2) + "\n");
}

namespace {

template <class T>
T field(const json& j, const std::string& path, const char* key, T fallback) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  try {
    return j[key].get<T>();
  } catch (const json::exception&) {
    fail(path, ": field '", key, "' has the wrong type");
  }
}

// PEFT's target_modules: a list of names (the suffix rule) or one string (a regex matched
// against the whole module name); "all-linear" is not taken.
std::vector<std::string> targets_of(const json& j, const std::string& path) {
  LLMKIT_CHECK(j.contains("target_modules") && !j["target_modules"].is_null(), path,
               ": field 'target_modules' is missing");
  const json& t = j["target_modules"];
  if (t.is_string()) {
    LLMKIT_CHECK(t.get<std::string>() != "all-linear", path,
                 ": target_modules 'all-linear' is not supported; list the module names");
    return {"re:" + t.get<std::string>()};
  }
  LLMKIT_CHECK(t.is_array(), path, ": field 'target_modules' is neither a list nor a string");
  return t.get<std::vector<std::string>>();
}

void check_unsupported(const json& j, const std::string& path) {
  LLMKIT_CHECK(field<std::string>(j, path, "peft_type", "") == "LORA", path,
               ": peft_type is not LORA");
  LLMKIT_CHECK(!field<bool>(j, path, "use_dora", false), path, ": use_dora is not supported");
  LLMKIT_CHECK(!field<bool>(j, path, "use_rslora", false), path, ": use_rslora is not supported");
  LLMKIT_CHECK(field<std::string>(j, path, "bias", "none") == "none", path, ": bias '",
               field<std::string>(j, path, "bias", ""), "' is not supported (only \"none\")");
  LLMKIT_CHECK(!j.contains("layers_to_transform") || j["layers_to_transform"].is_null(), path,
               ": layers_to_transform is not supported");
  for (const char* k : {"rank_pattern", "alpha_pattern"})
    LLMKIT_CHECK(!j.contains(k) || j[k].is_null() || j[k].empty(), path, ": ", k,
                 " is not supported");
  LLMKIT_CHECK(!j.contains("layer_replication") || j["layer_replication"].is_null(), path,
               ": layer_replication is not supported");
}

bool target_matches(const std::string& hf_name, const std::vector<std::string>& targets) {
  if (targets.size() == 1 && targets[0].rfind("re:", 0) == 0)
    return std::regex_match(hf_name, std::regex(targets[0].substr(3)));
  return nn::lora_name_matches(hf_name, targets);
}

}  // namespace

AdapterInfo read_adapter_config(const std::string& dir) {
  const std::string path = dir + "/adapter_config.json";
  const json j = io::read_json_file(path);
  LLMKIT_CHECK(j.is_object(), path, ": not a JSON object");
  check_unsupported(j, path);
  AdapterInfo info;
  info.lora.r = field<int64_t>(j, path, "r", 8);
  info.lora.alpha = field<double>(j, path, "lora_alpha", 8.0);
  info.lora.dropout = field<double>(j, path, "lora_dropout", 0.0);
  LLMKIT_CHECK(info.lora.r >= 1, path, ": r ", info.lora.r, " is below 1");
  info.lora.target_modules = targets_of(j, path);
  info.lora.modules_to_save =
      field<std::vector<std::string>>(j, path, "modules_to_save", std::vector<std::string>{});
  info.task_type = field<std::string>(j, path, "task_type", "");
  info.base_model_path = field<std::string>(j, path, "base_model_name_or_path", "");
  return info;
}

namespace {

// Adds an adapter to every Linear whose Hugging Face name matches the targets (PEFT decides on
// its names, not ours); returns how many.
int add_adapters(nn::Module& model, const NameMap& map, const nn::LoraConfig& c,
                 Generator* dropout_gen) {
  Generator init(0);  // the values are overwritten by the file's
  int n = 0;
  for (auto& [name, m] : model.named_modules()) {
    auto* l = dynamic_cast<nn::Linear*>(m);
    const std::string leaf =
        name.substr(name.rfind('.') == std::string::npos ? 0 : name.rfind('.') + 1);
    if (l == nullptr || leaf == "lora_A" || leaf == "lora_B") continue;
    if (!target_matches(map.hf(name), c.target_modules)) continue;
    LLMKIT_CHECK(!l->has_lora(), "PEFT adapter: '", name, "' already has an adapter");
    l->add_lora(c.r, c.alpha, c.dropout, init, dropout_gen);
    ++n;
  }
  return n;
}

Generator* dropout_generator_of(nn::Module& model) {
  if (auto* g = dynamic_cast<GPT*>(&model)) return &g->dropout_generator();
  if (auto* b = dynamic_cast<Bert*>(&model)) return &b->dropout_generator();
  return nullptr;
}

}  // namespace

void load_adapter(nn::Module& model, const std::string& arch, const std::string& dir) {
  const AdapterInfo info = read_adapter_config(dir);
  const NameMap map = name_map(model, arch);
  nn::LoraConfig c = info.lora;
  Generator* drop = dropout_generator_of(model);
  if (c.dropout > 0 && drop == nullptr) c.dropout = 0;  // inference-only wrapper: no masks
  LLMKIT_CHECK(add_adapters(model, map, c, drop) > 0, dir,
               "/adapter_config.json: target_modules match no Linear layer of the model");
  // Every adapter parameter and every modules_to_save parameter, under its file name.
  std::map<std::string, Tensor> want;
  for (auto& [name, t] : model.named_parameters()) {
    if (is_lora_param(name)) {
      const std::string module = module_of(module_of(name));
      want[kPrefix + map.hf(module) + name.substr(module.size())] = t;
    } else {
      want[kPrefix + map.hf(name)] = t;  // loaded only if the file has it (modules_to_save)
    }
  }
  const std::string path = dir + "/adapter_model.safetensors";
  const io::SafetensorsFile f = io::load_safetensors(path);
  size_t lora_loaded = 0;
  NoGradGuard ng;
  for (const auto& [name, src] : f.tensors) {
    auto it = want.find(name);
    LLMKIT_CHECK(it != want.end(), path, ": tensor '", name, "' matches no parameter of the model");
    Tensor dst = it->second;
    LLMKIT_CHECK(src.shape() == dst.shape(), path, ": tensor '", name, "' has shape ", src.str(),
                 ", the model's ", dst.str());
    dst.copy_(src.to(dst.dtype()));
    if (is_lora_param(name)) ++lora_loaded;
  }
  size_t lora_params = 0;
  for (const auto& [name, t] : want)
    if (is_lora_param(name)) {
      ++lora_params;
      LLMKIT_CHECK(f.tensors.end() != std::find_if(f.tensors.begin(), f.tensors.end(),
                                                   [&](const auto& p) { return p.first == name; }),
                   path, ": tensor '", name, "' is missing");
    }
  LLMKIT_CHECK(lora_loaded == lora_params, path, ": ", lora_loaded, " adapter tensors for ",
               lora_params, " adapter parameters");
}

bool is_adapter_dir(const std::string& dir) {
  return fs::is_regular_file(fs::path(dir) / "adapter_config.json");
}

}  // namespace llmkit::models
