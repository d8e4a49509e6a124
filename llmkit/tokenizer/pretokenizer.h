// GPT-2 pre-tokenization: text -> pieces that BPE then encodes one by one. The pattern is
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// gpt2_split is a hand-written scanner equivalent to it (several times faster than the JIT regex);
// Pcre2Splitter runs the regex itself and is the scanner's oracle in tests. Invalid UTF-8 bytes
// count as "other" symbols, so bytes are never dropped. Not here: other models' patterns.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "llmkit/tokenizer/unicode.h"

namespace llmkit::tokenizer {

inline constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

namespace detail {

// ASCII classes without a function call: 0 other, 1 letter, 2 number, 3 space.
inline constexpr auto kAsciiClass = [] {
  struct Table {
    uint8_t c[128] = {};
  } t;
  for (int i = 'a'; i <= 'z'; ++i) t.c[i] = 1;
  for (int i = 'A'; i <= 'Z'; ++i) t.c[i] = 1;
  for (int i = '0'; i <= '9'; ++i) t.c[i] = 2;
  for (int i : {' ', '\t', '\n', '\v', '\f', '\r'}) t.c[i] = 3;
  return t;
}();

// Class of the character at s[i]; sets len to its byte length.
inline CharClass class_at(std::string_view s, size_t i, int& len) {
  const auto b = static_cast<uint8_t>(s[i]);
  if (b < 0x80) {
    len = 1;
    return static_cast<CharClass>(kAsciiClass.c[b]);
  }
  return char_class(utf8_decode(s, i, len));
}

// End of the run of characters of class k that starts at i.
inline size_t run_end(std::string_view s, size_t i, CharClass k) {
  int len = 0;
  while (i < s.size() && class_at(s, i, len) == k) i += len;
  return i;
}

// Length of a contraction ('s 't 're 've 'm 'll 'd) at s[i] == '\'', else 0.
inline size_t contraction_at(std::string_view s, size_t i) {
  if (i + 1 >= s.size()) return 0;
  const char a = s[i + 1];
  if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
  if (i + 2 >= s.size()) return 0;
  const char b = s[i + 2];
  if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
  return 0;
}

// End of the whitespace piece starting at i: the run, less its last character when more than
// one character is followed by a non-space (\s+(?!\S)), else the whole run (\s+).
inline size_t space_end(std::string_view s, size_t i) {
  size_t j = i, last = i;
  int n_chars = 0, len = 0;
  while (j < s.size() && class_at(s, j, len) == CharClass::kSpace) last = j, j += len, ++n_chars;
  if (j == s.size() || n_chars < 2) return j;
  return last;
}

}  // namespace detail

// Calls fn(piece) for each GPT-2 pre-token of text, in order; the pieces tile the text.
template <typename Fn>
void gpt2_split(std::string_view s, Fn&& fn) {
  using detail::class_at;
  size_t i = 0;
  while (i < s.size()) {
    size_t j = 0;
    int len = 0;
    if (s[i] == '\'' && (j = detail::contraction_at(s, i)) != 0) {
      j += i;
    } else {
      CharClass k = class_at(s, i, len);
      size_t start = i;
      if (s[i] == ' ' && i + 1 < s.size()) {
        int len2 = 0;
        const CharClass next = class_at(s, i + 1, len2);
        if (next != CharClass::kSpace) k = next, start = i + 1;
      }
      j = k == CharClass::kSpace ? detail::space_end(s, i) : detail::run_end(s, start, k);
    }
    fn(s.substr(i, j - i));
    i = j;
  }
}

// Same pieces as a vector (tests, tools).
std::vector<std::string_view> gpt2_pieces(std::string_view text);

// A position p near `target` (p >= target) where the text can be cut so that pre-tokenizing both
// halves gives the same pieces as the whole: s[p] is ' ' or '\n' and the character before it is
// not whitespace. Returns std::string_view::npos when there is none after target.
size_t gpt2_safe_cut(std::string_view s, size_t target);

// The reference: the GPT-2 pattern run by PCRE2 (UTF + UCP + JIT). Bytes the regex cannot
// match (invalid UTF-8) come out as pieces of their own. Thread-safe after construction.
class Pcre2Splitter {
 public:
  Pcre2Splitter();
  ~Pcre2Splitter();
  Pcre2Splitter(const Pcre2Splitter&) = delete;
  Pcre2Splitter& operator=(const Pcre2Splitter&) = delete;
  std::vector<std::string_view> split(std::string_view text) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace llmkit::tokenizer
