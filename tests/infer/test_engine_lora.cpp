// infer::Engine reads a model's base weights by name, so a model with a LoRA adapter or a
// quantised base (QLoRA) must be refused with one clear line; after merge_and_unload the engine
// gives the adapted model's logits.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "common/compare.h"
#include "llmkit/core/error.h"
#include "llmkit/infer/engine.h"
#include "llmkit/models/hf_llama.h"
#include "llmkit/nn/layers.h"
#include "llmkit/nn/lora.h"

using namespace llmkit;

namespace {

models::LoadedModel tiny_llama() {
  models::GPTConfig c = models::llama_base_config();
  c.n_layer = 2;
  c.n_head = 2;
  c.n_embd = 32;
  c.block_size = 32;
  c.vocab_size = 40;
  models::LoadedModel m;
  m.arch = "llama";
  m.path = "test";
  m.module = std::make_unique<models::GPT>(c, 3);
  m.gpt = static_cast<models::GPT*>(m.module.get());
  m.gpt_config = c;
  m.module->eval();
  return m;
}

std::string error_of(const models::LoadedModel& m) {
  try {
    infer::EngineOptions o;
    o.weight_type = kernels::GgmlType::F32;
    infer::Engine e(m, o);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(EngineLora, RefusesAdaptersAndQuantisedBasesAndRunsMerged) {
  models::LoadedModel m = tiny_llama();
  nn::LoraConfig c;
  c.target_modules = {"q_proj", "v_proj"};
  nn::apply_lora(*m.module, c, 1);
  EXPECT_NE(error_of(m).find("engine: 'model.layers.0.self_attn.q_proj' has a LoRA adapter"),
            std::string::npos)
      << error_of(m);
  {
    Generator g(2);
    NoGradGuard ng;
    for (auto& [n, p] : m.module->named_parameters())
      if (n.find(".lora_B.") != std::string::npos) g.uniform_(p, -0.5, 0.5);
  }
  const std::vector<int32_t> ids = {1, 5, 7, 2, 9, 11};
  Tensor want;
  {
    NoGradGuard ng;
    want = m.gpt->forward(Tensor::from_vector(ids, {1, 6}));
  }
  nn::merge_and_unload(*m.module);
  infer::EngineOptions o;
  o.weight_type = kernels::GgmlType::F32;
  infer::Engine e(m, o);
  const auto logits = e.eval(ids, /*all_logits=*/true);
  const std::vector<float> got(logits.begin(), logits.end());
  EXPECT_LT(llmkit::testing::rel_err(got, want.to_vector<float>()), 2e-5);

  models::LoadedModel q = tiny_llama();
  for (auto& [name, mod] : q.module->named_modules())
    if (auto* l = dynamic_cast<nn::Linear*>(mod); l != nullptr && name.find("v_proj") != name.npos)
      l->quantize_weight("q8_0");
  EXPECT_NE(error_of(q).find("quantised base weight"), std::string::npos) << error_of(q);
}
