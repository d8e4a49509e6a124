// The command line as a user meets it: every subcommand answers --help; an unknown subcommand,
// an unknown flag or a missing required one is a one-line error with exit status 2.
#include <gtest/gtest.h>

#include "cli/cli_world.h"

using llmkit::testing::expect_clean_error;
using llmkit::testing::run_llmkit;

TEST(Cli, EverySubcommandHasHelp) {
  for (const char* cmd : {"demo", "tokenizer", "train", "generate", "eval", "chat", "translate"}) {
    auto r = run_llmkit({cmd, "--help"});
    EXPECT_EQ(r.exit_code, 0) << cmd << ": " << r.err;
    EXPECT_NE(r.out.find("Usage"), std::string::npos) << cmd << " --help printed: " << r.out;
  }
}

TEST(Cli, UnknownSubcommandIsAOneLineError) {
  auto r = run_llmkit({"no-such-command"});
  expect_clean_error(r, {"no-such-command"}, "unknown subcommand");
  EXPECT_EQ(r.exit_code, 2) << "usage errors exit with 2";
}

TEST(Cli, UsageErrorsAreOneLineWithExitTwo) {
  // CLI11 prints "message\nRun with --help for more information." and exits 105-109; main.cpp
  // turns every parse error into one "llmkit: error:" line and exit status 2.
  const llmkit::testing::TempDir dir;
  struct Case {
    std::vector<std::string> args;
    std::string needle;
  } cases[] = {
      {{}, "subcommand"},
      {{"generate"}, "--model"},
      {{"generate", "--model", dir.path.string(), "--prompt", "y", "--no-such-flag"},
       "--no-such-flag"},
      {{"tokenizer"}, "subcommand"},
      {{"tokenizer", "encode"}, "--tokenizer"},
      {{"eval", "--model"}, "--model"},
  };
  for (const auto& c : cases) {
    std::string what = "llmkit";
    for (const auto& a : c.args) what += " " + a;
    auto r = run_llmkit(c.args, "", 60);
    expect_clean_error(r, {c.needle}, what);
    EXPECT_EQ(r.exit_code, 2) << what;
  }
}

TEST(Cli, VersionPrintsAndExitsZero) {
  auto r = run_llmkit({"--version"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("llmkit"), std::string::npos) << r.out;
}
