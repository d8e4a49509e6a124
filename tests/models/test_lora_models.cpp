// apply_lora on real model trees: a tiny models::GPT in the GPT-2 and llama layouts and a tiny
// models::Bert get adapters on PEFT's default targets (c_attn / q_proj, v_proj / query, value)
// under PEFT's parameter names, their outputs are unchanged at init (B = 0) and after
// merge_and_unload, a quantised base runs through the model, and errors are one clear line.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/gradcheck.h"
#include "common/reference.h"
#include "llmkit/core/error.h"
#include "llmkit/models/bert.h"
#include "llmkit/models/gpt.h"
#include "llmkit/models/hf_llama.h"
#include "llmkit/models/load.h"
#include "llmkit/nn/layers.h"
#include "llmkit/nn/lora.h"

using namespace llmkit;
using llmkit::testing::max_abs_diff;

namespace {

models::GPTConfig tiny_gpt(bool llama) {
  models::GPTConfig c = llama ? models::llama_base_config() : models::GPTConfig();
  c.n_layer = 2;
  c.n_head = 4;
  c.n_kv_head = llama ? 2 : 0;
  c.n_embd = 32;
  c.block_size = 16;
  c.vocab_size = 40;
  c.tie_embeddings = !llama;
  return c;
}

Tensor ids() {
  return Tensor::from_vector(std::vector<int32_t>{1, 5, 9, 3, 7, 2, 8, 4, 6, 0, 11, 12}, {2, 6});
}

std::vector<std::string> lora_params(const nn::Module& m) {
  std::vector<std::string> v;
  for (auto& [n, t] : m.named_parameters())
    if (n.find(".lora_") != std::string::npos) v.push_back(n);
  return v;
}

// Random B everywhere (so the adapters change the output).
void randomise_b(nn::Module& m) {
  Generator g(99);
  NoGradGuard ng;
  for (auto& [n, t] : m.named_parameters())
    if (n.find(".lora_B.") != std::string::npos) g.uniform_(t, -0.2, 0.2);
}

void check_gpt(bool llama, const std::vector<std::string>& want) {
  models::GPT m(tiny_gpt(llama), 1);
  m.eval();
  NoGradGuard ng;
  const Tensor y0 = m.forward(ids());
  nn::LoraConfig c;
  c.r = 4;
  c.alpha = 8;
  c.target_modules = nn::default_lora_targets(llama ? "llama" : "gpt");
  const auto adapted = nn::apply_lora(m, c, 3);
  std::vector<std::string> names;
  for (const auto& a : adapted) {
    names.push_back(a + ".lora_A.weight");
    names.push_back(a + ".lora_B.weight");
  }
  EXPECT_EQ(names, want);
  EXPECT_EQ(lora_params(m), want);
  EXPECT_EQ(max_abs_diff(m.forward(ids()), y0), 0.0) << "B = 0 must leave the logits unchanged";
  randomise_b(m);
  const Tensor y1 = m.forward(ids());
  EXPECT_GT(max_abs_diff(y1, y0), 1e-4);
  // KV-cached decoding follows the adapted projections too.
  auto caches = m.make_caches(2, 16);
  const Tensor a = m.forward(ids().slice(1, 0, 4), &caches);
  const Tensor b = m.forward(ids().slice(1, 4, 6), &caches);
  EXPECT_LT(max_abs_diff(b, y1.slice(1, 4, 6)), 1e-4);
  EXPECT_LT(max_abs_diff(a, y1.slice(1, 0, 4)), 1e-4);
  nn::merge_and_unload(m);
  EXPECT_TRUE(lora_params(m).empty());
  EXPECT_LT(max_abs_diff(m.forward(ids()), y1), 1e-4);
}

}  // namespace

TEST(LoraModels, Gpt2LayoutDefaults) {
  check_gpt(false, {"h.0.attn.c_attn.lora_A.weight", "h.0.attn.c_attn.lora_B.weight",
                    "h.1.attn.c_attn.lora_A.weight", "h.1.attn.c_attn.lora_B.weight"});
}

TEST(LoraModels, LlamaLayoutDefaults) {
  std::vector<std::string> want;
  for (int i = 0; i < 2; ++i)
    for (const char* p : {"q_proj", "v_proj"})
      for (const char* ab : {"lora_A", "lora_B"})
        want.push_back("model.layers." + std::to_string(i) + ".self_attn." + p + "." + ab +
                       ".weight");
  check_gpt(true, want);
}

TEST(LoraModels, BertDefaults) {
  models::BertConfig c;
  c.vocab_size = 40;
  c.n_embd = 32;
  c.n_head = 4;
  c.n_layer = 2;
  c.pretraining_heads = false;
  models::Bert m(c, 1);
  m.eval();
  NoGradGuard ng;
  const Tensor y0 = m.encode(ids());
  nn::LoraConfig lc;
  lc.r = 2;
  lc.target_modules = nn::default_lora_targets("bert");
  const auto adapted = nn::apply_lora(m, lc, 3);
  EXPECT_EQ(adapted, (std::vector<std::string>{"bert.encoder.layer.0.attention.self.query",
                                               "bert.encoder.layer.0.attention.self.value",
                                               "bert.encoder.layer.1.attention.self.query",
                                               "bert.encoder.layer.1.attention.self.value"}));
  EXPECT_EQ(max_abs_diff(m.encode(ids()), y0), 0.0);
  randomise_b(m);
  const Tensor y1 = m.encode(ids());
  EXPECT_GT(max_abs_diff(y1, y0), 1e-4);
  nn::merge_lora(m);
  EXPECT_LT(max_abs_diff(m.encode(ids()), y1), 1e-4);
  nn::unmerge_lora(m);
  EXPECT_LT(max_abs_diff(m.encode(ids()), y1), 1e-4);
}

