// `llmkit translate` and `llmkit demo` as processes. translate: a one-layer T5 trained for four
// steps on tiny pairs translates a text and scores held-out pairs (BLEU JSON on the last line);
// a decoder model, an empty pairs file or a missing --text/--pairs are one-line errors; a text
// longer than the context is cut to block_size tokens, as --help says. demo: two steps on a tiny
// corpus end with the next commands to run; a missing corpus is a one-line error.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/cli_world.h"

namespace llmkit::testing {
namespace {

class CliTranslate : public CliSuiteWith<&TinyWorld::train_t5> {
 protected:
  static ProcessResult translate(std::vector<std::string> extra, const std::string& model = "") {
    std::vector<std::string> args = {"translate", "--model",
                                     model.empty() ? world().t5_run : model};
    args.insert(args.end(), extra.begin(), extra.end());
    return run_llmkit(args, "", 60);
  }
};

TEST_F(CliTranslate, TextAndHeldOutPairs) {
  auto a = translate({"--text", "one two three"});
  ASSERT_TRUE(succeeded(a));
  auto b = translate({"--text", "one two three"});
  ASSERT_TRUE(succeeded(b));
  EXPECT_EQ(a.out, b.out) << "greedy decoding is deterministic";
  auto r = translate({"--pairs", world().pairs, "--limit", "4"});
  ASSERT_TRUE(succeeded(r));
  const auto j = nlohmann::json::parse(last_line(r.out));
  EXPECT_EQ(j.at("pairs").get<int64_t>(), 4);
  EXPECT_GE(j.at("bleu").get<double>(), 0.0);
  EXPECT_LE(j.at("bleu").get<double>(), 100.0);
}

TEST_F(CliTranslate, TextLongerThanTheContextIsCut) {
  std::string text;
  for (int i = 0; i < 60; ++i) text += "one two ";
  auto r = translate({"--text", text, "--max-new-tokens", "4"});
  EXPECT_TRUE(succeeded(r));
  auto help = run_llmkit({"translate", "--help"});
  EXPECT_NE(help.out.find("cut to the model's block_size"), std::string::npos)
      << "the truncation is documented in --help";
}

TEST_F(CliTranslate, BadInputs) {
  const TempDir& d = world().dir;
  expect_clean_error(translate({}), {"--text or --pairs"}, "neither");
  expect_clean_error(translate({"--text", "one", "--pairs", world().pairs}), {"--text or --pairs"},
                     "both");
  expect_clean_error(translate({"--pairs", write_file(d, "empty.tsv", "")}), {"empty.tsv"},
                     "empty pairs");
  expect_clean_error(translate({"--pairs", d.file("missing.tsv")}), {"missing.tsv"},
                     "missing pairs");
  expect_clean_error(translate({"--pairs", d.path.string()}), {"directory"}, "directory pairs");
  expect_clean_error(translate({"--text", "one", "--batch-size", "0"}), {"--batch-size"},
                     "batch size 0");
  expect_clean_error(translate({"--text", "one", "--val-fraction", "0.9"}), {"--val-fraction"},
                     "val fraction 0.9");
}

TEST_F(CliTranslate, DecoderModelIsNamedAsTheProblem) {
  ASSERT_TRUE(world().train_gpt());
  expect_clean_error(translate({"--text", "one"}, world().gpt_run),
                     {"holds a gpt model", "encoder-decoder"}, "gpt model");
  // and the other way round: chat and generate need a decoder
  expect_clean_error(run_llmkit({"generate", "--model", world().t5_run, "--prompt", "one"}, "", 60),
                     {"t5"}, "generate with a t5 model");
  expect_clean_error(run_llmkit({"chat", "--model", world().t5_run}, "one\n", 60), {"t5"},
                     "chat with a t5 model");
  // eval scores text with the model's training objective; a translation model has none on text
  expect_clean_error(
      run_llmkit({"eval", "--model", world().t5_run, "--data", world().corpus}, "", 60),
      {"translate"}, "eval of a translation model on text");
}

class CliDemo : public CliSuite {
 protected:
  static void SetUpTestSuite() { make_world(); }
};

TEST_F(CliDemo, TwoStepsOnATinyCorpus) {
  const std::string out = world().dir.file("demo_run");
  auto r = run_llmkit({"demo", "--data", world().corpus, "--out", out, "--steps", "2"});
  ASSERT_TRUE(succeeded(r));
  EXPECT_NE(r.out.find("generate --model " + out), std::string::npos) << r.out;
  EXPECT_TRUE(std::filesystem::exists(out + "/model.safetensors"));
  EXPECT_TRUE(std::filesystem::exists(out + "/tokenizer.json"));
}

TEST_F(CliDemo, BadInputs) {
  const TempDir& d = world().dir;
  expect_clean_error(
      run_llmkit({"demo", "--data", d.file("missing.txt"), "--out", d.file("demo_m")}, "", 60),
      {"missing.txt"}, "missing corpus");
  expect_clean_error(
      run_llmkit({"demo", "--data", write_file(d, "empty.txt", ""), "--out", d.file("demo_e")}, "",
                 60),
      {"empty.txt"}, "empty corpus");
  expect_clean_error(run_llmkit({"demo", "--steps", "0"}, "", 60), {"--steps"}, "steps 0");
}

}  // namespace
}  // namespace llmkit::testing
