// Term extraction for BM25 (terms.h).
#include "llmkit/retrieval/terms.h"

#include <algorithm>
#include <array>
#include <unordered_set>

#include "llmkit/tokenizer/unicode.h"

namespace llmkit::retrieval {
namespace {

bool is_hangul(int32_t cp) {
  return (cp >= 0xAC00 && cp <= 0xD7A3) || (cp >= 0x1100 && cp <= 0x11FF) ||
         (cp >= 0x3130 && cp <= 0x318F);
}

// Appends a Hangul run (whole UTF-8 characters in `chars`) as bigrams.
void append_hangul(const std::vector<std::string_view>& chars, std::string& out) {
  auto sep = [&] {
    if (!out.empty()) out += ' ';
  };
  if (chars.size() == 1) {
    sep();
    out += chars[0];
    return;
  }
  for (size_t i = 0; i + 1 < chars.size(); ++i) {
    sep();
    out += chars[i];
    out += chars[i + 1];
  }
}

}  // namespace

std::string index_terms(std::string_view text) {
  std::string out;
  std::string word;                      // the current non-Hangul word
  std::vector<std::string_view> hangul;  // the current Hangul run, one entry per character
  auto flush = [&] {
    if (!word.empty()) {
      if (!out.empty()) out += ' ';
      out += word;
      word.clear();
    }
    if (!hangul.empty()) {
      append_hangul(hangul, out);
      hangul.clear();
    }
  };
  for (size_t i = 0; i < text.size();) {
    int len = 1;
    const int32_t cp = tokenizer::utf8_decode(text, i, len);
    const std::string_view ch = text.substr(i, static_cast<size_t>(len));
    i += static_cast<size_t>(len);
    if (cp >= 0 && is_hangul(cp)) {
      if (!word.empty()) flush();
      hangul.push_back(ch);
      continue;
    }
    const auto cls = cp < 0 ? tokenizer::CharClass::kOther : tokenizer::char_class(cp);
    if (cls == tokenizer::CharClass::kLetter || cls == tokenizer::CharClass::kNumber) {
      if (!hangul.empty()) flush();
      word += ch;
    } else {
      flush();
    }
  }
  flush();
  return out;
}

std::vector<std::string> query_terms(std::string_view text) {
  // Function words of English questions; everything else counts (BM25's IDF weighs the rest).
  static const std::unordered_set<std::string> stop = {
      "a",    "an",    "the",   "is",   "are",   "was",  "were",   "be",    "to",   "of",
      "in",   "on",    "at",    "for",  "and",   "or",   "it",     "its",   "this", "that",
      "what", "which", "who",   "whom", "how",   "why",  "when",   "where", "do",   "does",
      "did",  "can",   "could", "i",    "my",    "me",   "you",    "your",  "with", "by",
      "from", "as",    "there", "if",   "about", "into", "should", "would", "will", "has",
      "have", "had",   "so",    "not",  "no",    "we",   "our",    "they",  "them", "get"};
  std::vector<std::string> terms;
  std::unordered_set<std::string> seen;
  const std::string all = index_terms(text);
  size_t start = 0;
  while (start < all.size()) {
    size_t end = all.find(' ', start);
    if (end == std::string::npos) end = all.size();
    std::string t = all.substr(start, end - start);
    start = end + 1;
    std::transform(t.begin(), t.end(), t.begin(), [](char c) {
      return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
    });
    if (t.empty() || stop.count(t) || !seen.insert(t).second) continue;
    terms.push_back(std::move(t));
  }
  return terms;
}

std::string fts_match_expression(const std::vector<std::string>& terms) {
  std::string out;
  for (const auto& t : terms) {
    if (!out.empty()) out += " OR ";
    out += '"';
    for (char c : t) {
      if (c == '"') out += '"';  // FTS5 escapes a quote inside a string by doubling it
      out += c;
    }
    out += '"';
  }
  return out;
}

}  // namespace llmkit::retrieval
