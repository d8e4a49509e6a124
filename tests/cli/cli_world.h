// Tiny inputs for the command-line tests, made in a private temp directory: a corpus and a
// parallel corpus generated from a fixed word list, a 300-token BPE trained by `llmkit tokenizer
// train`, a one-layer GPT and a one-layer T5 trained for four steps by `llmkit train` (each well
// under a second), and the checks every bad-input test shares: a non-zero exit, no signal, no
// hang, and exactly one "llmkit: error: ..." line on stderr that names the problem.
#pragma once

#include <gtest/gtest.h>

#include <fstream>
#include <initializer_list>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "common/process.h"
#include "common/temp_dir.h"

namespace llmkit::testing {

inline std::string write_file(const TempDir& dir, const std::string& name,
                              const std::string& content) {
  std::ofstream(dir.file(name), std::ios::binary) << content;
  return dir.file(name);
}

inline std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

inline std::string last_line(const std::string& s) {
  const auto l = lines_of(s);
  return l.empty() ? "" : l.back();
}

// "llmkit exited 0" as a test condition, with everything it printed when it did not.
inline ::testing::AssertionResult succeeded(const ProcessResult& r) {
  if (r.exit_code == 0 && r.term_signal == 0 && !r.timed_out) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "exit " << r.exit_code << " signal " << r.term_signal
         << (r.timed_out ? " (timed out)" : "") << "\nstdout: " << r.out << "\nstderr: " << r.err;
}

// A clean refusal: exit status 1 or 2, no signal, no timeout, exactly one error line on stderr,
// "llmkit: error: ...", containing every needle (the file, the field, the value...).
inline void expect_clean_error(const ProcessResult& r, std::initializer_list<std::string> needles,
                               const std::string& what) {
  SCOPED_TRACE(what);
  EXPECT_FALSE(r.timed_out) << "hang";
  EXPECT_EQ(r.term_signal, 0) << "crashed; stderr: " << r.err;
  EXPECT_TRUE(r.exit_code == 1 || r.exit_code == 2) << "exit " << r.exit_code << "; " << r.err;
  std::vector<std::string> errors;
  for (const auto& l : lines_of(r.err))
    if (l.find("error") != std::string::npos || l.find("terminate") != std::string::npos)
      errors.push_back(l);
  ASSERT_EQ(errors.size(), 1u) << "want one error line; stderr:\n" << r.err;
  EXPECT_EQ(errors[0].rfind("llmkit: error: ", 0), 0u) << errors[0];
  for (const auto& n : needles)
    EXPECT_NE(errors[0].find(n), std::string::npos)
        << "\"" << n << "\" missing from: " << errors[0];
}

inline std::string tiny_corpus() {
  static const char* words[] = {"the",  "quick", "brown", "fox",   "jumps", "over",
                                "lazy", "dog",   "and",   "cat",   "runs",  "to",
                                "a",    "house", "in",    "green", "field", "birds"};
  std::mt19937 rng(1);
  std::string text;
  for (int line = 0; line < 300; ++line) {
    for (int w = 0; w < 12; ++w) text += std::string(w ? " " : "") + words[rng() % 18];
    text += '\n';
  }
  return text;
}

inline std::string tiny_pairs() {
  static const char* src[] = {"one", "two", "three", "four", "five", "six", "seven", "eight"};
  static const char* tgt[] = {"un", "deux", "trois", "quatre", "cinq", "six", "sept", "huit"};
  std::mt19937 rng(2);
  std::string text;
  for (int line = 0; line < 300; ++line) {
    std::string s, t;
    for (int w = 0; w < 4; ++w) {
      const unsigned k = rng() % 8;
      s += std::string(w ? " " : "") + src[k];
      t += std::string(w ? " " : "") + tgt[k];
    }
    text += s + "\t" + t + "\n";
  }
  return text;
}

// What the CLI suites share, made once per suite (SetUpTestSuite) in one temp directory.
struct TinyWorld {
  TempDir dir;
  std::string corpus, pairs, tokenizer, gpt_run, t5_run;

