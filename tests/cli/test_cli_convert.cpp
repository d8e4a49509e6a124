// `llmkit convert` as a process: SmolLM2 .gguf -> Hugging Face dir that transformers loads
// (AutoModelForCausalLM + AutoTokenizer; tests/cli/convert_check.py: every weight equal to the
// gguf package's dequantisation, tokenization equal to ours and to transformers' GGUF tokenizer);
// HF dir -> llmkit dir -> HF dir gives byte-identical tensors; `generate --model` on the GGUF and
// on the converted dir; clean errors. Skips visibly without the model or transformers.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli/cli_world.h"
#include "common/reference.h"

namespace llmkit::testing {
namespace {

namespace fs = std::filesystem;

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

TEST(CliConvert, SmolLM2GgufToHfLoadsInTransformersAndRoundTrips) {
  const std::string gguf = model_path("smollm2");
  if (gguf.empty())
    GTEST_SKIP() << "SmolLM2 GGUF not found under " << models_dir()
                 << " (scripts/get-models.sh): convert test skipped";
  const TempDir dir;
  const std::string hf = dir.file("hf"), lk = dir.file("lk"), hf2 = dir.file("hf2");
  auto a = run_llmkit({"convert", "--from", gguf, "--to", hf, "--format", "hf"}, "", 300);
  ASSERT_TRUE(succeeded(a));
  for (const char* f :
       {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"})
    EXPECT_TRUE(fs::exists(hf + "/" + f)) << f;
  EXPECT_NE(slurp(hf + "/tokenizer_config.json").find("<|im_start|>"), std::string::npos)
      << "chat template missing";
  // HF -> llmkit -> HF: the same tensors, byte for byte.
  ASSERT_TRUE(succeeded(run_llmkit({"convert", "--from", hf, "--to", lk, "--format", "llmkit"})));
  ASSERT_TRUE(succeeded(run_llmkit({"convert", "--from", lk, "--to", hf2, "--format", "hf"})));
  EXPECT_TRUE(slurp(hf + "/model.safetensors") == slurp(hf2 + "/model.safetensors"))
      << "round trip changed the tensors";
  EXPECT_EQ(slurp(hf + "/config.json"), slurp(hf2 + "/config.json"));
  EXPECT_EQ(slurp(lk + "/config.json").find("model_type"), std::string::npos);
  // generate on the GGUF and on the converted dir: the same greedy text. Both in f32: the GGUF
  // through --no-cache (the training forward on its dequantised weights), the directory on the
  // engine's f32 path (by default a .gguf runs on its Q4_1 blocks with 8-bit activations, which
  // is llama.cpp's arithmetic, not the f32 model's).
  auto g1 = run_llmkit({"generate", "--model", gguf, "--prompt", "The capital of France is",
                        "--temperature", "0", "--max-new-tokens", "8", "--no-cache"},
                       "", 300);
  auto g2 = run_llmkit({"generate", "--model", hf, "--prompt", "The capital of France is",
                        "--temperature", "0", "--max-new-tokens", "8"},
                       "", 300);
  ASSERT_TRUE(succeeded(g1));
  ASSERT_TRUE(succeeded(g2));
  EXPECT_EQ(g1.out, g2.out);
  std::printf("generate: %s", g1.out.c_str());
  if (!ref_python_has("transformers") || !ref_python_has("gguf")) {
    GTEST_SKIP() << "transformers or gguf not importable in " << ref_python()
                 << ": the transformers half of the convert test skipped";
  }
  const std::string cmd = ref_python() + " " + source_dir() + "/tests/cli/convert_check.py '" + hf +
                          "' '" + gguf + "' '" + llmkit_binary() + "' > '" + dir.file("check.log") +
                          "' 2>&1";
  const int rc = std::system(cmd.c_str());
  const std::string log = slurp(dir.file("check.log"));
  std::printf("%s", log.c_str());
  EXPECT_EQ(rc, 0) << log;
}

TEST(CliConvert, CleanErrors) {
  const TempDir dir;
  expect_clean_error(run_llmkit({"convert", "--from", dir.file("none"), "--to", dir.file("x")}),
                     {"none"}, "missing input");
  write_file(dir, "config.json", R"({"model_type": "falcon"})");
  expect_clean_error(run_llmkit({"convert", "--from", dir.path.string(), "--to", dir.file("x")}),
                     {"falcon"}, "unknown model_type");
  expect_clean_error(run_llmkit({"convert", "--from", dir.path.string(), "--to", dir.file("x"),
                                 "--format", "onnx"}),
                     {"onnx"}, "bad format");
}

}  // namespace
}  // namespace llmkit::testing
