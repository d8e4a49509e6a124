// `llmkit bench` and `llmkit perplexity` as a user runs them, on the suite's one-layer GPT: the
// JSON last line carries the fields scripts read (bench/quant_vs_llamacpp), the perplexity is
// reproducible bit for bit and scores llama.cpp's count of tokens, and bad arguments are one clean
// error line. No timing is asserted.
#include <gtest/gtest.h>

#include <cmath>

#include <nlohmann/json.hpp>

#include "cli/cli_world.h"

using namespace llmkit::testing;

class CliBench : public CliSuiteWith<&TinyWorld::train_gpt> {};

TEST_F(CliBench, HelpNamesTheOptions) {
  for (const char* cmd : {"bench", "perplexity"}) {
    auto r = run_llmkit({cmd, "--help"});
    EXPECT_EQ(r.exit_code, 0) << cmd << ": " << r.err;
    EXPECT_NE(r.out.find("--model"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("--type"), std::string::npos) << r.out;
  }
}

TEST_F(CliBench, BenchPrintsItsJsonLastLine) {
  auto r = run_llmkit(
      {"bench", "--model", world().gpt_run, "-p", "8", "-n", "4", "-r", "2", "--threads", "1"});
  ASSERT_TRUE(succeeded(r));
  const auto j = nlohmann::json::parse(last_line(r.out));
  for (const char* key : {"pp8", "tg4", "load_s", "weights_bytes", "threads", "weights_gbps"})
    EXPECT_TRUE(j.contains(key)) << key << " missing from " << j.dump();
  EXPECT_GT(j["pp8"].get<double>(), 0.0);
  EXPECT_GT(j["tg4"].get<double>(), 0.0);
  EXPECT_GT(j["weights_bytes"].get<double>(), 0.0);
  EXPECT_EQ(j["threads"].get<int>(), 1);
  // -n 0 skips the tg test.
  auto pp_only = run_llmkit({"bench", "--model", world().gpt_run, "-p", "8", "-n", "0", "-r", "1"});
  ASSERT_TRUE(succeeded(pp_only));
  const auto k = nlohmann::json::parse(last_line(pp_only.out));
  EXPECT_TRUE(k.contains("pp8"));
  EXPECT_FALSE(k.contains("tg0")) << k.dump();
  EXPECT_FALSE(k["batch_invariant"].get<bool>());
  // --batch-invariant reaches the engine and the report (the engine's own tests check its bits).
  auto inv = run_llmkit({"bench", "--model", world().gpt_run, "--type", "q8_0", "-p", "12", "-n",
                         "0", "-r", "1", "--batch-invariant"});
  ASSERT_TRUE(succeeded(inv));
  const auto v = nlohmann::json::parse(last_line(inv.out));
  EXPECT_TRUE(v["batch_invariant"].get<bool>()) << v.dump();
  EXPECT_GT(v["pp12"].get<double>(), 0.0);
}

TEST_F(CliBench, PerplexityIsReproducibleAndCountsLlamaCppsTokens) {
  const std::vector<std::string> args = {
      "perplexity", "--model", world().gpt_run, "--data", world().corpus, "--context", "16",
      "--chunks",   "5",       "--threads",     "1"};
  auto a = run_llmkit(args), b = run_llmkit(args);
  ASSERT_TRUE(succeeded(a));
  ASSERT_TRUE(succeeded(b));
  const auto ja = nlohmann::json::parse(last_line(a.out));
  const auto jb = nlohmann::json::parse(last_line(b.out));
  EXPECT_EQ(ja["chunks"].get<int>(), 5);
  EXPECT_EQ(ja["context"].get<int>(), 16);
  EXPECT_EQ(ja["tokens_scored"].get<int>(), 5 * (16 - 1 - 8));
  const double ppl = ja["perplexity"].get<double>();
  EXPECT_TRUE(std::isfinite(ppl) && ppl > 1.0) << ppl;
  EXPECT_NEAR(std::exp(ja["loss"].get<double>()), ppl, 1e-3 * ppl);
  EXPECT_EQ(ja["perplexity"].get<double>(), jb["perplexity"].get<double>());
  EXPECT_NE(a.out.find("[5]"), std::string::npos) << "running perplexity per chunk: " << a.out;
}

TEST_F(CliBench, BadArgumentsAreOneCleanError) {
  const TempDir dir;
  const std::string tiny = write_file(dir, "tiny.txt", "the quick fox");
  auto r = run_llmkit({"bench", "--model", world().gpt_run, "-p", "0", "-n", "0"});
  expect_clean_error(r, {"nothing to measure"}, "bench -p 0 -n 0");
  r = run_llmkit({"bench", "--model", world().gpt_run, "--type", "q9_9"});
  expect_clean_error(r, {"q9_9"}, "bench --type q9_9");
  r = run_llmkit({"bench", "--model", dir.file("absent")});
  expect_clean_error(r, {"absent"}, "bench on a missing path");
  EXPECT_EQ(r.exit_code, 2);
  r = run_llmkit({"bench", "--model", world().gpt_run, "-r", "0"});
  expect_clean_error(r, {"--repetitions"}, "bench -r 0");
  r = run_llmkit({"perplexity", "--model", world().gpt_run, "--data", tiny});
  expect_clean_error(r, {"fewer than one chunk"}, "perplexity on a 3-word file");
  r = run_llmkit({"perplexity", "--model", world().gpt_run, "--data", tiny, "--context", "2"});
  expect_clean_error(r, {"--context"}, "perplexity --context 2");
  EXPECT_EQ(r.exit_code, 2);
  r = run_llmkit({"perplexity", "--model", world().gpt_run});
  expect_clean_error(r, {"--data"}, "perplexity without --data");
}