  TinyWorld() {
    corpus = write_file(dir, "corpus.txt", tiny_corpus());
    pairs = write_file(dir, "pairs.tsv", tiny_pairs());
  }
  // `llmkit tokenizer train` of a 300-token BPE; false (with a test failure) if it failed.
  bool train_tokenizer() {
    tokenizer = dir.file("tokenizer.json");
    auto r = run_llmkit(
        {"tokenizer", "train", "--input", corpus, "--vocab-size", "300", "--out", tokenizer});
    EXPECT_TRUE(succeeded(r)) << "tokenizer train";
    return succeeded(r);
  }
  // A one-layer GPT, 4 steps on the corpus with the tokenizer above.
  bool train_gpt() {
    if (tokenizer.empty() && !train_tokenizer()) return false;
    const std::string cfg = write_file(dir, "gpt.json", gpt_config());
    gpt_run = dir.file("run_gpt");
    auto r = run_llmkit({"train", "--config", cfg, "--data", corpus, "--tokenizer", tokenizer,
                         "--out", gpt_run, "--threads", "1"});
    EXPECT_TRUE(succeeded(r)) << "train gpt";
    return succeeded(r);
  }
  // A one-layer T5, 4 steps of the translate objective on the pairs (its own BPE).
  bool train_t5() {
    const std::string cfg = write_file(dir, "t5.json", t5_config());
    t5_run = dir.file("run_t5");
    auto r =
        run_llmkit({"train", "--config", cfg, "--pairs", pairs, "--out", t5_run, "--threads", "1"});
    EXPECT_TRUE(succeeded(r)) << "train t5";
    return succeeded(r);
  }
  // A training config with `model` as its "model" object and four tiny steps.
  static std::string config_with(const std::string& model) {
    return "{\"model\": " + model +
           ",\n \"train\": {\"batch_size\": 4, \"steps\": 4, \"lr\": 1e-3, \"warmup\": 1, "
           "\"eval_interval\": 2, \"eval_batches\": 1, \"log_interval\": 1, \"seed\": 1}}\n";
  }
  static std::string gpt_model(const std::string& extra = "") {
    return R"({"arch": "gpt", "n_layer": 1, "n_head": 2, "n_embd": 16, "block_size": 16,
               "vocab_size": 300)" +
           extra + "}";
  }
  static std::string gpt_config() { return config_with(gpt_model()); }
  static std::string t5_config() {
    return R"({"model": {"arch": "t5", "vocab_size": 300, "n_layer": 1, "n_decoder_layer": 1,
                         "n_head": 2, "n_embd": 16, "block_size": 32, "pad_id": 0, "eos_id": 1,
                         "decoder_start_id": 1},
               "train": {"objective": "translate", "batch_size": 4, "steps": 4, "lr": 1e-3,
                         "warmup": 1, "eval_interval": 2, "eval_batches": 1, "log_interval": 1,
                         "seed": 1}})";
  }
};

// Base of the CLI suites: one TinyWorld per suite; a suite's SetUpTestSuite says what it needs.
class CliSuite : public ::testing::Test {
 protected:
  static void make_world() {
    // The children inherit this: tiny models gain nothing from threads, and ctest runs two
    // tests at once on two cores.
    setenv("LLMKIT_THREADS", "1", 1);
    world_ = std::make_unique<TinyWorld>();
  }
  static void TearDownTestSuite() { world_.reset(); }
  static TinyWorld& world() { return *world_; }
  static inline std::unique_ptr<TinyWorld> world_;
};

// A suite whose tests all need one thing of the world made first (`Make`: the tokenizer, the
// GPT or the T5); each test fails at once, naming it, when that could not be made.
template <bool (TinyWorld::*Make)()>
class CliSuiteWith : public CliSuite {
 protected:
  static void SetUpTestSuite() {
    make_world();
    ok_ = (world().*Make)();
  }
  void SetUp() override { ASSERT_TRUE(ok_) << "the suite's fixture could not be made"; }
  static inline bool ok_ = false;
};

}  // namespace llmkit::testing
