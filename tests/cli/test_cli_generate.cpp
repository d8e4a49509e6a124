// `llmkit generate`, `eval` and `chat` as processes on a one-layer GPT trained for four steps in
// the suite's temp directory: what they print on good input, and a one-line error with a
// non-zero exit -- never a crash, a hang or NaN garbage -- on every bad option, prompt or model
// directory.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/cli_world.h"

namespace llmkit::testing {
namespace {

class CliGenerate : public CliSuiteWith<&TinyWorld::train_gpt> {
 protected:
  static ProcessResult generate(std::vector<std::string> extra, const std::string& prompt = "the",
                                const std::string& model = "") {
    std::vector<std::string> args = {"generate", "--model", model.empty() ? world().gpt_run : model,
                                     "--prompt", prompt};
    args.insert(args.end(), extra.begin(), extra.end());
    return run_llmkit(args, "", 60);
  }
};

TEST_F(CliGenerate, GreedyIsDeterministicAndContinuesThePrompt) {
  auto a = generate({"--temperature", "0", "--max-new-tokens", "6"});
  ASSERT_TRUE(succeeded(a));
  EXPECT_EQ(a.out.rfind("the", 0), 0u) << "stdout starts with the prompt: " << a.out;
  EXPECT_GT(a.out.size(), std::string("the\n").size()) << "generated nothing: " << a.out;
  auto b = generate({"--temperature", "0", "--max-new-tokens", "6"});
  ASSERT_TRUE(succeeded(b));
  EXPECT_EQ(a.out, b.out);
}

TEST_F(CliGenerate, TinyTemperaturesAreGreedyNotGarbage) {
  // 1 / T overflowed float for T < ~3e-39 and turned the softmax into NaN.
  auto greedy = generate({"--temperature", "0", "--max-new-tokens", "6"});
  ASSERT_TRUE(succeeded(greedy));
  for (const char* t : {"1e-9", "1e-30", "1e-300", "4.9e-324"}) {
    auto r = generate({"--temperature", t, "--max-new-tokens", "6", "--seed", "3"});
    ASSERT_TRUE(succeeded(r)) << t;
    EXPECT_EQ(r.out, greedy.out) << "temperature " << t;
  }
}

TEST_F(CliGenerate, SampledRunsAreSeeded) {
  auto a = generate({"--temperature", "1", "--top-p", "0.9", "--max-new-tokens", "8"});
  auto b = generate({"--temperature", "1", "--top-p", "0.9", "--max-new-tokens", "8"});
  ASSERT_TRUE(succeeded(a));
  ASSERT_TRUE(succeeded(b));
  EXPECT_EQ(a.out, b.out);
}

TEST_F(CliGenerate, InvalidUtf8PromptWorks) {
  auto r = generate({"--max-new-tokens", "3"}, "ab\xff");
  ASSERT_TRUE(succeeded(r));
  EXPECT_EQ(r.out.rfind("ab\xff", 0), 0u);
}

TEST_F(CliGenerate, BadSamplingOptionsAreRefused) {
  expect_clean_error(generate({"--top-p", "0"}), {"top_p 0"}, "top-p 0");
  expect_clean_error(generate({"--top-p", "1.5"}), {"--top-p", "1.5"}, "top-p 1.5");
  expect_clean_error(generate({"--top-p", "nan"}), {"--top-p", "nan"}, "top-p nan");
  expect_clean_error(generate({"--temperature", "-1"}), {"--temperature", "-1"}, "temperature -1");
  expect_clean_error(generate({"--temperature", "inf"}), {"--temperature", "inf"},
                     "temperature inf");
  expect_clean_error(generate({"--temperature", "nan"}), {"--temperature", "nan"},
                     "temperature nan");
  expect_clean_error(generate({"--top-k", "-1"}), {"--top-k", "-1"}, "top-k -1");
  expect_clean_error(generate({"--max-new-tokens", "-3"}), {"--max-new-tokens", "-3"},
                     "max-new-tokens -3");
  expect_clean_error(generate({"--max-new-tokens", "0"}), {"--max-new-tokens", "0"},
                     "max-new-tokens 0");
  expect_clean_error(generate({"--max-new-tokens", "lots"}), {"--max-new-tokens", "lots"},
                     "max-new-tokens not a number");
  expect_clean_error(generate({"--repetition-penalty", "0"}), {"--repetition-penalty"},
                     "repetition penalty 0");
}

TEST_F(CliGenerate, RefusalsPrintNothingOnStdout) {
  // The prompt is echoed only once generation runs: a refused run leaves stdout empty.
  auto r = generate({"--top-p", "0"});
  expect_clean_error(r, {"top_p"}, "top-p 0");
  EXPECT_EQ(r.out, "");
}

TEST_F(CliGenerate, PromptLongerThanTheContextIsAClearError) {
  std::string prompt;
  for (int i = 0; i < 40; ++i) prompt += "the fox ";
  auto r = generate({"--max-new-tokens", "3"}, prompt);
  expect_clean_error(r, {"context is 16", "block_size"}, "prompt past block_size");
  EXPECT_EQ(r.out, "");
  expect_clean_error(generate({}, ""), {"empty prompt"}, "empty prompt");
}

TEST_F(CliGenerate, BadModelDirectories) {
  const TempDir& d = world().dir;
  expect_clean_error(generate({}, "the", d.file("nope")), {"--model", "nope"}, "missing dir");
  const std::string empty = d.file("empty_dir");
  std::filesystem::create_directory(empty);
  expect_clean_error(generate({}, "the", empty), {empty, "config.json"}, "no config.json");
  // --model takes a directory or a .gguf file; any other file is refused by the loader.
  expect_clean_error(generate({}, "the", world().corpus), {"corpus.txt", "neither"},
                     "a file, neither a directory nor a .gguf");
  // A copy of the run with a broken config.json, then with a broken tokenizer.json.
  namespace fs = std::filesystem;
  const std::string bad_cfg = d.file("bad_cfg");
  fs::copy(world().gpt_run, bad_cfg, fs::copy_options::recursive);
  write_file(d, "bad_cfg/config.json", R"({"arch": "gpt", "n_layer": )");
  expect_clean_error(generate({}, "the", bad_cfg), {"config.json"}, "malformed config.json");
  const std::string bad_tok = d.file("bad_tok");
  fs::copy(world().gpt_run, bad_tok, fs::copy_options::recursive);
  write_file(d, "bad_tok/tokenizer.json", R"({"model": {"type": "BPE", "vocab": [1, 2]}})");
  expect_clean_error(generate({}, "the", bad_tok), {"tokenizer.json", "vocab"},
                     "ill-typed tokenizer.json");
}

// A model directory whose config.json asks for 10^12 layers.
std::string absurd_model_dir(const TinyWorld& w) {
  namespace fs = std::filesystem;
  const std::string big = w.dir.file("big_cfg");
  if (!fs::exists(big)) {
    fs::copy(w.gpt_run, big, fs::copy_options::recursive);
    write_file(w.dir, "big_cfg/config.json",
               R"({"arch": "gpt", "n_layer": 1000000000000, "n_head": 2, "n_embd": 16,
                   "block_size": 16, "vocab_size": 300})");
  }
  return big;
}

TEST_F(CliGenerate, AbsurdConfigJsonIsRefusedBeforeAllocation) {
  expect_clean_error(generate({}, "the", absurd_model_dir(world())), {"parameter count", "2^40"},
                     "absurd config.json");
}

TEST_F(CliGenerate, ConfigJsonErrorsNameTheFile) {
  expect_clean_error(generate({}, "the", absurd_model_dir(world())),
                     {"config.json", "parameter count"}, "absurd config.json");
}

TEST_F(CliGenerate, EvalPrintsJson) {
  auto r = run_llmkit({"eval", "--model", world().gpt_run, "--data", world().corpus});
  ASSERT_TRUE(succeeded(r));
  const auto j = nlohmann::json::parse(last_line(r.out));
  EXPECT_GT(j.at("loss").get<double>(), 0.0);
  EXPECT_LT(j.at("loss").get<double>(), 10.0);  // ln 300 = 5.7 at chance
  EXPECT_NEAR(j.at("perplexity").get<double>(), std::exp(j.at("loss").get<double>()), 1e-2);
  EXPECT_GT(j.at("tokens").get<int64_t>(), 1000);
}

TEST_F(CliGenerate, EvalBadData) {
  const TempDir& d = world().dir;
  auto eval = [&](const std::string& data) {
    return run_llmkit({"eval", "--model", world().gpt_run, "--data", data}, "", 60);
  };
  expect_clean_error(eval(d.file("missing.txt")), {"missing.txt"}, "missing");
  expect_clean_error(eval(write_file(d, "empty.txt", "")), {"0 tokens", "block_size"}, "empty");
  expect_clean_error(eval(d.path.string()), {d.path.string(), "directory"}, "directory");
  expect_clean_error(eval(write_file(d, "short.txt", "ab\xff")), {"tokens", "block_size"},
                     "shorter than one window");
  expect_clean_error(run_llmkit({"eval", "--model", world().gpt_run, "--data", world().corpus,
                                 "--batch-size", "0"}),
                     {"--batch-size"}, "batch size 0");
}

TEST_F(CliGenerate, ChatAnswersAndQuitsOnEof) {
  // Three turns, the second longer than the 16-token context, the third not UTF-8: chat must
  // keep going and end cleanly at EOF. This model's context is too small for any turn with the
  // transcript around it, so each turn is refused with the one-line reason and chat goes on
  // (answering is tested with a scripted decoder in tests/infer/test_chat.cpp).
  std::string long_turn;
  for (int i = 0; i < 30; ++i) long_turn += "the fox ";
  auto r = run_llmkit({"chat", "--model", world().gpt_run, "--max-new-tokens", "4"},
                      "hello there\n" + long_turn + "\nab\xff\xfe\n", 60);
  EXPECT_TRUE(succeeded(r)) << r.err;
  size_t refusals = 0;
  for (size_t p = r.err.find("error: "); p != std::string::npos; p = r.err.find("error: ", p + 1)) {
    ++refusals;
    EXPECT_EQ(r.err.compare(p, 31, "error: chat: the new message ne"), 0) << r.err;
  }
  EXPECT_EQ(refusals, 3u) << r.err;
}

const std::vector<std::pair<std::string, std::string>> kBadChatOptions = {
    {"--max-new-tokens", "-3"}, {"--temperature", "-1"}, {"--temperature", "nan"}};

TEST_F(CliGenerate, ChatBadOptionsFailWithoutCrashing) {
  // Refused while parsing the arguments: exit 2, as every usage error.
  for (const auto& [flag, value] : kBadChatOptions) {
    auto r = run_llmkit({"chat", "--model", world().gpt_run, flag, value}, "hi\n", 60);
    EXPECT_FALSE(r.timed_out) << flag << " " << value;
    EXPECT_EQ(r.term_signal, 0) << flag << " " << value;
    EXPECT_EQ(r.exit_code, 2) << flag << " " << value;
    EXPECT_NE(r.err.find("llmkit: error: "), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(value), std::string::npos) << r.err;
  }
}

TEST_F(CliGenerate, ChatBadOptionsAreRefusedUpFront) {
  for (const auto& [flag, value] : kBadChatOptions)
    expect_clean_error(run_llmkit({"chat", "--model", world().gpt_run, flag, value}, "hi\n", 60),
                       {flag, value}, "chat " + flag + " " + value);
}

TEST_F(CliGenerate, ChatBadModel) {
  const std::string empty = world().dir.file("chat_empty");
  std::filesystem::create_directory(empty);
  expect_clean_error(run_llmkit({"chat", "--model", empty}, "hi\n", 60), {empty}, "no model");
  expect_clean_error(run_llmkit({"chat", "--model", world().dir.file("nope")}, "hi\n", 60),
                     {"nope"}, "missing dir");
}

}  // namespace
}  // namespace llmkit::testing
