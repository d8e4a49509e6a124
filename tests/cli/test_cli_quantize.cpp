// `llmkit quantize` as a process: --help lists the types; a trained GPT run exported to GGUF
// (f32 and f16) loads back in `llmkit generate` with the same greedy text (f32); a bad --type
// names the choices; a missing input, a missing --out and an unsupported model are one clean
// error line each. The file contents are checked in tests/models/test_gguf_export.cpp.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "cli/cli_world.h"

namespace llmkit::testing {
namespace {

namespace fs = std::filesystem;

class CliQuantize : public CliSuiteWith<&TinyWorld::train_gpt> {};

TEST_F(CliQuantize, HelpListsTheTypes) {
  auto r = run_llmkit({"quantize", "--help"});
  ASSERT_TRUE(succeeded(r));
  for (const char* s : {"--model", "--type", "--out", "q4_0", "q4_k", "q6_k", "bf16"})
    EXPECT_NE(r.out.find(s), std::string::npos) << s << " missing from --help:\n" << r.out;
}

TEST_F(CliQuantize, GptRunToGgufGeneratesTheSameText) {
  const std::string out = world().dir.file("gpt-f32.gguf");
  auto r = run_llmkit({"quantize", "--model", world().gpt_run, "--type", "f32", "--out", out});
  ASSERT_TRUE(succeeded(r));
  const auto j = nlohmann::json::parse(last_line(r.out));
  EXPECT_EQ(j["out"], out);
  EXPECT_EQ(j["type"], "f32");
  EXPECT_EQ(j["bytes"].get<uintmax_t>(), fs::file_size(out));
  EXPECT_NE(r.err.find("layer 1/1"), std::string::npos) << "no progress line: " << r.err;
  const std::vector<std::string> gen = {"--prompt", "the quick",        "--temperature",
                                        "0",        "--max-new-tokens", "6"};
  auto args = [&](const std::string& model) {
    std::vector<std::string> a = {"generate", "--model", model};
    a.insert(a.end(), gen.begin(), gen.end());
    return a;
  };
  auto g1 = run_llmkit(args(world().gpt_run)), g2 = run_llmkit(args(out));
  ASSERT_TRUE(succeeded(g1));
  ASSERT_TRUE(succeeded(g2));
  EXPECT_EQ(g1.out, g2.out);
  const std::string f16 = world().dir.file("gpt-f16.gguf");
  ASSERT_TRUE(succeeded(run_llmkit({"quantize", "--model", out, "--type", "F16", "--out", f16})));
  EXPECT_LT(fs::file_size(f16), fs::file_size(out));
}

TEST_F(CliQuantize, CleanErrors) {
  const std::string out = world().dir.file("x.gguf");
  expect_clean_error(
      run_llmkit({"quantize", "--model", world().gpt_run, "--type", "q3_k", "--out", out}),
      {"q3_k", "q4_0", "q6_k"}, "bad --type");
  expect_clean_error(
      run_llmkit({"quantize", "--model", world().dir.file("none"), "--type", "f16", "--out", out}),
      {"none"}, "missing input");
  expect_clean_error(run_llmkit({"quantize", "--model", world().gpt_run, "--type", "f16"}),
                     {"--out"}, "missing --out");
  // A GPT run llama.cpp's gpt2 graph cannot compute: post-LN.
  const std::string post = world().dir.file("post_ln_run");
  fs::create_directories(post);
  for (const char* f : {"model.safetensors", "tokenizer.json"})
    fs::copy_file(world().gpt_run + "/" + f, post + "/" + f);
  write_file(world().dir, "post_ln_run/config.json", TinyWorld::gpt_model(R"(, "post_ln": true)"));
  expect_clean_error(run_llmkit({"quantize", "--model", post, "--type", "f16", "--out", out}),
                     {"post_ln"}, "post-LN model");
  EXPECT_FALSE(fs::exists(out));
}

}  // namespace
}  // namespace llmkit::testing
