// The command line as a user meets it: every subcommand answers --help, and an unknown one is a
// one-line error with a non-zero exit.
#include <gtest/gtest.h>

#include "common/process.h"

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
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(r.term_signal, 0);
  EXPECT_FALSE(r.err.empty());
}
