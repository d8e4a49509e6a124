// Unicode helpers the tokenizers need: UTF-8 decoding that never throws (an invalid byte is one
// "character" of its own), repair of invalid UTF-8 into U+FFFD, GPT-2's byte <-> unicode table,
// Hangul syllable <-> jamo (the Hangul part of Unicode NFD / NFC), and the character classes of
// the GPT-2 pre-tokenization pattern (\p{L}, \p{N}, \s) taken from PCRE2's own Unicode tables so
// the hand-written scanner and the regex agree. Not a general Unicode library: no other
// normalisation forms, no case mapping.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace llmkit::tokenizer {

// Length of the valid prefix of the UTF-8 sequence starting at s[i] (1..4 when it is a whole
// character; otherwise the "maximal subpart" length, at least 1) and whether it is complete.
int utf8_sequence(std::string_view s, size_t i, bool& complete);

// Decodes one UTF-8 character at s[i] (i < s.size()). Returns its code point and sets `len` to
// its byte length (1..4). An invalid or truncated sequence returns -1 with len = 1 (that byte
// alone), so a scanner always makes progress. Inline: it is on the encoder's hot path.
inline int32_t utf8_decode(std::string_view s, size_t i, int& len) {
  const auto b0 = static_cast<uint8_t>(s[i]);
  if (b0 < 0x80) {
    len = 1;
    return b0;
  }
  bool complete = false;
  const int n = utf8_sequence(s, i, complete);
  if (!complete) {
    len = 1;
    return -1;
  }
  len = n;
  int32_t cp = b0 & (0x7F >> n);
  for (int k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<uint8_t>(s[i + k]) & 0x3F);
  return cp;
}

// Appends code point cp (0..0x10FFFF, not a surrogate) as UTF-8.
void utf8_append(std::string& out, int32_t cp);

// Byte offset of the first invalid UTF-8 sequence in s, or -1 when s is valid.
int64_t utf8_find_invalid(std::string_view s);

// s with every ill-formed subsequence replaced by U+FFFD, following Unicode's "maximal subpart"
// practice (the same output as Python's bytes.decode(errors="replace") and Rust's
// String::from_utf8_lossy). Valid input comes back unchanged.
std::string utf8_repair(std::string_view s);

// GPT-2's reversible map from the 256 byte values to printable code points: printable Latin-1
// bytes map to themselves, the others to U+0100.. in order (so ' ' -> 'Ġ', '\n' -> 'Ċ').
int32_t byte_to_unicode(uint8_t b);
// The inverse of byte_to_unicode; -1 for a code point that is not in the table.
int byte_from_unicode(int32_t cp);
// The byte-level token text of raw bytes ("Hello world" -> "HelloĠworld") and back. from_byte_level
// returns false (and leaves `out` partial) when `token` holds a character outside the table.
std::string to_byte_level(std::string_view bytes);
bool from_byte_level(std::string_view token, std::string& out);

// Hangul syllables (U+AC00..U+D7A3) decomposed into conjoining jamo (U+1100..), the NFD of
// Hangul; every other character is copied unchanged. compose_hangul is the inverse (Hangul
// part of NFC): L V [T] jamo sequences become syllables again.
std::string decompose_hangul(std::string_view s);
std::string compose_hangul(std::string_view s);

// Character classes of the GPT-2 pattern. Every code point is exactly one of them.
enum class CharClass : uint8_t { kOther = 0, kLetter = 1, kNumber = 2, kSpace = 3 };
// The class of code point cp (cp < 0, an invalid byte, is kOther). Thread-safe; the table is
// built from PCRE2 on first use (a few milliseconds).
CharClass char_class(int32_t cp);

}  // namespace llmkit::tokenizer
