// The hand-written GPT-2 scanner against its oracle, the GPT-2 regex run by PCRE2, on every
// fixture text and on random strings drawn from the characters where the pattern is subtle
// (contractions, spaces before letters/numbers/symbols, whitespace runs before text or the end).
// Also checks that cutting at gpt2_safe_cut never changes the pieces.
#include <gtest/gtest.h>

#include <random>

#include "fixtures.h"
#include "llmkit/tokenizer/pretokenizer.h"

namespace llmkit::tokenizer {
namespace {

std::vector<std::string> to_strings(const std::vector<std::string_view>& v) {
  return {v.begin(), v.end()};
}

TEST(Pretokenizer, KnownPieces) {
  using V = std::vector<std::string>;
  EXPECT_EQ(to_strings(gpt2_pieces("Hello world")), (V{"Hello", " world"}));
  EXPECT_EQ(to_strings(gpt2_pieces("I'm here, they'll")),
            (V{"I", "'m", " here", ",", " they", "'ll"}));
  EXPECT_EQ(to_strings(gpt2_pieces("a   b")), (V{"a", "  ", " b"}));
  EXPECT_EQ(to_strings(gpt2_pieces("x  \ny")), (V{"x", "  ", "\n", "y"}));
  EXPECT_EQ(to_strings(gpt2_pieces("end   ")), (V{"end", "   "}));
  EXPECT_EQ(to_strings(gpt2_pieces(" 123abc !?")), (V{" 123", "abc", " !?"}));
  EXPECT_EQ(to_strings(gpt2_pieces("안녕 세계")), (V{"안녕", " 세계"}));
  EXPECT_TRUE(gpt2_pieces("").empty());
}

void expect_same_as_pcre2(const Pcre2Splitter& re, std::string_view text) {
  EXPECT_EQ(to_strings(gpt2_pieces(text)), to_strings(re.split(text))) << "text: " << text;
}

TEST(Pretokenizer, ScannerMatchesPcre2OnFixtures) {
  const Pcre2Splitter re;
  const auto cases = testing::read_json(testing::fixture("gpt2_cases.json"));
  ASSERT_GT(cases.size(), 40u) << "fixture holds no cases: nothing would be compared";
  for (const auto& c : cases) expect_same_as_pcre2(re, c["text"].get<std::string>());
}

TEST(Pretokenizer, ScannerMatchesPcre2OnRandomText) {
  const Pcre2Splitter re;
  const std::vector<std::string> alphabet = {
      "a",    "Z",      "é",      "한", "ㄱ", "日", "0", "٣",      "½",  "'",  "s",
      "t",    "re",     "ve",     "ll", "d",  "m",  " ", " ",      "  ", "\n", "\t",
      "\r\n", "\u00a0", "\u3000", "!",  ".",  "-",  "😀", "\u0301", "_"};
  std::mt19937 rng(7);
  for (int iter = 0; iter < 3000; ++iter) {
    std::string text;
    const int n = 1 + static_cast<int>(rng() % 24);
    for (int k = 0; k < n; ++k) text += alphabet[rng() % alphabet.size()];
    expect_same_as_pcre2(re, text);
    if (HasFailure()) return;
  }
}

TEST(Pretokenizer, InvalidUtf8BytesAreKept) {
  const std::string bad = "ab\xff\xfe cd \xe2\x82";
  std::string joined;
  for (auto p : gpt2_pieces(bad)) joined += p;
  EXPECT_EQ(joined, bad);
}

TEST(Pretokenizer, SafeCutsDoNotChangePieces) {
  const auto cases = testing::read_json(testing::fixture("gpt2_cases.json"));
  std::string all;
  for (const auto& c : cases) all += c["text"].get<std::string>();
  const auto whole = to_strings(gpt2_pieces(all));
  std::vector<std::string> cut;
  size_t pos = 0;
  for (size_t target = 97; pos < all.size(); target += 97) {
    size_t c = gpt2_safe_cut(all, std::max(target, pos + 1));
    if (c == std::string_view::npos) c = all.size();
    for (auto p : gpt2_pieces(std::string_view(all).substr(pos, c - pos))) cut.emplace_back(p);
    pos = c;
  }
  EXPECT_EQ(cut, whole);
}

}  // namespace
}  // namespace llmkit::tokenizer
