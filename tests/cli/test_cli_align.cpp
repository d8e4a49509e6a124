// `llmkit sft`, `llmkit dpo` and `llmkit reward train|eval` as a user meets them: --help explains
// the data format, the loss and the defaults, and bad input is one clean error line before
// anything is trained. The training itself is tested in tests/train/test_align.cpp and
// test_dpo_parity.cpp.
#include <gtest/gtest.h>

#include "cli/cli_world.h"

using namespace llmkit::testing;

TEST(CliAlign, HelpDescribesEachCommand) {
  auto r = run_llmkit({"sft", "--help"});
  ASSERT_TRUE(succeeded(r));
  for (const char* want : {"--train", "--plain", "--no-pack", "messages", "assistant", "packed"})
    EXPECT_NE(r.out.find(want), std::string::npos) << want << " missing from sft:\n" << r.out;
  r = run_llmkit({"dpo", "--help"});
  ASSERT_TRUE(succeeded(r));
  for (const char* want : {"--beta", "chosen", "rejected", "rewards/margins", "reference"})
    EXPECT_NE(r.out.find(want), std::string::npos) << want << " missing from dpo:\n" << r.out;
  r = run_llmkit({"reward", "train", "--help"});
  ASSERT_TRUE(succeeded(r));
  EXPECT_NE(r.out.find("Bradley-Terry"), std::string::npos) << r.out;
  r = run_llmkit({"reward", "eval", "--help"});
  ASSERT_TRUE(succeeded(r));
  for (const char* want : {"--policy", "--reference", "--pairs-out", "KL"})
    EXPECT_NE(r.out.find(want), std::string::npos) << want << " missing from reward eval:\n"
                                                   << r.out;
}

TEST(CliAlign, BadInputIsOneCleanError) {
  const TempDir dir;
  const std::string data =
      write_file(dir, "data.jsonl", "{\"prompt\": \"a\", \"completion\": \"b\"}\n");
  auto r = run_llmkit(
      {"dpo", "--model", dir.file("m"), "--train", data, "--out", dir.file("o"), "--beta", "0"});
  expect_clean_error(r, {"--beta", "> 0"}, "a zero beta");
  EXPECT_EQ(r.exit_code, 2);
  r = run_llmkit({"sft", "--model", dir.file("m"), "--train", data, "--out", dir.file("o"),
                  "--method", "qlora"});
  expect_clean_error(r, {"--method", "qlora"}, "an unknown method");
  r = run_llmkit({"sft", "--model", dir.file("no_model"), "--train", data, "--out", dir.file("o")});
  expect_clean_error(r, {"no_model"}, "a missing model");
  r = run_llmkit({"reward"});
  EXPECT_NE(r.exit_code, 0);
  r = run_llmkit({"reward", "eval", "--policy", dir.file("p"), "--reference", dir.file("p"),
                  "--reward", dir.file("rm"), "--prompts", data, "--samples", "1", "--pairs-out",
                  dir.file("pairs.jsonl")});
  expect_clean_error(r, {"2 samples"}, "pairs from one sample");
}
