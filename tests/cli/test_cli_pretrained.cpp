// `llmkit eval` on a pretrained decoder (the real SmolLM2-135M-Instruct GGUF, through
// models::load; skipped, saying so, when it is not in the cache): the perplexity of ordinary
// English is low and far below that of the same words shuffled, and a model that is not a
// decoder or a bad --context is one clear error.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "cli/cli_world.h"
#include "common/reference.h"
#include "common/temp_dir.h"

namespace llmkit::testing {
namespace {

const char* kEnglish =
    "The sun rose over the quiet village, and the baker opened his shop as he did every "
    "morning. Children walked to school along the river, talking about the games they would "
    "play after class. In the market, farmers set out baskets of apples, carrots and fresh "
    "bread. An old man sat on a bench near the fountain and read his newspaper while pigeons "
    "gathered at his feet, hoping for crumbs. By noon the streets were busy with people buying "
    "food, visiting friends and enjoying the warm spring weather.\n";

std::string shuffled_words(const std::string& text, uint32_t seed) {
  std::istringstream in(text);
  std::vector<std::string> words;
  for (std::string w; in >> w;) words.push_back(w);
  std::shuffle(words.begin(), words.end(), std::mt19937(seed));
  std::string out;
  for (const auto& w : words) out += w + " ";
  return out + "\n";
}

double perplexity_of(const ProcessResult& r) {
  const auto j = nlohmann::json::parse(last_line(r.out));
  return j.at("perplexity").get<double>();
}

TEST(CliEvalPretrained, SmolLM2PerplexityOfEnglishIsLowAndOfShuffledWordsHigh) {
  const std::string model = model_path("smollm2");
  if (model.empty())
    GTEST_SKIP() << "SmolLM2 is not in " << models_dir()
                 << " (scripts/get-models.sh smollm2 fetches it)";
  TempDir d;
  const std::string english = write_file(d, "english.txt", kEnglish);
  const std::string salad = write_file(d, "salad.txt", shuffled_words(kEnglish, 7));
  auto a = run_llmkit({"eval", "--model", model, "--data", english, "--context", "48"}, "", 120);
  ASSERT_TRUE(succeeded(a)) << a.err;
  auto b = run_llmkit({"eval", "--model", model, "--data", salad, "--context", "48"}, "", 120);
  ASSERT_TRUE(succeeded(b)) << b.err;
  const double pa = perplexity_of(a), pb = perplexity_of(b);
  std::printf("  perplexity: English %.2f, shuffled %.2f\n", pa, pb);
  ASSERT_TRUE(std::isfinite(pa) && std::isfinite(pb));
  EXPECT_GT(pa, 1.0);
  EXPECT_LT(pa, 100.0);     // a 135M model on plain English, 48-token windows (40 here)
  EXPECT_GT(pb, 5.0 * pa);  // word order carries much of the information (50x here)
}

TEST(CliEvalPretrained, EncoderAndBadContextAreOneError) {
  TempDir d;
  const std::string english = write_file(d, "english.txt", kEnglish);
  const std::string minilm = model_path("minilm");
  if (!minilm.empty()) {
    expect_clean_error(run_llmkit({"eval", "--model", minilm, "--data", english}, "", 60),
                       {"bert", "decoder"}, "encoder");
  }
  const std::string model = model_path("smollm2");
  if (model.empty()) GTEST_SKIP() << "SmolLM2 is not in " << models_dir();
  expect_clean_error(
      run_llmkit({"eval", "--model", model, "--data", english, "--context", "100000"}, "", 60),
      {"context", "100000"}, "context");
}

}  // namespace
}  // namespace llmkit::testing
