// GPT-2 exactness: our byte-level BPE with GPT-2's encoder.json + vocab.bpe must give the ids of
// OpenAI's tiktoken (r50k_base) on every fixture (tests/fixtures/tokenizer/gpt2_cases.json, made
// by make_fixtures.js), decode them back to the text, and do the same after a round trip through
// tokenizer.json. Skips, with a message, when the vocabulary has not been fetched.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "common/temp_dir.h"
#include "fixtures.h"
#include "llmkit/core/parallel.h"
#include "llmkit/tokenizer/pretokenizer.h"

namespace llmkit::tokenizer {
namespace {

using testing::fixture;
using testing::gpt2;

// First index where a and b differ, for a readable failure message.
size_t first_difference(const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
  size_t i = 0;
  while (i < a.size() && i < b.size() && a[i] == b[i]) ++i;
  return i;
}

void expect_cases(const Tokenizer& tok, const std::string& label) {
  const auto cases = testing::read_json(fixture("gpt2_cases.json"));
  ASSERT_GT(cases.size(), 40u);
  for (const auto& c : cases) {
    const std::string text = c["text"];
    const std::vector<int32_t> want = c["ids"];
    EncodeOptions opt;
    opt.allow_special = c.value("allow_special", false);
    const std::vector<int32_t> got = tok.encode(text, opt);
    const size_t at = first_difference(got, want);
    EXPECT_EQ(got, want) << label << ": case " << c["name"] << " differs at token " << at << " of "
                         << want.size();
    EXPECT_EQ(tok.decode(got), text) << label << ": case " << c["name"] << " does not round-trip";
  }
}

TEST(Gpt2, MatchesTiktokenR50kBase) {
  LLMKIT_REQUIRE_GPT2();
  expect_cases(*gpt2(), "encoder.json + vocab.bpe");
}

TEST(Gpt2, TokenizerJsonRoundTripMatchesTiktoken) {
  LLMKIT_REQUIRE_GPT2();
  const llmkit::testing::TempDir tmp;
  const auto path = tmp.path / "tokenizer.json";
  gpt2()->save(path.string());
  const Tokenizer again = Tokenizer::load(path.string());
  EXPECT_EQ(again.vocab_size(), 50257);
  EXPECT_EQ(again.to_json(), gpt2()->to_json());
  expect_cases(again, "tokenizer.json");
}

TEST(Gpt2, VocabularyFacts) {
  LLMKIT_REQUIRE_GPT2();
  const Tokenizer& tok = *gpt2();
  EXPECT_EQ(tok.vocab_size(), 50257);
  EXPECT_EQ(tok.token_to_id("<|endoftext|>"), 50256);
  EXPECT_TRUE(tok.is_special(50256));
  EXPECT_EQ(tok.token_to_id("Ġthe"), 262);
  EXPECT_EQ(tok.id_to_token(15496), "Hello");
  EXPECT_THROW(tok.token_to_id("<|not a token|>"), Error);
}

TEST(Gpt2, SpecialTokensOnlyWhenAsked) {
  LLMKIT_REQUIRE_GPT2();
  const Tokenizer& tok = *gpt2();
  const std::string text = "a<|endoftext|>b";
  const auto plain = tok.encode(text);  // the special token's text is ordinary text here
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 50256), 0);
  EXPECT_EQ(tok.decode(plain), text);
  EncodeOptions all;
  all.allow_special = true;
  EXPECT_EQ(tok.encode(text, all), (std::vector<int32_t>{64, 50256, 65}));
  EncodeOptions listed;
  listed.allowed_special = {"<|endoftext|>"};
  EXPECT_EQ(tok.encode(text, listed), (std::vector<int32_t>{64, 50256, 65}));
  EncodeOptions unknown;
  unknown.allowed_special = {"<|im_start|>"};
  EXPECT_THROW(tok.encode(text, unknown), Error);
  EXPECT_EQ(tok.decode(std::vector<int32_t>{64, 50256, 65}, /*skip_special=*/true), "ab");
}

TEST(Gpt2, InvalidUtf8EncodesAsBytesAndDecodesToReplacement) {
  LLMKIT_REQUIRE_GPT2();
  const Tokenizer& tok = *gpt2();
  const std::string bad = "ok \xff\xfe bad \xe2\x82 cut \xed\xa0\x80 surrogate";
  const auto ids = tok.encode(bad);
  EXPECT_FALSE(ids.empty());
  EXPECT_EQ(tok.decode(ids),
            "ok \xEF\xBF\xBD\xEF\xBF\xBD bad \xEF\xBF\xBD cut "
            "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD surrogate");
  // A multi-byte character split across tokens decodes to U+FFFD, never a crash.
  const auto split = tok.encode("뷁");  // a rare syllable: one token per byte or so
  ASSERT_GE(split.size(), 2u);
  EXPECT_EQ(tok.decode(std::vector<int32_t>{split[0]}), "\xEF\xBF\xBD");
  EXPECT_THROW(tok.decode(std::vector<int32_t>{50257}), Error);
  EXPECT_THROW(tok.decode(std::vector<int32_t>{-1}), Error);
}

TEST(Gpt2, BatchAndParallelEncodingMatchSerial) {
  LLMKIT_REQUIRE_GPT2();
  const Tokenizer& tok = *gpt2();
  const auto cases = testing::read_json(fixture("gpt2_cases.json"));
  std::vector<std::string> texts;
  std::string big;
  for (const auto& c : cases) texts.push_back(c["text"]), big += texts.back() + "\n";
  const auto batch = tok.encode_batch(texts);
  for (size_t i = 0; i < texts.size(); ++i) EXPECT_EQ(batch[i], tok.encode(texts[i]));
  // Above 1 MB one text is cut at safe points and encoded on all threads.
  std::string huge;
  while (huge.size() < (3u << 20)) huge += big;
  const int threads = num_threads();
  set_num_threads(1);
  const std::vector<int32_t> serial = tok.encode(huge);
  set_num_threads(std::max(threads, 2));
  EXPECT_EQ(tok.encode(huge), serial);
  set_num_threads(threads);
}

}  // namespace
}  // namespace llmkit::tokenizer
