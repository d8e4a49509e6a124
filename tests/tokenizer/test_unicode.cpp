// UTF-8 decoding and repair (U+FFFD for every maximal invalid subpart, as Python and Rust do),
// GPT-2's byte <-> unicode table, Hangul <-> jamo, and the character classes.
#include <gtest/gtest.h>

#include "llmkit/tokenizer/unicode.h"

namespace llmkit::tokenizer {
namespace {

const std::string kFffd = "\xEF\xBF\xBD";

TEST(Unicode, RepairKeepsValidText) {
  const std::string s = "plain, 한국어, 😀, é";
  EXPECT_EQ(utf8_repair(s), s);
  EXPECT_EQ(utf8_find_invalid(s), -1);
}

TEST(Unicode, RepairReplacesMaximalSubparts) {
  // Cases from Unicode 15, table 3-8: each maximal subpart becomes one U+FFFD.
  EXPECT_EQ(utf8_repair("\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64"),
            "a" + kFffd + kFffd + kFffd + "b" + kFffd + "c" + kFffd + kFffd + "d");
  EXPECT_EQ(utf8_repair("\xC0\xAF"), kFffd + kFffd);                          // overlong
  EXPECT_EQ(utf8_repair("\xED\xA0\x80"), kFffd + kFffd + kFffd);              // surrogate
  EXPECT_EQ(utf8_repair("\xF4\x90\x80\x80"), kFffd + kFffd + kFffd + kFffd);  // > U+10FFFF
  EXPECT_EQ(utf8_repair("\xE2\x82"), kFffd);  // truncated at the end
  EXPECT_EQ(utf8_find_invalid("ab\xE2\x82"), 2);
}

TEST(Unicode, ByteTableIsGpt2s) {
  EXPECT_EQ(byte_to_unicode('!'), '!');
  EXPECT_EQ(byte_to_unicode(' '), 0x120);   // 'Ġ'
  EXPECT_EQ(byte_to_unicode('\n'), 0x10A);  // 'Ċ'
  EXPECT_EQ(byte_to_unicode(0xAD), 0x143);
  for (int b = 0; b < 256; ++b) EXPECT_EQ(byte_from_unicode(byte_to_unicode(b)), b);
  std::string all;
  for (int b = 0; b < 256; ++b) all += static_cast<char>(b);
  std::string back;
  ASSERT_TRUE(from_byte_level(to_byte_level(all), back));
  EXPECT_EQ(back, all);
  EXPECT_FALSE(from_byte_level("한", back));
}

TEST(Unicode, HangulJamoRoundTrip) {
  const std::string s = "한국어 텍스트, 각 값 ㄱ abc";
  const std::string jamo = decompose_hangul(s);
  EXPECT_EQ(decompose_hangul("한"), "\u1112\u1161\u11AB");
  EXPECT_EQ(decompose_hangul("가"), "\u1100\u1161");
  EXPECT_EQ(compose_hangul(jamo), s);
  EXPECT_EQ(compose_hangul("\u1100"), "\u1100");  // a lone jamo stays
}

TEST(Unicode, CharacterClasses) {
  EXPECT_EQ(char_class('a'), CharClass::kLetter);
  EXPECT_EQ(char_class(0xD55C), CharClass::kLetter);  // 한
  EXPECT_EQ(char_class(0x1100), CharClass::kLetter);  // jamo
  EXPECT_EQ(char_class('7'), CharClass::kNumber);
  EXPECT_EQ(char_class(0x00BD), CharClass::kNumber);  // ½
  EXPECT_EQ(char_class(0x3000), CharClass::kSpace);
  EXPECT_EQ(char_class(0x00A0), CharClass::kSpace);
  EXPECT_EQ(char_class(0x1F600), CharClass::kOther);  // 😀
  EXPECT_EQ(char_class(-1), CharClass::kOther);
}

}  // namespace
}  // namespace llmkit::tokenizer