TEST(LoraModels, TrainableLineOnGpt) {
  models::GPT m(tiny_gpt(false), 1);
  const int64_t all = m.num_parameters();
  nn::LoraConfig c;
  c.r = 4;
  c.target_modules = {"c_attn"};
  nn::apply_lora(m, c, 3);
  nn::mark_only_lora_trainable(m, {});
  const int64_t lora = 2 * (4 * 32 + 96 * 4);
  const nn::ParamCount pc = nn::count_parameters(m);
  EXPECT_EQ(pc.trainable, lora);
  EXPECT_EQ(pc.all, all + lora);
}

TEST(LoraModels, QuantisedBaseRunsThroughTheModel) {
  models::GPT m(tiny_gpt(true), 1);
  m.eval();
  NoGradGuard ng;
  const Tensor y0 = m.forward(ids());
  for (auto& [name, mod] : m.named_modules())
    if (auto* l = dynamic_cast<nn::Linear*>(mod); l != nullptr) l->quantize_weight("q8_0");
  nn::LoraConfig c;
  c.target_modules = {"q_proj", "v_proj"};
  nn::apply_lora(m, c, 3);
  const Tensor y1 = m.forward(ids());
  EXPECT_LT(llmkit::testing::rel_err(y1.to_vector<double>(), y0.to_vector<double>()), 5e-2);
  auto caches = m.make_caches(2, 8);  // the cache's dtype from a quantised q_proj
  EXPECT_EQ(caches[0].k.dtype(), DType::F32);
}

TEST(LoraModels, Errors) {
  models::GPT m(tiny_gpt(true), 1);
  nn::LoraConfig c;
  c.target_modules = {"c_attn"};  // GPT-2's name on a llama layout
  try {
    nn::apply_lora(m, c, 1);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("model.layers.0.self_attn.q_proj"), std::string::npos)
        << e.what();
  }
  c.target_modules = {"q_proj"};
  c.r = 0;
  EXPECT_THROW(nn::apply_lora(m, c, 1), Error);
  c.r = 2;
  nn::apply_lora(m, c, 1);
  EXPECT_THROW(nn::apply_lora(m, c, 1), Error);
}

// QLoRA's memory on a real model: its Linear weights in f32 against Q8_0 and Q4_0 blocks (the
// embeddings stay f32: they are not Linears). Prints the numbers docs/lora.md quotes.
void measure_quantised_base(const std::string& name, const std::string& label) {
  const std::string path = llmkit::testing::model_path(name);
  if (path.empty())
    GTEST_SKIP() << label << " not found under " << llmkit::testing::models_dir()
                 << " (scripts/get-models.sh): memory measurement skipped";
  models::LoadOptions opt;
  opt.tokenizer = false;
  models::LoadedModel m = models::load(path, opt);
  auto linear_bytes = [&] {
    size_t b = 0;
    for (auto& [n, mod] : m.module->named_modules())
      if (auto* l = dynamic_cast<nn::Linear*>(mod); l != nullptr) b += l->weight_bytes();
    return b;
  };
  size_t all_f32 = 0;
  for (auto& [n, t] : m.module->named_parameters()) all_f32 += t.numel() * 4;
  const size_t f32 = linear_bytes();
  std::vector<std::pair<std::string, size_t>> rows = {{"f32", f32}};
  for (const char* type : {"q8_0", "q4_0"}) {
    if (rows.size() > 1) m = models::load(path, opt);  // fresh f32 weights
    for (auto& [n, mod] : m.module->named_modules())
      if (auto* l = dynamic_cast<nn::Linear*>(mod); l != nullptr && !l->weight_quantised())
        l->quantize_weight(type);
    rows.emplace_back(type, linear_bytes());
  }
  std::printf("%s: all parameters f32 %.1f MiB; Linear weights:\n", label.c_str(),
              all_f32 / 1048576.0);
  for (auto& [t, b] : rows)
    std::printf("  %-5s %8.1f MiB (%.2fx smaller than f32); whole model %.1f MiB\n", t.c_str(),
                b / 1048576.0, double(f32) / double(b), (all_f32 - f32 + b) / 1048576.0);
  EXPECT_NEAR(double(f32) / double(rows[1].second), 32.0 / 8.5, 0.01);
  EXPECT_NEAR(double(f32) / double(rows[2].second), 32.0 / 4.5, 0.01);
}

TEST(LoraModels, QuantisedBaseMemoryOnSmolLM2) {
  measure_quantised_base("smollm2", "SmolLM2-135M");
}

TEST(LoraModels, QuantisedBaseMemoryOnMiniLM) {
  measure_quantised_base("minilm", "all-MiniLM-L6-v2");
}
