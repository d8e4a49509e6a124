// `llmkit train` as a process: a tiny GPT and a tiny T5 train for four steps and leave a model
// directory; bad configs (malformed, missing fields, absurd sizes) and bad data (missing, empty,
// a directory) are refused with one error line naming the file and the problem, before anything
// is allocated -- never a crash, an out-of-memory or a hang.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/cli_world.h"

namespace llmkit::testing {
namespace {

namespace fs = std::filesystem;

class CliTrain : public CliSuiteWith<&TinyWorld::train_gpt> {
 protected:
  // `llmkit train` on the corpus with the suite's tokenizer, a config made from `model` (the
  // "model" object's JSON) and a fresh --out.
  static ProcessResult train_model(const std::string& name, const std::string& model,
                                   bool with_tokenizer = true) {
    const std::string cfg = write_file(world().dir, name + ".json", TinyWorld::config_with(model));
    std::vector<std::string> args = {"train",
                                     "--config",
                                     cfg,
                                     "--data",
                                     world().corpus,
                                     "--out",
                                     world().dir.file("run_" + name),
                                     "--threads",
                                     "1"};
    if (with_tokenizer) args.insert(args.end(), {"--tokenizer", world().tokenizer});
    return run_llmkit(args, "", 60);
  }
  static std::string gpt_with(const std::string& key, const std::string& value) {
    nlohmann::json j = nlohmann::json::parse(TinyWorld::gpt_model());
    j[key] = nlohmann::json::parse(value);
    return j.dump();
  }
};

TEST_F(CliTrain, TinyGptLeavesAModelDirectoryAndJson) {
  // The model directory on top; the optimizer state only in the committed checkpoint.
  for (const char* f : {"config.json", "model.safetensors", "tokenizer.json", "trainer_state.json",
                        "checkpoints/latest.json"})
    EXPECT_TRUE(fs::exists(fs::path(world().gpt_run) / f)) << f;
  // Train another one and read its last line: the final validation metrics as JSON.
  auto r = train_model("again", TinyWorld::gpt_model());
  ASSERT_TRUE(succeeded(r));
  const auto j = nlohmann::json::parse(last_line(r.out));
  EXPECT_EQ(j.at("step").get<int64_t>(), 4);
  EXPECT_TRUE(std::isfinite(j.at("val_loss").get<double>()));
}

TEST_F(CliTrain, TinyT5OnPairs) {
  ASSERT_TRUE(world().train_t5());
  EXPECT_TRUE(fs::exists(fs::path(world().t5_run) / "model.safetensors"));
}

TEST_F(CliTrain, InvalidUtf8DataTrains) {
  const std::string bad = write_file(world().dir, "bad_utf8.txt", [] {
    std::string s = tiny_corpus();
    for (size_t i = 100; i < s.size(); i += 500) s[i] = '\xff';
    return s;
  }());
  auto r =
      run_llmkit({"train", "--config", write_file(world().dir, "g.json", TinyWorld::gpt_config()),
                  "--data", bad, "--tokenizer", world().tokenizer, "--out",
                  world().dir.file("run_bad_utf8"), "--threads", "1"},
                 "", 60);
  EXPECT_TRUE(succeeded(r));
}

TEST_F(CliTrain, MalformedOrIncompleteConfigs) {
  const TempDir& d = world().dir;
  auto with_config = [&](const std::string& name, const std::string& text) {
    return run_llmkit({"train", "--config", write_file(d, name, text), "--data", world().corpus,
                       "--tokenizer", world().tokenizer, "--out", d.file("run_" + name)},
                      "", 60);
  };
  expect_clean_error(with_config("trunc.json", R"({"model": {"arch": )"), {"trunc.json", "JSON"},
                     "truncated JSON");
  expect_clean_error(with_config("empty.json", ""), {"empty.json"}, "empty config");
  expect_clean_error(with_config("latin1.json", "{\"model\": {\"arch\": \"gpt\xe9\"}}"),
                     {"latin1.json"}, "invalid UTF-8 inside the JSON");
  expect_clean_error(run_llmkit({"train", "--config", d.path.string(), "--data", world().corpus,
                                 "--out", d.file("run_cfgdir")},
                                "", 60),
                     {"--config", "directory"}, "config is a directory");
  expect_clean_error(with_config("nomodel.json", R"({"train": {}})"), {"nomodel.json", "model"},
                     "no model object");
  expect_clean_error(with_config("model5.json", R"({"model": 5})"), {"model5.json", "model"},
                     "model is a number");
  expect_clean_error(with_config("novocab.json", R"({"model": {"arch": "gpt", "n_head": 2}})"),
                     {"novocab.json", "vocab_size"}, "missing vocab_size");
  expect_clean_error(train_model("unknown_field", gpt_with("n_layerz", "2")),
                     {"unknown_field.json", "n_layerz"}, "unknown field");
  expect_clean_error(train_model("wrong_type", gpt_with("n_embd", "\"big\"")),
                     {"wrong_type.json", "n_embd"}, "string size");
  expect_clean_error(run_llmkit({"train", "--config", d.file("missing.json"), "--data",
                                 world().corpus, "--out", d.file("run_missing")},
                                "", 60),
                     {"--config", "missing.json"}, "missing config");
}

TEST_F(CliTrain, AbsurdSizesAreRefusedBeforeAllocation) {
  struct Case {
    const char* name;
    const char* key;
    const char* value;
    const char* want;
  };
  const std::vector<Case> cases = {
      {"embd_1e12", "n_embd", "1e12", "parameter count"},
      {"layer_neg", "n_layer", "-1", "n_layer must be positive"},
      {"block_2p40", "block_size", "1099511627776", "parameter count"},
      {"layers_1e9", "n_layer", "1000000000", "parameter count"},
      {"ffn_2p62", "ffn_hidden", "4611686018427387904", "ffn_hidden"},
      {"head_0", "n_head", "0", "n_head must be positive"},
      {"embd_frac", "n_embd", "16.5", "n_embd"},
  };
  for (const Case& c : cases) {
    auto r = train_model(c.name, gpt_with(c.key, c.value));
    expect_clean_error(r, {std::string(c.name) + ".json", c.want}, c.name);
  }
  // Before the size checks, n_embd 1e12 died allocating 1.2e15 bytes, n_layer 10^5 x n_embd
  // 16384 ran for minutes allocating, and ffn_hidden 2^62 overflowed into a segfault.
  nlohmann::json big = nlohmann::json::parse(TinyWorld::gpt_model());
  big["n_layer"] = 100000;
  big["n_embd"] = 16384;
  expect_clean_error(train_model("layers_x_embd", big.dump()),
                     {"layers_x_embd.json", "parameter count"}, "n_layer 1e5 x n_embd 16384");
}

TEST_F(CliTrain, MissingArchMeansGpt) {
  // "arch" defaults to gpt (GPTConfig's default), and the saved config.json says so.
  auto r = train_model("noarch", R"({"vocab_size": 300, "n_layer": 1, "n_head": 2,
                                     "n_embd": 16, "block_size": 16})");
  ASSERT_TRUE(succeeded(r)) << r.err;
  EXPECT_NE(r.err.find("model: gpt"), std::string::npos) << r.err;
}

TEST_F(CliTrain, VocabZeroWithoutTokenizerIsRefused) {
  // Without --tokenizer, train first makes a BPE of the model's vocab_size.
  expect_clean_error(train_model("vocab0", gpt_with("vocab_size", "0"), false),
                     {"vocab_size", "positive"}, "vocab 0");
}

TEST_F(CliTrain, AbsurdVocabWithTokenizerIsRefused) {
  expect_clean_error(train_model("vocab0_tok", gpt_with("vocab_size", "0")), {"vocab_size"},
                     "vocab 0 with a tokenizer");
  expect_clean_error(train_model("vocab1e30_tok", gpt_with("vocab_size", "1e30")), {"vocab_size"},
                     "vocab 1e30 with a tokenizer");
  expect_clean_error(train_model("vocab2p33_tok", gpt_with("vocab_size", "8589934592")),
                     {"vocab_size"}, "vocab 2^33 with a tokenizer");
}

TEST_F(CliTrain, BadDataFiles) {
  const TempDir& d = world().dir;
  const std::string cfg = write_file(d, "data_cfg.json", TinyWorld::gpt_config());
  auto train_on = [&](const std::string& data, const std::string& out) {
    return run_llmkit({"train", "--config", cfg, "--data", data, "--tokenizer", world().tokenizer,
                       "--out", d.file(out)},
                      "", 60);
  };
  expect_clean_error(train_on(d.file("missing.txt"), "run_m"), {"--data", "missing.txt"},
                     "missing data");
  expect_clean_error(train_on(d.path.string(), "run_d"), {"--data", "directory"},
                     "directory as data");
  expect_clean_error(train_on(write_file(d, "empty.txt", ""), "run_e"), {"empty.txt"},
                     "empty data");
  expect_clean_error(run_llmkit({"train", "--config", cfg, "--data", world().corpus, "--tokenizer",
                                 d.file("no_tok.json"), "--out", d.file("run_t")},
                                "", 60),
                     {"--tokenizer", "no_tok.json"}, "missing tokenizer");
  expect_clean_error(
      run_llmkit({"train", "--config", cfg, "--data", world().corpus, "--tokenizer",
                  write_file(d, "tok_bad.json", R"({"model": {"type": "BPE", "merges": [1]}})"),
                  "--out", d.file("run_tb")},
                 "", 60),
      {"tok_bad.json"}, "ill-typed tokenizer");
}

TEST_F(CliTrain, BadFlags) {
  const std::string cfg = write_file(world().dir, "flags_cfg.json", TinyWorld::gpt_config());
  for (const char* flag : {"--steps", "--batch-size", "--lr", "--threads"}) {
    auto r = run_llmkit({"train", "--config", cfg, "--data", world().corpus, "--out",
                         world().dir.file("run_flags"), flag, "-1"},
                        "", 60);
    expect_clean_error(r, {flag}, flag);
  }
}

}  // namespace
}  // namespace llmkit::testing
