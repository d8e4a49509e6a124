// models/peft.h without Python: the files save_adapter writes (PEFT's tensor names per
// architecture, the config's fields), a save -> load round trip giving the same outputs (with a
// module_to_save), and the errors of read_adapter_config / load_adapter naming the file and the
// field or tensor. PEFT itself reads and writes these in test_peft_parity.cpp.
#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "common/gradcheck.h"
#include "common/temp_dir.h"
#include "llmkit/core/error.h"
#include "llmkit/io/json_file.h"
#include "llmkit/io/safetensors.h"
#include "llmkit/models/bert.h"
#include "llmkit/models/gpt.h"
#include "llmkit/models/hf_llama.h"
#include "llmkit/models/peft.h"

using namespace llmkit;
using llmkit::testing::max_abs_diff;

namespace {

models::GPTConfig tiny(bool llama) {
  models::GPTConfig c = llama ? models::llama_base_config() : models::GPTConfig();
  c.n_layer = 2;
  c.n_head = 2;
  c.n_embd = 16;
  c.block_size = 16;
  c.vocab_size = 30;
  c.tie_embeddings = !llama;
  return c;
}

const Tensor& ids() {
  static const Tensor t = Tensor::from_vector(std::vector<int32_t>{3, 1, 4, 1, 5, 9, 2, 6}, {1, 8});
  return t;
}

std::set<std::string> file_names(const std::string& path) {
  std::set<std::string> s;
  for (auto& [n, t] : io::load_safetensors(path).tensors) s.insert(n);
  return s;
}

void randomise(nn::Module& m, const std::string& what) {
  Generator g(5);
  NoGradGuard ng;
  for (auto& [n, p] : m.named_parameters())
    if (n.find(what) != std::string::npos) g.uniform_(p, -0.3, 0.3);
}

void write(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

}  // namespace

TEST(Peft, Gpt2NamesConfigAndRoundTrip) {
  llmkit::testing::TempDir tmp;
  models::GPT m(tiny(false), 1);
  m.eval();
  models::AdapterInfo info;
  info.lora.r = 2;
  info.lora.alpha = 4;
  info.lora.target_modules = {"c_attn"};
  nn::apply_lora(m, info.lora, 2);
  randomise(m, ".lora_B.");
  const std::string dir = tmp.file("adapter");
  models::save_adapter(m, "gpt", info, dir);
  EXPECT_TRUE(models::is_adapter_dir(dir));
  EXPECT_FALSE(models::is_adapter_dir(tmp.file("nothing")));
  EXPECT_EQ(file_names(dir + "/adapter_model.safetensors"),
            (std::set<std::string>{"base_model.model.transformer.h.0.attn.c_attn.lora_A.weight",
                                   "base_model.model.transformer.h.0.attn.c_attn.lora_B.weight",
                                   "base_model.model.transformer.h.1.attn.c_attn.lora_A.weight",
                                   "base_model.model.transformer.h.1.attn.c_attn.lora_B.weight"}));
  EXPECT_EQ(io::load_safetensors(dir + "/adapter_model.safetensors").metadata.at("format"), "pt");
  const nlohmann::json cfg = io::read_json_file(dir + "/adapter_config.json");
  EXPECT_EQ(cfg.at("peft_type"), "LORA");
  EXPECT_EQ(cfg.at("r"), 2);
  EXPECT_TRUE(cfg.at("lora_alpha").is_number_integer());
  EXPECT_EQ(cfg.at("lora_alpha"), 4);
  EXPECT_EQ(cfg.at("fan_in_fan_out"), true);  // Conv1D in Hugging Face
  EXPECT_TRUE(cfg.at("task_type").is_null());
  EXPECT_TRUE(cfg.at("modules_to_save").is_null());
  EXPECT_EQ(cfg.at("target_modules"), nlohmann::json({"c_attn"}));

  NoGradGuard ng;
  const Tensor want = m.forward(ids());
  models::GPT fresh(tiny(false), 1);
  fresh.eval();
  models::load_adapter(fresh, "gpt", dir);
  EXPECT_EQ(max_abs_diff(fresh.forward(ids()), want), 0.0);
  const models::AdapterInfo back = models::read_adapter_config(dir);
  EXPECT_EQ(back.lora.r, 2);
  EXPECT_EQ(back.lora.alpha, 4);
  EXPECT_EQ(back.lora.target_modules, info.lora.target_modules);
}

TEST(Peft, LlamaWithModuleToSave) {
  llmkit::testing::TempDir tmp;
  models::GPT m(tiny(true), 1);
  m.eval();
  models::AdapterInfo info;
  info.lora.r = 2;
  info.lora.alpha = 3;  // scaling 1.5
  info.lora.target_modules = {"q_proj", "v_proj"};
  info.lora.modules_to_save = {"lm_head"};
  info.task_type = "CAUSAL_LM";
  nn::apply_lora(m, info.lora, 2);
  randomise(m, ".lora_B.");
  randomise(m, "lm_head.");
  models::save_adapter(m, "llama", info, tmp.file("a"));
  const auto names = file_names(tmp.file("a") + "/adapter_model.safetensors");
  EXPECT_EQ(names.size(), 2u * 2u * 2u + 1u);
  EXPECT_TRUE(names.count("base_model.model.lm_head.weight"));
  EXPECT_TRUE(names.count("base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight"));
  const nlohmann::json cfg = io::read_json_file(tmp.file("a") + "/adapter_config.json");
  EXPECT_EQ(cfg.at("fan_in_fan_out"), false);
  EXPECT_EQ(cfg.at("task_type"), "CAUSAL_LM");
  EXPECT_TRUE(cfg.at("auto_mapping").is_null());
  EXPECT_EQ(cfg.at("lora_alpha"), 3);
  NoGradGuard ng;
  const Tensor want = m.forward(ids());
  models::GPT fresh(tiny(true), 1);
  fresh.eval();
  models::load_adapter(fresh, "llama", tmp.file("a"));
  EXPECT_EQ(max_abs_diff(fresh.forward(ids()), want), 0.0);
}

TEST(Peft, BareBertDropsItsPrefix) {
  llmkit::testing::TempDir tmp;
  models::BertConfig c;
  c.vocab_size = 30;
  c.n_embd = 16;
  c.n_head = 2;
  c.n_layer = 1;
  c.pretraining_heads = false;
  models::Bert m(c, 1);
  models::AdapterInfo info;
  info.lora.r = 2;
  info.lora.target_modules = {"query", "value"};
  nn::apply_lora(m, info.lora, 2);
  randomise(m, ".lora_B.");
  models::save_adapter(m, "bert", info, tmp.file("a"));
  EXPECT_TRUE(file_names(tmp.file("a") + "/adapter_model.safetensors")
                  .count("base_model.model.encoder.layer.0.attention.self.query.lora_A.weight"));
  models::Bert fresh(c, 1);
  models::load_adapter(fresh, "bert", tmp.file("a"));
  m.eval();
  fresh.eval();
  NoGradGuard ng;
  EXPECT_EQ(max_abs_diff(fresh.encode(ids()), m.encode(ids())), 0.0);
}

TEST(Peft, Errors) {
  llmkit::testing::TempDir tmp;
  models::GPT m(tiny(false), 1);
  models::AdapterInfo info;
  info.lora.target_modules = {"c_attn"};
  EXPECT_THROW(models::save_adapter(m, "gpt", info, tmp.file("none")), Error);  // no adapter
  nn::apply_lora(m, info.lora, 2);
  EXPECT_THROW(models::save_adapter(m, "t5", info, tmp.file("x")), Error);
  const std::string dir = tmp.file("a");
  models::save_adapter(m, "gpt", info, dir);
  // Config fields we cannot honour: one line naming the file and the field.
  const nlohmann::json good = io::read_json_file(dir + "/adapter_config.json");
  for (auto [key, value] :
       std::vector<std::pair<std::string, nlohmann::json>>{{"use_dora", true},
                                                           {"use_rslora", true},
                                                           {"bias", "all"},
                                                           {"peft_type", "IA3"},
                                                           {"layers_to_transform", {0}},
                                                           {"rank_pattern", {{"c_attn", 4}}},
                                                           {"target_modules", "all-linear"}}) {
    nlohmann::json bad = good;
    bad[key] = value;
    write(dir + "/adapter_config.json", bad.dump());
    try {
      models::read_adapter_config(dir);
      ADD_FAILURE() << "no error for " << key;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("adapter_config.json"), std::string::npos) << e.what();
    }
  }
  // A regex target (PEFT's string form) matches whole Hugging Face names.
  nlohmann::json re = good;
  re["target_modules"] = ".*\\.h\\.1\\.attn\\.c_attn";
  write(dir + "/adapter_config.json", re.dump());
  models::GPT one(tiny(false), 1);
  EXPECT_THROW(models::load_adapter(one, "gpt", dir), Error);  // h.0's tensors match nothing
  write(dir + "/adapter_config.json", good.dump());
  // A model of another shape: the tensor's name and both shapes.
  models::GPTConfig wide = tiny(false);
  wide.n_embd = 32;
  models::GPT other(wide, 1);
  try {
    models::load_adapter(other, "gpt", dir);
    ADD_FAILURE() << "no error for a shape mismatch";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("lora_A.weight"), std::string::npos) << e.what();
  }
  // No Linear matches the targets.
  models::GPT llama(tiny(true), 1);
  EXPECT_THROW(models::load_adapter(llama, "llama", dir), Error);
  EXPECT_THROW(models::read_adapter_config(tmp.file("missing")), Error);
}
