// `llmkit embed` as a process. On all-MiniLM-L6-v2 (scripts/get-models.sh; skipped visibly when
// absent): one JSON line per text, 384 numbers each, unit length by the model's default and with
// --normalize, not with --no-normalize; --file reads one text per line (blank lines included);
// related sentences score closer than unrelated ones. Errors (no model needed): a decoder model
// directory, a missing directory, a directory without tokenizer.json, no text.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "cli/cli_world.h"
#include "common/reference.h"

using namespace llmkit::testing;

namespace {

std::vector<std::vector<double>> vectors_of(const std::string& out) {
  std::vector<std::vector<double>> v;
  for (const auto& line : lines_of(out))
    v.push_back(nlohmann::json::parse(line).at("embedding").get<std::vector<double>>());
  return v;
}

double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) s += a[i] * b[i];
  return s;
}

double norm(const std::vector<double>& a) {
  return std::sqrt(dot(a, a));
}

}  // namespace

TEST(CliEmbed, MiniLMPrintsOneUnitVectorPerText) {
  const std::string dir = model_path("minilm");
  if (dir.empty())
    GTEST_SKIP() << "all-MiniLM-L6-v2 is not in " << models_dir()
                 << " (scripts/get-models.sh): llmkit embed test skipped";
  setenv("LLMKIT_THREADS", "1", 1);
  const auto r = run_llmkit({"embed", "--model", dir, "--text", "A man is eating food.", "--text",
                             "A man is eating a piece of bread.", "--text",
                             "A man is riding a horse.", "--text", "오늘 날씨가 정말 좋네요."});
  ASSERT_TRUE(succeeded(r));
  const auto v = vectors_of(r.out);
  ASSERT_EQ(v.size(), 4u) << r.out;
  for (const auto& e : v) {
    EXPECT_EQ(e.size(), 384u);
    EXPECT_NEAR(norm(e), 1.0, 1e-5);  // MiniLM's modules.json ends with Normalize
  }
  EXPECT_GT(dot(v[0], v[1]), dot(v[0], v[2])) << "food/bread should be closer than food/horse";

  const auto plain = run_llmkit({"embed", "--model", dir, "--text", "A man is eating food.",
                                 "--pooling", "cls", "--no-normalize", "--max-length", "8"});
  ASSERT_TRUE(succeeded(plain));
  const auto p = vectors_of(plain.out);
  ASSERT_EQ(p.size(), 1u);
  EXPECT_GT(std::abs(norm(p[0]) - 1.0), 1e-3) << "--no-normalize left the vector at unit length";

  // --file: every line is a text, a blank one too; "-" is stdin.
  const auto f = run_llmkit({"embed", "--model", dir, "--file", "-", "--normalize"},
                            "first line\n\nthird line\n");
  ASSERT_TRUE(succeeded(f));
  const auto fv = vectors_of(f.out);
  ASSERT_EQ(fv.size(), 3u);
  for (const auto& e : fv) EXPECT_NEAR(norm(e), 1.0, 1e-5);
}

class CliEmbedErrors : public CliSuiteWith<&TinyWorld::train_gpt> {};

TEST_F(CliEmbedErrors, RefusesWhatIsNotAnEncoder) {
  expect_clean_error(run_llmkit({"embed", "--model", world().gpt_run, "--text", "hi"}),
                     {"not a BERT encoder"}, "a decoder model directory");
  const std::string missing = world().dir.file("no_such_model");
  expect_clean_error(run_llmkit({"embed", "--model", missing, "--text", "hi"}),
                     {"no_such_model", "not a directory"}, "a missing model directory");
  expect_clean_error(run_llmkit({"embed", "--model", world().gpt_run}), {"--text or --file"},
                     "no text");
  expect_clean_error(
      run_llmkit({"embed", "--model", world().gpt_run, "--file", world().dir.file("none.txt")}),
      {"none.txt"}, "a missing --file");
  const std::string dir = model_path("minilm");
  if (dir.empty()) return;
  // A copy of MiniLM without its tokenizer.json (the weights linked, not copied).
  const std::string no_tok = world().dir.file("minilm_no_tokenizer");
  std::filesystem::create_directories(no_tok);
  for (const char* f : {"config.json", "model.safetensors"})
    std::filesystem::create_symlink(dir + "/" + f, no_tok + "/" + f);
  expect_clean_error(run_llmkit({"embed", "--model", no_tok, "--text", "hi"}), {"tokenizer.json"},
                     "no tokenizer");
}
