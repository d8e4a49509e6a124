// Llama-family parity against Hugging Face transformers (tests/models/llama_hf_reference.py, run
// with llmkit::testing::ref_python()):
//   - tiny random models saved by transformers itself (Qwen2 with q/k/v bias and tied head;
//     Llama with llama3 RoPE scaling, attention_bias and an untied head; Llama with linear
//     scaling): our logits within 1e-4 relative;
//   - SmolLM2-135M-Instruct: the Python side dequantises the GGUF with the `gguf` package,
//     un-permutes q/k and builds LlamaForCausalLM in fp32; we load the same weights and give
//     logits within 1e-4 relative on English, Korean and code prompts (the same ids on both
//     sides) and the same 64 greedy tokens with our KV cache.
// Skips visibly when transformers or the model is absent. The reference runs once per binary.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>

#include "llmkit/io/safetensors.h"
#include "llmkit/models/load.h"
#include "tests/common/compare.h"
#include "tests/common/reference.h"
#include "tests/common/temp_dir.h"

using namespace llmkit;
namespace fs = std::filesystem;

namespace {

double rel_err(const Tensor& ours, const Tensor& ref) {
  return llmkit::testing::rel_err(ours.to_vector<float>(), ref.to_vector<float>());
}

std::map<std::string, Tensor> read_ref(const std::string& path) {
  io::SafetensorsFile f = io::load_safetensors(path);
  return {f.tensors.begin(), f.tensors.end()};
}

// Runs the reference script once per process; "" when it failed (with a test failure).
const std::string& reference_dir(const std::string& mode) {
  static std::map<std::string, std::string> done;
  static std::unique_ptr<llmkit::testing::TempDir> tmp;
  if (!tmp) tmp = std::make_unique<llmkit::testing::TempDir>();
  auto it = done.find(mode);
  if (it != done.end()) return it->second;
  const std::string out = tmp->file(mode);
  std::string cmd = llmkit::testing::ref_python() + " " + llmkit::testing::source_dir() +
                    "/tests/models/llama_hf_reference.py " + mode + " ";
  if (mode == "smollm2") cmd += "'" + llmkit::testing::model_path("smollm2") + "' ";
  cmd += "'" + out + "' > '" + out + ".log' 2>&1";
  bool out_failed = false;
  if (std::system(cmd.c_str()) != 0) {
    ADD_FAILURE() << "reference failed: " << cmd << " (log in " << out << ".log)";
    out_failed = true;
  }
  std::string& slot = done[mode];  // assigned, then returned: GCC 12 misreads the assignment
  slot = out_failed ? "" : out;    // as returning a temporary (-Wreturn-local-addr)
  return slot;
}

bool have_transformers() {
  return llmkit::testing::ref_python_has("transformers");
}

void check_tiny(const std::string& name) {
  if (!have_transformers())
    GTEST_SKIP() << "transformers not importable in " << llmkit::testing::ref_python()
                 << ": llama parity (" << name << ") skipped";
  const std::string& out = reference_dir("tiny");
  ASSERT_FALSE(out.empty());
  const std::string dir = out + "/" + name;
  models::LoadOptions opt;
  opt.tokenizer = false;
  models::LoadedModel m = models::load(dir, opt);
  ASSERT_NE(m.gpt, nullptr);
  EXPECT_EQ(m.source, models::SourceKind::HfDir);
  const auto ref = read_ref(dir + "/reference.safetensors");
  NoGradGuard ng;
  const Tensor logits = m.gpt->forward(ref.at("ids"));
  const double e = rel_err(logits, ref.at("logits"));
  std::printf("%s: max relative error of logits vs transformers %.3g\n", name.c_str(), e);
  EXPECT_LE(e, 1e-4);
}

}  // namespace

TEST(LlamaHfParity, TinyQwen2QkvBiasTied) {
  check_tiny("qwen2");
}
TEST(LlamaHfParity, TinyLlama3RopeScalingUntiedAttentionBias) {
  check_tiny("llama3");
}
TEST(LlamaHfParity, TinyLinearRopeScaling) {
  check_tiny("linear");
}

TEST(LlamaHfParity, SmolLM2LogitsAndGreedyDecoding) {
  const std::string gguf = llmkit::testing::model_path("smollm2");
  if (gguf.empty())
    GTEST_SKIP() << "SmolLM2 GGUF not found under " << llmkit::testing::models_dir()
                 << " (scripts/get-models.sh): parity skipped";
  if (!have_transformers() || !llmkit::testing::ref_python_has("gguf"))
    GTEST_SKIP() << "transformers or gguf not importable in " << llmkit::testing::ref_python()
                 << ": SmolLM2 parity skipped";
  const std::string& out = reference_dir("smollm2");
  ASSERT_FALSE(out.empty());
  // Our GGUF path: our dequantisation, our q/k un-permutation, our tokenizer.
  models::LoadedModel m = models::load(gguf);
  ASSERT_NE(m.gpt, nullptr);
  ASSERT_TRUE(m.tokenizer.has_value());
  std::printf("SmolLM2 GGUF loaded (dequantised to f32) in %.3f s\n", m.load_seconds);
  const auto ref = read_ref(out + "/reference.safetensors");
  NoGradGuard ng;
  const char* prompts[] = {"The capital of France is",
                           "한국의 수도는 서울이고, 가장 큰 항구 도시는",
                           "def fibonacci(n):\n    if n < 2:\n        return n\n"};
  for (int n = 0; ref.count("ids." + std::to_string(n)); ++n) {
    const std::string k = std::to_string(n);
    const Tensor ids = ref.at("ids." + k);
    EXPECT_EQ(m.tokenizer->encode(prompts[n]), ids.to_vector<int32_t>())
        << "prompt " << n << ": our GGUF tokenizer differs from transformers'";
    const double e = rel_err(m.gpt->forward(ids), ref.at("logits." + k));
    std::printf("prompt %d (%lld tokens): max relative error of logits %.3g\n", n,
                static_cast<long long>(ids.size(1)), e);
    EXPECT_LE(e, 1e-4) << "prompt " << n;
    // Greedy decoding with our KV cache: prefill, then one token at a time.
    const std::vector<int32_t> want = ref.at("greedy." + k).to_vector<int32_t>();
    auto caches = m.gpt->make_caches(1, ids.size(1) + static_cast<int64_t>(want.size()));
    Tensor logits = m.gpt->forward(ids, &caches);
    std::vector<int32_t> got;
    for (size_t i = 0; i < want.size(); ++i) {
      const int64_t T = logits.size(1), V = logits.size(2);
      const std::vector<float> last = logits.slice(1, T - 1, T).contiguous().to_vector<float>();
      int32_t best = 0;
      for (int64_t v = 1; v < V; ++v)
        if (last[v] > last[best]) best = static_cast<int32_t>(v);
      got.push_back(best);
      logits = m.gpt->forward(Tensor::from_vector(std::vector<int32_t>{best}, {1, 1}), &caches);
    }
    EXPECT_EQ(got, want) << "prompt " << n << ": greedy tokens differ from transformers'";
  }
}
