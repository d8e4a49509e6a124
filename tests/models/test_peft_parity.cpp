// LoRA adapters against PEFT (PyPI peft 0.13, tests/models/peft_reference.py run with
// llmkit::testing::ref_python()) on tiny random Hugging Face models (LlamaForCausalLM,
// GPT2LMHeadModel, BertModel) saved by transformers and loaded by models::load:
//   (a) PEFT's adapter (random A and B) loaded here: our logits / hidden states equal PEFT's;
//   (b) our adapter (random B) loaded by PeftModel.from_pretrained: PEFT's outputs equal ours;
//   (c) forward + backward: the loss and every lora_A / lora_B gradient equal PEFT's, the frozen
//       base gets none;
//   (d) trainable_parameters_line equals PEFT's print_trainable_parameters.
// All within 1e-4 relative. Skips visibly when peft or transformers is not importable.
// The reference makes the three models in one run and checks ours in a second one.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>

#include "llmkit/io/json_file.h"
#include "llmkit/io/safetensors.h"
#include "llmkit/models/load.h"
#include "llmkit/models/peft.h"
#include "llmkit/ops/ops.h"
#include "tests/common/compare.h"
#include "tests/common/reference.h"
#include "tests/common/temp_dir.h"

using namespace llmkit;

namespace {

std::string skip_reason() {
  for (const char* mod : {"peft", "transformers", "torch"})
    if (!llmkit::testing::ref_python_has(mod))
      return std::string(mod) + " not importable in " + llmkit::testing::ref_python() +
             " (pip install -r scripts/requirements-peft.txt --no-deps): PEFT parity skipped";
  return "";
}

bool run_script(const std::string& args) {
  const std::string cmd = llmkit::testing::ref_python() + " '" + llmkit::testing::source_dir() +
                          "/tests/models/peft_reference.py' " + args;
  if (std::system(cmd.c_str()) == 0) return true;
  ADD_FAILURE() << "reference failed: " << cmd;
  return false;
}

// The reference models and PEFT's adapters, made once per process; "" when the script failed.
const std::string& reference_dir() {
  static std::unique_ptr<llmkit::testing::TempDir> tmp;
  static std::string dir;
  if (tmp) return dir;
  tmp = std::make_unique<llmkit::testing::TempDir>();
  const std::string out = tmp->file("ref");
  if (run_script("make '" + out + "' > '" + out + ".log' 2>&1")) dir = out;
  return dir;
}

std::map<std::string, Tensor> read(const std::string& path) {
  io::SafetensorsFile f = io::load_safetensors(path);
  return {f.tensors.begin(), f.tensors.end()};
}

double rel_err(const Tensor& ours, const Tensor& ref) {
  return llmkit::testing::rel_err(ours.to_vector<double>(), ref.to_vector<double>());
}

// Our parameter name -> the name in PEFT's files ("base_model.model." + Hugging Face's).
std::string peft_name(const std::string& kind, const std::string& ours) {
  std::string hf = ours;
  if (kind == "gpt2" && ours.rfind("lm_head", 0) != 0) hf = "transformer." + ours;
  if (kind == "bert" && ours.rfind("bert.", 0) == 0) hf = ours.substr(5);
  return "base_model.model." + hf;
}

struct Case {
  std::string kind, dir;  // dir: reference_dir()/kind
  models::LoadedModel m;
  std::map<std::string, Tensor> ref;
};

// Loads the base model of `kind`; false (with the reason reported) when the test cannot run.
bool setup(const std::string& kind, Case& c) {
  const std::string& root = reference_dir();
  if (root.empty()) return false;
  c.kind = kind;
  c.dir = root + "/" + kind;
  models::LoadOptions opt;
  opt.tokenizer = false;
  c.m = models::load(c.dir + "/base", opt);
  c.ref = read(c.dir + "/reference.safetensors");
  return true;
}

Tensor output(Case& c, const Tensor& ids) {
  return c.kind == "bert" ? c.m.bert->encode(ids) : c.m.gpt->forward(ids);
}

Tensor loss(Case& c, const Tensor& ids) {
  if (c.kind == "bert") return ops::sum(c.m.bert->encode(ids) * c.ref.at("R"));
  const int64_t T = ids.size(1);
  return c.m.gpt->loss(ids.slice(1, 0, T - 1).contiguous(), ids.slice(1, 1, T).contiguous());
}

void peft_adapter_loads_here(const std::string& kind) {
  Case c;
  ASSERT_TRUE(setup(kind, c));
  models::load_adapter(*c.m.module, c.m.arch, c.dir + "/peft_adapter");
  NoGradGuard ng;
  const double e = rel_err(output(c, c.ref.at("ids")), c.ref.at("out"));
  std::printf("%s: PEFT's adapter, our output vs PEFT's: rel err %.2e\n", kind.c_str(), e);
  EXPECT_LT(e, 1e-4);
}

// (b), first half: our adapter (random B) saved in dir/ours_adapter; returns our output.
Tensor save_our_adapter(const std::string& kind) {
  Case c;
  if (!setup(kind, c)) return Tensor();
  nn::LoraConfig lc;
  lc.r = 3;
  lc.alpha = 6;
  lc.target_modules = nn::default_lora_targets(c.m.arch);
  nn::apply_lora(*c.m.module, lc, 17);
  Generator g(23);
  NoGradGuard ng;
  for (auto& [n, p] : c.m.module->named_parameters())
    if (n.find(".lora_B.") != std::string::npos) g.uniform_(p, -0.3, 0.3);
  models::AdapterInfo info;
  info.lora = lc;
  info.base_model_path = c.dir + "/base";
  models::save_adapter(*c.m.module, c.m.arch, info, c.dir + "/ours_adapter");
  EXPECT_TRUE(models::is_adapter_dir(c.dir + "/ours_adapter"));
  return output(c, c.ref.at("ids"));
}

// (b), second half, after PEFT has run it: PEFT's output equals ours, and the adapter reads back
// here to the same output.
void compare_our_adapter(const std::string& kind, const Tensor& ours) {
  Case c;
  ASSERT_TRUE(setup(kind, c));
  models::load_adapter(*c.m.module, c.m.arch, c.dir + "/ours_adapter");
  NoGradGuard ng;
  const double e = rel_err(ours, read(c.dir + "/ours_reference.safetensors").at("out"));
  std::printf("%s: our adapter in PeftModel.from_pretrained vs ours: rel err %.2e\n", kind.c_str(),
              e);
  EXPECT_LT(e, 1e-4);
  EXPECT_LT(rel_err(output(c, c.ref.at("ids")), ours), 1e-6);
  // Our adapter_config.json has every field PEFT's has, with the same fixed values.
  const auto peft = io::read_json_file(c.dir + "/peft_adapter/adapter_config.json");
  const auto mine = io::read_json_file(c.dir + "/ours_adapter/adapter_config.json");
  for (auto it = peft.begin(); it != peft.end(); ++it)
    EXPECT_TRUE(mine.contains(it.key())) << it.key();
  EXPECT_EQ(mine.size(), peft.size());
  for (const char* k : {"peft_type", "bias", "fan_in_fan_out", "task_type", "use_dora",
                        "use_rslora", "auto_mapping"})
    EXPECT_EQ(mine.at(k), peft.at(k)) << k;
  // PEFT writes target_modules from a Python set: the order is the string hash's.
  using Names = std::set<std::string>;
  EXPECT_EQ(mine.at("target_modules").get<Names>(), peft.at("target_modules").get<Names>());
}

void gradients_match(const std::string& kind) {
  Case c;
  ASSERT_TRUE(setup(kind, c));
  models::load_adapter(*c.m.module, c.m.arch, c.dir + "/peft_adapter");
  nn::mark_only_lora_trainable(*c.m.module, {});
  Tensor l = loss(c, c.ref.at("ids"));
  l.backward();
  const double ours_loss = l.item<double>(), ref_loss = c.ref.at("loss").to_vector<double>()[0];
  std::printf("%s: loss %.6f, PEFT %.6f\n", kind.c_str(), ours_loss, ref_loss);
  EXPECT_LT(std::abs(ours_loss - ref_loss), 1e-4 * std::max(1.0, std::abs(ref_loss)));
  int n_lora = 0;
  for (auto& [n, p] : c.m.module->named_parameters()) {
    if (n.find(".lora_") == std::string::npos) {
      EXPECT_FALSE(p.grad().defined()) << "frozen " << n << " got a gradient";
      continue;
    }
    const std::string key = "grad." + peft_name(kind, n);
    ASSERT_TRUE(c.ref.count(key)) << key;
    ASSERT_TRUE(p.grad().defined()) << n;
    const double e = rel_err(p.grad(), c.ref.at(key));
    std::printf("  %-56s rel err %.2e\n", n.c_str(), e);
    EXPECT_LT(e, 1e-4) << n;
    ++n_lora;
  }
  EXPECT_EQ(n_lora, kind == "gpt2" ? 4 : 8);  // two layers x (one or two targets) x (A, B)
}

void trainable_line_matches(const std::string& kind) {
  Case c;
  ASSERT_TRUE(setup(kind, c));
  nn::LoraConfig lc;
  lc.r = 4;
  lc.alpha = 8;
  lc.target_modules = nn::default_lora_targets(c.m.arch);
  nn::apply_lora(*c.m.module, lc, 1);
  nn::mark_only_lora_trainable(*c.m.module, {});
  std::ifstream f(c.dir + "/trainable.txt");
  std::string want;
  std::getline(f, want);
  EXPECT_EQ(nn::trainable_parameters_line(*c.m.module), want);
}

const char* const kKinds[] = {"llama", "gpt2", "bert"};

}  // namespace

// One test for the three models: the Python reference (seconds of imports) runs twice in all.
TEST(PeftParity, LlamaGpt2Bert) {
  if (const std::string why = skip_reason(); !why.empty()) GTEST_SKIP() << why;
  std::map<std::string, Tensor> ours;
  std::string dirs;
  for (const std::string kind : kKinds) {
    SCOPED_TRACE(kind);
    {
      SCOPED_TRACE("(a) PEFT's adapter loaded here");
      peft_adapter_loads_here(kind);
    }
    {
      SCOPED_TRACE("(c) forward + backward");
      gradients_match(kind);
    }
    {
      SCOPED_TRACE("(d) trainable parameters line");
      trainable_line_matches(kind);
    }
    ours[kind] = save_our_adapter(kind);
    ASSERT_TRUE(ours[kind].defined());
    dirs += " '" + reference_dir() + "/" + kind + "'";
  }
  const std::string log = reference_dir() + "/check.log";
  ASSERT_TRUE(run_script("check" + dirs + " > '" + log + "' 2>&1"));
  for (const std::string kind : kKinds) {
    SCOPED_TRACE(kind + ": (b) our adapter loaded by PEFT");
    compare_our_adapter(kind, ours[kind]);
  }
}
