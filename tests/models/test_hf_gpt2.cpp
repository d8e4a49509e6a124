// Hugging Face GPT-2 import/export (models/hf_gpt2.h). With transformers in the reference Python:
// random tiny GPT2LMHeadModels (tied and untied lm_head) saved by save_pretrained give our model
// the same logits (1e-4 relative), also with the "transformer." prefix stripped from the names,
// and what we export loads back into transformers with no missing or unexpected tensor and the
// same logits (tests/models/hf_gpt2_ref.py). Without Python: config translation, refusals, and
// errors naming the tensor and both shapes.
#include <gtest/gtest.h>

#include <cstdlib>
#include <nlohmann/json.hpp>

#include "common/error_of.h"
#include "llmkit/models/hf_gpt2.h"
#include "tests/common/parity.h"
#include "tests/common/reference.h"
#include "tests/common/temp_dir.h"

using namespace llmkit;
using llmkit::testing::error_of;
using llmkit::testing::rel_err;
using nlohmann::json;

namespace {

bool run_ref(const std::string& args) {
  const std::string cmd = llmkit::testing::ref_python() + " " + llmkit::testing::source_dir() +
                          "/tests/models/hf_gpt2_ref.py " + args;
  return std::system(cmd.c_str()) == 0;
}

json tiny_hf_config() {
  return json{{"model_type", "gpt2"}, {"vocab_size", 40},
              {"n_positions", 16},    {"n_embd", 16},
              {"n_layer", 1},         {"n_head", 2},
              {"n_inner", nullptr},   {"activation_function", "gelu_new"}};
}

}  // namespace

TEST(HfGpt2, ConfigTranslatesBothWays) {
  const models::GPTConfig c = models::gpt2_config_from_hf(tiny_hf_config());
  EXPECT_EQ(c.arch, "gpt");
  EXPECT_EQ(c.vocab_size, 40);
  EXPECT_EQ(c.block_size, 16);
  EXPECT_EQ(c.n_embd, 16);
  EXPECT_EQ(c.hidden(), 64);
  EXPECT_TRUE(c.tie_embeddings);
  EXPECT_DOUBLE_EQ(c.norm_eps, 1e-5);
  const json back = models::gpt2_config_to_hf(c);
  for (const char* k : {"vocab_size", "n_positions", "n_embd", "n_layer", "n_head"})
    EXPECT_EQ(back.at(k), tiny_hf_config().at(k)) << k;
  EXPECT_EQ(back.at("activation_function"), "gelu_new");
  json j = tiny_hf_config();
  j["activation_function"] = "gelu_pytorch_tanh";  // the same function
  EXPECT_NO_THROW(models::gpt2_config_from_hf(j));
}

TEST(HfGpt2, ConfigRefusesWhatWeCannotRun) {
  auto refused = [](const char* key, json value) {
    json j = tiny_hf_config();
    j[key] = value;
    return error_of([&] { models::gpt2_config_from_hf(j); });
  };
  // "gelu" in transformers is the exact erf form; our GPT's GELU is the tanh one.
  EXPECT_NE(refused("activation_function", "gelu").find("activation_function 'gelu'"),
            std::string::npos);
  EXPECT_NE(refused("activation_function", "relu").find("activation_function"), std::string::npos);
  EXPECT_NE(refused("scale_attn_by_inverse_layer_idx", true).find("scale_attn_by_inverse"),
            std::string::npos);
  EXPECT_NE(refused("model_type", "llama").find("not gpt2"), std::string::npos);
  models::GPTConfig llama;
  llama.arch = "llama";
  llama.pos_encoding = "rope";
  llama.norm = "rmsnorm";
  llama.activation = "swiglu";
  EXPECT_NE(error_of([&] { models::gpt2_config_to_hf(llama); }).find("not the GPT-2 layout"),
            std::string::npos);
}

TEST(HfGpt2, WeightErrorsNameTheTensorAndShapes) {
  models::GPT model(models::gpt2_config_from_hf(tiny_hf_config()), 1);
  const io::NamedTensors w = models::gpt2_hf_weights(model);
  EXPECT_NO_THROW(models::gpt2_load_hf_weights(model, w));
  io::NamedTensors bad = w;
  for (auto& [n, t] : bad)
    if (n == "transformer.h.0.attn.c_attn.weight") t = Tensor::zeros({48, 16});  // [out, in]
  const std::string e = error_of([&] { models::gpt2_load_hf_weights(model, bad); });
  EXPECT_NE(e.find("transformer.h.0.attn.c_attn.weight"), std::string::npos) << e;
  EXPECT_NE(e.find("[48, 16]"), std::string::npos) << e;
  EXPECT_NE(e.find("[16, 48]"), std::string::npos) << e;
  io::NamedTensors missing;
  for (auto& [n, t] : w)
    if (n != "transformer.ln_f.bias") missing.emplace_back(n, t);
  EXPECT_NE(error_of([&] {
              models::gpt2_load_hf_weights(model, missing);
            }).find("missing tensor 'ln_f.bias'"),
            std::string::npos);
  io::NamedTensors extra = w;
  extra.emplace_back("transformer.h.0.attn.bias", Tensor::zeros({1, 1, 16, 16}));  // ignored
  EXPECT_NO_THROW(models::gpt2_load_hf_weights(model, extra));
  extra.emplace_back("score.weight", Tensor::zeros({2, 16}));
  EXPECT_NE(error_of([&] {
              models::gpt2_load_hf_weights(model, extra);
            }).find("unexpected tensor 'score.weight'"),
            std::string::npos);
}

TEST(HfGpt2, TransformersTinyModelsLoadAndRoundTrip) {
  if (!llmkit::testing::ref_python_has("transformers"))
    GTEST_SKIP() << "transformers does not import in " << llmkit::testing::ref_python()
                 << ": Hugging Face GPT-2 round trip skipped (scripts/install-deps.sh --test)";
  const llmkit::testing::TempDir tmp;
  ASSERT_TRUE(run_ref("tiny " + tmp.path.string()));
  const io::SafetensorsFile ref = io::load_safetensors(tmp.file("tiny_ref.safetensors"));
  const Tensor ids = ref.get("ids");
  NoGradGuard ng;
  for (const std::string name : {"gpt2", "gpt2_untied"}) {
    auto model = models::load_hf_gpt2_dir(tmp.file(name));
    EXPECT_EQ(model->config().tie_embeddings, name == "gpt2");
    const double e = rel_err(model->forward(ids), ref.get(name + ".logits"));
    std::printf("  %-12s logits rel err %.2e\n", name.c_str(), e);
    EXPECT_LT(e, 1e-4) << name;

    // The same file with the "transformer." prefix stripped (a GPT2Model-style file).
    const io::SafetensorsFile f = io::load_safetensors(tmp.file(name + "/model.safetensors"));
    io::NamedTensors bare;
    for (const auto& [n, t] : f.tensors)
      bare.emplace_back(n.rfind("transformer.", 0) == 0 ? n.substr(12) : n, t);
    models::GPT again(model->config(), 7);
    again.eval();
    models::gpt2_load_hf_weights(again, bare);
    const double e2 = rel_err(again.forward(ids), ref.get(name + ".logits"));
    std::printf("  %-12s logits rel err %.2e (names without transformer.)\n", name.c_str(), e2);
    EXPECT_LT(e2, 1e-4) << name;

    models::save_hf_gpt2_dir(*model, tmp.file("ours_" + name));
  }
  EXPECT_TRUE(run_ref("check " + tmp.path.string()))
      << "transformers could not load llmkit's export, or its logits differ";
}
