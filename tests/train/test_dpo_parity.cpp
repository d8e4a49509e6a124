// DPO against a direct PyTorch computation of TRL's formula (tests/train/dpo_reference.py: trl
// 0.12's concatenated_forward log-probabilities and sigmoid dpo_loss) on a tiny random
// LlamaForCausalLM whose PEFT LoRA adapter (random A and B) is the policy and whose base
// (adapter disabled) is the reference: the summed answer log-probabilities of policy and
// reference, the loss, the chosen / rejected rewards and every LoRA gradient, within 1e-4
// relative. Skips visibly when torch, transformers or peft is not importable.
#include <gtest/gtest.h>

#include <cstdlib>
#include <map>

#include "llmkit/io/safetensors.h"
#include "llmkit/models/load.h"
#include "llmkit/models/peft.h"
#include "llmkit/nn/lora.h"
#include "llmkit/ops/ops.h"
#include "llmkit/train/align.h"
#include "tests/common/compare.h"
#include "tests/common/reference.h"
#include "tests/common/temp_dir.h"

using namespace llmkit;

namespace {

std::string skip_reason() {
  for (const char* mod : {"torch", "transformers", "peft"})
    if (!llmkit::testing::ref_python_has(mod))
      return std::string(mod) + " not importable in " + llmkit::testing::ref_python() +
             ": DPO parity skipped";
  return "";
}

double rel_err(const Tensor& ours, const Tensor& ref) {
  return llmkit::testing::rel_err(ours.to(DType::F64).contiguous().to_vector<double>(),
                                  ref.to(DType::F64).contiguous().to_vector<double>());
}

}  // namespace

TEST(DpoParity, LogRatiosLossRewardsAndLoraGradientsMatchTrlFormula) {
  if (const std::string why = skip_reason(); !why.empty()) GTEST_SKIP() << why;
  llmkit::testing::TempDir tmp;
  const std::string out = tmp.file("ref");
  const std::string cmd = llmkit::testing::ref_python() + " '" + llmkit::testing::source_dir() +
                          "/tests/train/dpo_reference.py' make '" + out + "' > '" + out +
                          ".log' 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << "reference failed: " << cmd;
  models::LoadOptions opt;
  opt.tokenizer = false;
  models::LoadedModel m = models::load(out + "/base", opt);
  ASSERT_NE(m.gpt, nullptr);
  models::load_adapter(*m.module, m.arch, out + "/adapter");
  nn::mark_only_lora_trainable(*m.module, {});
  io::SafetensorsFile f = io::load_safetensors(out + "/reference.safetensors");
  std::map<std::string, Tensor> ref(f.tensors.begin(), f.tensors.end());
  const Tensor ids = ref.at("ids"), labels = ref.at("labels");
  const int64_t B = ids.size(0) / 2;

  m.module->eval();
  Tensor ref_logps;
  {
    nn::LoraDisabled off(*m.module);
    EXPECT_EQ(off.adapters(), 4);  // q_proj and v_proj of two layers
    NoGradGuard ng;
    ref_logps = train::sequence_log_probs(m.gpt->forward(ids), labels);
  }
  const Tensor policy = train::sequence_log_probs(m.gpt->forward(ids), labels);
  EXPECT_LT(rel_err(ref_logps, ref.at("ref_logps")), 1e-5);
  EXPECT_LT(rel_err(policy, ref.at("policy_logps")), 1e-5);

  const std::vector<Tensor> p = ops::split(policy, {B, B}, 0);
  const std::vector<Tensor> r = ops::split(ref_logps, {B, B}, 0);
  const train::DpoLoss d = train::dpo_loss(p[0], p[1], r[0], r[1], 0.1);
  EXPECT_LT(rel_err(d.loss.reshape({1}), ref.at("loss")), 1e-5);
  EXPECT_LT(rel_err(d.chosen_rewards, ref.at("chosen_rewards")), 1e-4);
  EXPECT_LT(rel_err(d.rejected_rewards, ref.at("rejected_rewards")), 1e-4);

  d.loss.backward();
  int checked = 0;
  for (auto& [name, t] : m.module->named_parameters()) {
    if (name.find("lora_") == std::string::npos) {
      EXPECT_FALSE(t.grad().defined()) << name << " (frozen) got a gradient";
      continue;
    }
    const auto it = ref.find("grad.base_model.model." + name);
    ASSERT_NE(it, ref.end()) << name;
    ASSERT_TRUE(t.grad().defined()) << name;
    EXPECT_LT(rel_err(t.grad(), it->second), 1e-4) << name;
    ++checked;
  }
  EXPECT_EQ(checked, 8);
}
