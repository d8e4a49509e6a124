// LoRA over a module tree: finding the Linears to adapt by PEFT's name rule, adding, merging and
// removing adapters, choosing what trains, and counting parameters as PEFT prints them.
#include "llmkit/nn/lora.h"

#include <cstdio>

#include "llmkit/core/error.h"
#include "llmkit/nn/layers.h"

namespace llmkit::nn {

std::vector<std::string> default_lora_targets(const std::string& arch) {
  // peft/utils/constants.py TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING.
  if (arch == "llama") return {"q_proj", "v_proj"};
  if (arch == "gpt") return {"c_attn"};
  if (arch == "bert") return {"query", "value"};
  if (arch == "t5") return {"q", "v"};
  fail("LoRA: no default target modules for arch '", arch, "'; name them (--lora-targets)");
}

bool lora_name_matches(const std::string& name, const std::vector<std::string>& patterns) {
  for (const std::string& p : patterns) {
    if (name == p) return true;
    if (name.size() > p.size() && name.compare(name.size() - p.size(), p.size(), p) == 0 &&
        name[name.size() - p.size() - 1] == '.')
      return true;
  }
  return false;
}

namespace {

// The Linears of `model` (adapters' own lora_A / lora_B left out), with their names.
std::vector<std::pair<std::string, Linear*>> linears(const Module& model) {
  std::vector<std::pair<std::string, Linear*>> out;
  for (auto& [name, m] : model.named_modules()) {
    auto* l = dynamic_cast<Linear*>(m);
    if (l == nullptr) continue;
    const auto dot = name.rfind('.');
    const std::string leaf = dot == std::string::npos ? name : name.substr(dot + 1);
    if (leaf == "lora_A" || leaf == "lora_B") continue;
    out.emplace_back(name, l);
  }
  return out;
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ",") + x;
  return s;
}

}  // namespace

std::vector<std::string> apply_lora(Module& model, const LoraConfig& c, uint64_t seed,
                                    Generator* dropout_gen) {
  LLMKIT_CHECK(!c.target_modules.empty(), "LoRA: no target modules");
  LLMKIT_CHECK(c.r >= 1, "LoRA: rank r must be at least 1 (got ", c.r, ")");
  Generator gen(seed);
  std::vector<std::string> adapted, some;
  for (auto& [name, l] : linears(model)) {
    if (some.size() < 6) some.push_back(name);
    if (!lora_name_matches(name, c.target_modules)) continue;
    LLMKIT_CHECK(!l->has_lora(), "LoRA: '", name, "' already has an adapter");
    l->add_lora(c.r, c.alpha, c.dropout, gen, dropout_gen);
    adapted.push_back(name);
  }
  LLMKIT_CHECK(!adapted.empty(), "LoRA: target modules '", join(c.target_modules),
               "' match no Linear layer of the model (its Linear layers include ", join(some),
               ", ...)");
  return adapted;
}

void merge_lora(Module& model) {
  for (auto& [name, l] : linears(model))
    if (l->has_lora() && !l->lora_merged()) l->merge_lora();
}

void unmerge_lora(Module& model) {
  for (auto& [name, l] : linears(model))
    if (l->has_lora() && l->lora_merged()) l->unmerge_lora();
}

void merge_and_unload(Module& model) {
  for (auto& [name, l] : linears(model)) {
    if (!l->has_lora()) continue;
    if (!l->lora_merged()) l->merge_lora();
    l->remove_lora();
  }
}

namespace {
bool has_prefix(const std::string& name, const std::string& prefix) {
  return name == prefix ||
         (name.size() > prefix.size() && name.compare(0, prefix.size(), prefix) == 0 &&
          (prefix.back() == '.' || name[prefix.size()] == '.'));
}
}  // namespace

void freeze(Module& model, const std::vector<std::string>& prefixes) {
  for (auto& [name, t] : model.named_parameters()) {
    bool frozen = false;
    for (const auto& p : prefixes) frozen = frozen || has_prefix(name, p);
    Tensor h = t;
    h.requires_grad_(!frozen);
  }
}

void mark_only_lora_trainable(Module& model, const std::vector<std::string>& modules_to_save) {
  for (auto& [name, t] : model.named_parameters()) {
    bool train =
        name.find(".lora_A.") != std::string::npos || name.find(".lora_B.") != std::string::npos;
    // A module_to_save "classifier" trains every parameter under a module of that name.
    for (const auto& m : modules_to_save) {
      const auto dot = name.rfind('.');
      const std::string module = dot == std::string::npos ? "" : name.substr(0, dot);
      train = train || lora_name_matches(module, {m});
    }
    Tensor h = t;
    h.requires_grad_(train);
  }
}

void check_plain_linears(const Module& model, const std::string& what) {
  for (auto& [name, l] : linears(model)) {
    LLMKIT_CHECK(!l->has_lora(), what, ": '", name,
                 "' has a LoRA adapter; merge it into the weights first (merge_and_unload) or "
                 "save the adapter alone (models/peft.h)");
    LLMKIT_CHECK(!l->weight_quantised(), what, ": '", name,
                 "' has a quantised base weight (QLoRA), which only the module's forward reads");
  }
}

LoraDisabled::LoraDisabled(Module& model) {
  for (auto& [name, m] : model.named_modules())
    if (auto* l = dynamic_cast<Linear*>(m); l != nullptr && l->has_lora()) {
      linears_.emplace_back(l, l->lora_enabled());
      l->set_lora_enabled(false);
    }
}

LoraDisabled::~LoraDisabled() {
  for (auto& [l, on] : linears_) l->set_lora_enabled(on);
}

ParamCount count_parameters(const Module& model) {
  ParamCount c;
  for (auto& [name, t] : model.named_parameters()) {
    c.all += t.numel();
    if (t.requires_grad()) c.trainable += t.numel();
  }
  // A quantised base weight is a parameter no more, but still part of the model (PEFT counts
  // bitsandbytes' 4-bit weights too, as their element count).
  for (auto& [name, m] : model.named_modules())
    if (auto* l = dynamic_cast<Linear*>(m); l != nullptr && l->weight_quantised())
      c.all += l->in_features() * l->out_features();
  return c;
}

std::string trainable_parameters_line(const Module& model) {
  const ParamCount c = count_parameters(model);
  auto commas = [](int64_t v) {  // Python's {:,d}
    const std::string digits = std::to_string(v);
    std::string s;
    for (size_t i = 0; i < digits.size(); ++i) {
      if (i > 0 && (digits.size() - i) % 3 == 0 && digits[i - 1] != '-') s += ',';
      s += digits[i];
    }
    return s;
  };
  char pct[32];
  std::snprintf(pct, sizeof pct, "%.4f", c.all > 0 ? 100.0 * c.trainable / c.all : 0.0);
  return "trainable params: " + commas(c.trainable) + " || all params: " + commas(c.all) +
         " || trainable%: " + pct;
}

}  // namespace llmkit::nn
