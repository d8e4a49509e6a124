// `llmkit ppo` as a user meets it: --help explains the run, and bad input is one clean error line
// (a flag's validator, a setting the library refuses, a reward model that is missing) before
// anything is trained. The training itself is tested in tests/train/test_ppo.cpp.
#include <gtest/gtest.h>

#include "cli/cli_world.h"

using namespace llmkit::testing;

TEST(CliPpo, HelpDescribesTheRun) {
  auto r = run_llmkit({"ppo", "--help"});
  ASSERT_TRUE(succeeded(r));
  for (const char* want : {"Usage", "--reward", "--reward-label", "--prompts", "--kl-coef",
                           "--mini-batch-size", "metrics.csv", "v_head.safetensors"})
    EXPECT_NE(r.out.find(want), std::string::npos) << want << " missing from:\n" << r.out;
}

TEST(CliPpo, BadInputIsOneCleanError) {
  const TempDir dir;
  const std::string prompts = write_file(dir, "prompts.txt", "hello\n");
  auto r = run_llmkit({"ppo", "--model", dir.file("policy"), "--reward", dir.file("reward"),
                       "--prompts", prompts, "--out", dir.file("out"), "--temperature", "0"});
  expect_clean_error(r, {"--temperature", "> 0"}, "a zero temperature");
  EXPECT_EQ(r.exit_code, 2);

  r = run_llmkit({"ppo", "--model", dir.file("policy"), "--reward", dir.file("reward"), "--prompts",
                  prompts, "--out", dir.file("out"), "--batch-size", "8", "--mini-batch-size",
                  "3"});
  expect_clean_error(r, {"mini_batch_size 3 does not divide batch_size 8"}, "mini-batch size");

  r = run_llmkit({"ppo", "--model", dir.file("policy"), "--reward", dir.file("no_reward"),
                  "--prompts", prompts, "--out", dir.file("out")});
  expect_clean_error(r, {"no_reward"}, "a missing reward model");
}
