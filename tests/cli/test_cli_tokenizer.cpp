// `llmkit tokenizer train | encode | decode` as a process: the round trip on a tiny corpus, and
// every kind of bad input (missing, empty or directory input, malformed or ill-typed
// tokenizer.json, bad ids) refused with one error line that names the file or the value.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cli/cli_world.h"
#include "common/reference.h"

namespace llmkit::testing {
namespace {

class CliTokenizer : public CliSuiteWith<&TinyWorld::train_tokenizer> {
 protected:
  // tokenizer.json with `edit` applied to its JSON, written as `name`.
  static std::string edited(const std::string& name,
                            const std::function<void(nlohmann::json&)>& edit) {
    std::ifstream in(world().tokenizer);
    nlohmann::json j = nlohmann::json::parse(in);
    edit(j);
    return write_file(world().dir, name, j.dump());
  }
  static ProcessResult encode(const std::string& tokenizer, const std::string& text = "the fox") {
    return run_llmkit({"tokenizer", "encode", "--tokenizer", tokenizer, "--text", text}, "", 60);
  }
};

TEST_F(CliTokenizer, EncodeDecodeRoundTrip) {
  const std::string text = "the quick brown fox jumps over the lazy dog";
  auto enc = run_llmkit({"tokenizer", "encode", "--tokenizer", world().tokenizer, "--text", text});
  ASSERT_TRUE(succeeded(enc));
  const std::string ids = last_line(enc.out);
  EXPECT_LT(std::count(ids.begin(), ids.end(), ' ') + 1, static_cast<long>(text.size()))
      << "a BPE trained on this corpus must merge: " << ids;
  auto dec = run_llmkit({"tokenizer", "decode", "--tokenizer", world().tokenizer, "--ids", ids});
  ASSERT_TRUE(succeeded(dec));
  EXPECT_EQ(dec.out, text);
  // stdin instead of --text / --ids gives the same
  auto enc_stdin = run_llmkit({"tokenizer", "encode", "--tokenizer", world().tokenizer}, text);
  ASSERT_TRUE(succeeded(enc_stdin));
  EXPECT_EQ(last_line(enc_stdin.out), ids);
}

TEST_F(CliTokenizer, InvalidUtf8TextEncodesAndDecodesToReplacement) {
  // Byte-level BPE: bytes that are not UTF-8 still encode; decoding prints each invalid byte as
  // U+FFFD, as documented in tokenizer.h (and as tiktoken's decode does).
  const std::string text = "ab\xff\xfe cd \xe2\x82";
  auto enc = run_llmkit({"tokenizer", "encode", "--tokenizer", world().tokenizer}, text);
  ASSERT_TRUE(succeeded(enc));
  auto dec = run_llmkit(
      {"tokenizer", "decode", "--tokenizer", world().tokenizer, "--ids", last_line(enc.out)});
  ASSERT_TRUE(succeeded(dec));
  EXPECT_EQ(dec.out, "ab\uFFFD\uFFFD cd \uFFFD");
}

TEST_F(CliTokenizer, TrainOnInvalidUtf8WarnsAndWorks) {
  const std::string bad = write_file(world().dir, "bad.txt", "ab\xff\xfe cd\nab cd ab cd\n");
  auto r = run_llmkit({"tokenizer", "train", "--input", bad, "--vocab-size", "260", "--out",
                       world().dir.file("bad_tok.json")});
  ASSERT_TRUE(succeeded(r));
  EXPECT_NE(r.err.find("invalid UTF-8"), std::string::npos) << r.err;
}

TEST_F(CliTokenizer, TrainBadInputs) {
  const TempDir& d = world().dir;
  const std::string out = d.file("t.json"), empty = write_file(d, "empty.txt", "");
  auto train = [&](const std::string& input, const std::string& vocab = "300") {
    return run_llmkit({"tokenizer", "train", "--input", input, "--vocab-size", vocab, "--out", out},
                      "", 60);
  };
  expect_clean_error(train(d.file("missing.txt")), {"missing.txt", "does not exist"},
                     "missing input");
  expect_clean_error(train(empty), {"empty.txt", "empty"}, "empty input");
  expect_clean_error(train(d.path.string()), {d.path.string(), "directory"}, "directory input");
  expect_clean_error(train(world().corpus, "0"), {"vocab size 0"}, "vocab 0");
  expect_clean_error(train(world().corpus, "-5"), {"vocab size -5"}, "vocab -5");
  expect_clean_error(train(world().corpus, "many"), {"--vocab-size", "many"}, "vocab not a number");
  auto to_dir = run_llmkit({"tokenizer", "train", "--input", world().corpus, "--vocab-size", "300",
                            "--out", d.path.string()},
                           "", 60);
  expect_clean_error(to_dir, {d.path.string()}, "--out is a directory");
}

TEST_F(CliTokenizer, MissingEmptyOrDirectoryTokenizer) {
  const TempDir& d = world().dir;
  expect_clean_error(encode(d.file("nope.json")), {"nope.json", "cannot open"}, "missing");
  expect_clean_error(encode(write_file(d, "empty.json", "")), {"empty.json", "not valid JSON"},
                     "empty");
  const std::string sub = d.file("no_tokenizer_here");
  std::filesystem::create_directory(sub);
  expect_clean_error(encode(sub), {sub, "neither tokenizer.json"}, "directory without one");
}

TEST_F(CliTokenizer, MalformedTokenizerJsonNamesTheFile) {
  const TempDir& d = world().dir;
  expect_clean_error(encode(write_file(d, "trunc.json", R"({"model": {"type": "BPE", )")),
                     {"trunc.json", "not valid JSON"}, "truncated JSON");
  expect_clean_error(encode(write_file(d, "array.json", "[1, 2]")), {"array.json"},
                     "top level is an array");
  expect_clean_error(encode(write_file(d, "nomodel.json", "{}")), {"nomodel.json", "model"},
                     "no model");
  expect_clean_error(encode(write_file(d, "latin1.json",
                                       "{\"model\": {\"type\": \"BPE\", "
                                       "\"vocab\": {\"\xe9\": 0}}}")),
                     {"latin1.json"}, "invalid UTF-8 inside the JSON");
}

TEST_F(CliTokenizer, IllTypedTokenizerJsonNamesTheFileAndField) {
  using nlohmann::json;
  struct Case {
    const char* name;
    std::function<void(json&)> edit;
    const char* field;
  };
  const std::vector<Case> cases = {
      {"vocab_array.json",
       [](json& j) {
         j["model"]["vocab"] = json::array({1, 2});
       },
       "vocab"},
      {"vocab_ids.json", [](json& j) { j["model"]["vocab"]["a"] = "x"; }, "vocab"},
      {"merges_ints.json",
       [](json& j) {
         j["model"]["merges"] = json::array({1, 2});
       },
       "merges"},
      {"merges_object.json", [](json& j) { j["model"]["merges"] = json::object(); }, "merges"},
      {"added_int.json", [](json& j) { j["added_tokens"] = 5; }, "added_tokens"},
      {"model_string.json", [](json& j) { j["model"] = "BPE"; }, "model"},
  };
  for (const Case& c : cases) {
    const std::string path = edited(c.name, c.edit);
    expect_clean_error(encode(path), {c.name, c.field}, c.name);
  }
}

// A Hugging Face tokenizer.json (all-MiniLM-L6-v2's WordPiece): --add-special-tokens runs its
// TemplateProcessing, [CLS] = 101 ... [SEP] = 102; ids from the tokenizers wheel.
TEST_F(CliTokenizer, AddSpecialTokensWithMiniLM) {
  const std::string dir = model_path("minilm");
  if (dir.empty()) GTEST_SKIP() << "all-MiniLM-L6-v2 is absent (scripts/get-models.sh)";
  const std::string json = dir + "/tokenizer.json";
  auto plain = run_llmkit({"tokenizer", "encode", "--tokenizer", json, "--text", "Hello, world!"});
  ASSERT_TRUE(succeeded(plain));
  EXPECT_EQ(last_line(plain.out), "7592 1010 2088 999");
  auto with = run_llmkit({"tokenizer", "encode", "--tokenizer", json, "--text", "Hello, world!",
                          "--add-special-tokens"});
  ASSERT_TRUE(succeeded(with));
  EXPECT_EQ(last_line(with.out), "101 7592 1010 2088 999 102");
  auto dec = run_llmkit({"tokenizer", "decode", "--tokenizer", json, "--skip-special", "--ids",
                         "101 7592 1010 2088 999 102"});
  ASSERT_TRUE(succeeded(dec));
  EXPECT_EQ(dec.out, "hello, world!");
}

TEST_F(CliTokenizer, DecodeBadIds) {
  auto decode = [&](const std::string& ids) {
    return run_llmkit({"tokenizer", "decode", "--tokenizer", world().tokenizer, "--ids", ids}, "",
                      60);
  };
  expect_clean_error(decode("1 x"), {"\"x\"", "not a token id"}, "not a number");
  expect_clean_error(decode("99999"), {"99999", "out of range"}, "past the vocabulary");
  expect_clean_error(decode("-1"), {"-1", "out of range"}, "negative");
  expect_clean_error(decode("99999999999"), {"99999999999"}, "past int32");
}

}  // namespace
}  // namespace llmkit::testing
