// `llmkit finetune` and `llmkit classify` end to end on the tiny GPT of cli_world.h and a
// separable toy set in its vocabulary: finetune (full) reaches > 90% validation accuracy and
// prints its JSON last line, classify answers per text with a label and probabilities and with
// --data prints the report and a last JSON line; bad input is one clean error line.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>

#include "cli/cli_world.h"

using namespace llmkit::testing;
using nlohmann::json;

namespace {

// Each text's words come from its class's list (words of the tiny corpus).
std::string toy(int n, unsigned seed) {
  static const char* a[] = {"quick", "fox", "jumps", "green", "field"};
  static const char* b[] = {"lazy", "dog", "cat", "house", "birds"};
  std::mt19937 rng(seed);
  std::string s;
  for (int i = 0; i < n; ++i) {
    const bool first = i % 2 == 0;
    for (int w = 0; w < 3; ++w) s += std::string(w ? " " : "") + (first ? a : b)[rng() % 5];
    s += first ? "\tfast\n" : "\tslow\n";
  }
  return s;
}

class CliFinetune : public CliSuiteWith<&TinyWorld::train_gpt> {};

}  // namespace

TEST_F(CliFinetune, FinetuneThenClassify) {
  auto& w = world();
  const std::string train = write_file(w.dir, "ft_train.tsv", toy(120, 1));
  const std::string val = write_file(w.dir, "ft_val.tsv", toy(30, 2));
  const std::string out = w.dir.file("ft_out");
  auto r =
      run_llmkit({"finetune", "--model",         w.gpt_run, "--task",       "classify", "--train",
                  train,      "--val",           val,       "--method",     "full",     "--out",
                  out,        "--steps",         "40",      "--batch-size", "16",       "--lr",
                  "3e-3",     "--eval-interval", "20"});
  ASSERT_TRUE(succeeded(r));
  EXPECT_NE(r.err.find("trainable params: "), std::string::npos) << r.err;
  const json j = json::parse(last_line(r.out));
  EXPECT_GT(j.at("val_accuracy").get<double>(), 0.9) << r.out << r.err;
  EXPECT_GT(j.at("trainable_params").get<int64_t>(), 0);
  EXPECT_TRUE(std::filesystem::exists(out + "/confusion.txt"));

  r = run_llmkit({"classify", "--model", out, "--text", "quick fox jumps"});
  ASSERT_TRUE(succeeded(r));
  const json c = json::parse(last_line(r.out));
  EXPECT_EQ(c.at("label"), "fast");
  EXPECT_NEAR(c.at("probs").at("fast").get<double>() + c.at("probs").at("slow").get<double>(), 1.0,
              1e-5);

  r = run_llmkit({"classify", "--model", out, "--data", val});
  ASSERT_TRUE(succeeded(r));
  EXPECT_NE(r.out.find("confusion matrix"), std::string::npos);
  EXPECT_GT(json::parse(last_line(r.out)).at("accuracy").get<double>(), 0.9);
}

TEST_F(CliFinetune, BadInputIsOneCleanError) {
  auto& w = world();
  const std::string bad = write_file(w.dir, "ft_bad.tsv", "quick fox\tfast\nno tab\n");
  auto r = run_llmkit({"finetune", "--model", w.gpt_run, "--train", bad, "--val", bad, "--out",
                       w.dir.file("ft_bad_out"), "--steps", "2"});
  expect_clean_error(r, {"ft_bad.tsv:2", "no tab"}, "a TSV line without a tab");
  r = run_llmkit({"classify", "--model", w.gpt_run, "--text", "x"});
  expect_clean_error(r, {"no task head"}, "classify with a model that has no head");
}
