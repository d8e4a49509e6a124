// Bad input: malformed, truncated or inconsistent tokenizer.json / encoder.json / vocab.bpe must
// fail with one line that names the file and what is wrong; never crash or load half a file.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/temp_dir.h"
#include "fixtures.h"
#include "llmkit/core/error.h"

namespace llmkit::tokenizer {
namespace {

std::filesystem::path write(const std::string& name, const std::string& content) {
  static const llmkit::testing::TempDir dir;  // unique per process, removed at exit
  std::ofstream(dir.path / name, std::ios::binary) << content;
  return dir.path / name;
}

// The message of the llmkit::Error that loading `path` throws ("" if none).
std::string load_error(const std::filesystem::path& path) {
  try {
    Tokenizer::load(path.string());
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

void expect_error(const std::filesystem::path& path, const std::string& part) {
  const std::string msg = load_error(path);
  EXPECT_NE(msg.find(path.string()), std::string::npos) << "message lacks the file: " << msg;
  EXPECT_NE(msg.find(part), std::string::npos) << "message: " << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << "message is not one line: " << msg;
}

TEST(Errors, TokenizerJson) {
  const std::string good =
      Tokenizer::train_from_text("aaa bbb aaa bbb ab ab", TrainOptions{}).to_json();
  expect_error(write("missing.json", "") / "nope", "cannot open");
  expect_error(write("empty.json", ""), "not valid JSON");
  expect_error(write("truncated.json", good.substr(0, good.size() / 2)), "not valid JSON");
  expect_error(write("array.json", "[1, 2]"), "expected a JSON object");
  expect_error(write("nomodel.json", "{}"), "model is missing");
  expect_error(write("unknown_model.json", R"({"model": {"type": "Tiktoken", "vocab": {}}})"),
               "model.type \"Tiktoken\" is not supported");
  expect_error(write("precompiled.json",
                     R"({"normalizer": {"type": "Precompiled", "precompiled_charsmap": ""},
                         "model": {"type": "WordPiece", "vocab": {"[UNK]": 0}}})"),
               "normalizer \"Precompiled\" is not supported");
  expect_error(write("bad_pre.json", R"({"pre_tokenizer": {"type": "UnicodeScripts"},
                         "model": {"type": "WordPiece", "vocab": {"[UNK]": 0}}})"),
               "pre_tokenizer \"UnicodeScripts\" is not supported");
  expect_error(write("bad_decoder.json", R"({"decoder": {"type": "CTC"},
                         "model": {"type": "WordPiece", "vocab": {"[UNK]": 0}}})"),
               "decoder \"CTC\" is not supported");
  std::string bad_merge = good;
  bad_merge.replace(bad_merge.find("\"merges\": ["), 11, "\"merges\": [\"zz qq\",");
  expect_error(write("badmerge.json", bad_merge), "not in model.vocab");
  std::string gap = good;
  gap.replace(gap.find("\"Ā\": "), 6, "\"Ā\": 9999");  // an id beyond the others leaves a gap
  expect_error(write("gap.json", gap), "no token has id");
}

TEST(Errors, Gpt2Files) {
  const llmkit::testing::TempDir tmp;
  const auto dir = tmp.path;
  std::ofstream(dir / "encoder.json") << R"({"a": 0, "b": 1, "ab": 2})";
  std::ofstream(dir / "vocab.bpe") << "#version: 0.2\na b\n";
  EXPECT_EQ(load_error(dir / "encoder.json"), "");
  std::ofstream(dir / "vocab.bpe") << "#version: 0.2\nab\n";
  expect_error(dir / "vocab.bpe", "");  // a .bpe alone is refused with a hint
  EXPECT_NE(load_error(dir).find("line 2: expected two tokens"), std::string::npos)
      << load_error(dir);
  std::ofstream(dir / "vocab.bpe") << "#version: 0.2\na c\n";
  EXPECT_NE(load_error(dir).find("token \"c\" is not in the encoder.json"), std::string::npos);
  std::ofstream(dir / "vocab.bpe") << "#version: 0.2\n";
  EXPECT_NE(load_error(dir).find("looks truncated"), std::string::npos) << load_error(dir);
  std::ofstream(dir / "encoder.json") << R"({"a": 0, "b": 1, "ab": )";
  EXPECT_NE(load_error(dir).find("not valid JSON"), std::string::npos);
}

TEST(Errors, UnknownTokensAndIds) {
  const Tokenizer tok = Tokenizer::train_from_text("hello world", TrainOptions{});
  EncodeOptions o;
  o.allowed_special = {"[MASK]"};
  EXPECT_THROW(tok.encode("x", o), Error);
  EXPECT_THROW(tok.token_to_id("[MASK]"), Error);
  EXPECT_FALSE(tok.find_token("[MASK]").has_value());
  EXPECT_THROW(tok.decode(std::vector<int32_t>{100000}), Error);
  EXPECT_EQ(tok.encode(""), std::vector<int32_t>{});
  EXPECT_EQ(tok.decode(std::vector<int32_t>{}), "");
}

}  // namespace
}  // namespace llmkit::tokenizer
