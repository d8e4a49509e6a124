// The character (syllable) tokenizer of the concept notes: cut text into characters, give each
// distinct character an id in code-point order (str2idx), keep the reverse list (idx2str).
// With hangul_to_jamo the characters are jamo instead of syllables. When vocab_size is smaller
// than the number of distinct characters the most frequent are kept and the rest map to [UNK].
#include <algorithm>
#include <map>
#include <unordered_set>

#include "llmkit/core/error.h"
#include "llmkit/tokenizer/corpus.h"
#include "llmkit/tokenizer/unicode.h"

namespace llmkit::tokenizer {

namespace {

// Counts characters; reports the first invalid UTF-8 byte (those bytes are not counted).
void count_chars(std::string_view text, const std::string& where, int64_t offset,
                 const TrainOptions& options, std::map<int32_t, int64_t>& counts, bool& warned) {
  std::string decomposed;
  if (options.hangul_to_jamo) decomposed = decompose_hangul(text), text = decomposed;
  size_t i = 0;
  while (i < text.size()) {
    int len = 0;
    const int32_t cp = utf8_decode(text, i, len);
    if (cp >= 0) {
      ++counts[cp];
    } else if (!warned && options.on_warning) {
      warned = true;
      options.on_warning(where + ": invalid UTF-8 at byte " + std::to_string(offset + i) +
                         " (such bytes become [UNK])");
    }
    i += len;
  }
}

}  // namespace

TokenizerParts train_chars(std::span<const std::string> files, std::string_view text,
                           const TrainOptions& options) {
  std::map<int32_t, int64_t> counts;
  std::vector<bool> warned(files.size() + 1, false);
  bool text_warned = false;
  if (files.empty()) {
    count_chars(text, "text", 0, options, counts, text_warned);
  } else {
    read_corpus(files, 16 << 20, options, [&](const CorpusBlock& b) {
      bool w = warned[b.file];
      count_chars(b.text, files[b.file], b.offset, options, counts, w);
      warned[b.file] = w;
    });
  }
  TokenizerParts parts;
  parts.model = Model::kChar;
  parts.hangul_to_jamo = options.hangul_to_jamo;
  std::unordered_set<std::string> seen;
  for (const std::string& s : options.special_tokens) {
    if (s.empty() || !seen.insert(s).second)
      fail("train: special token \"", s, "\" is empty or repeated");
    parts.special_ids.push_back(static_cast<int32_t>(parts.tokens.size()));
    parts.tokens.push_back(s);
  }
  if (!seen.count("[UNK]")) {
    parts.special_ids.push_back(static_cast<int32_t>(parts.tokens.size()));
    parts.tokens.push_back("[UNK]");
  }
  parts.unk_id = static_cast<int32_t>(std::find(parts.tokens.begin(), parts.tokens.end(), "[UNK]") -
                                      parts.tokens.begin());
  std::vector<std::pair<int32_t, int64_t>> chars(counts.begin(), counts.end());
  const int64_t room = options.vocab_size > 0
                           ? options.vocab_size - static_cast<int64_t>(parts.tokens.size())
                           : INT64_MAX;
  if (room < static_cast<int64_t>(chars.size())) {
    // keep the most frequent, ties to the smaller code point, then back to code-point order
    std::stable_sort(chars.begin(), chars.end(),
                     [](const auto& x, const auto& y) { return x.second > y.second; });
    chars.resize(std::max<int64_t>(room, 0));
    std::sort(chars.begin(), chars.end());
  }
  for (const auto& [cp, n] : chars) {
    std::string s;
    utf8_append(s, cp);
    if (seen.count(s)) continue;  // a one-character special token already has an id
    parts.tokens.push_back(std::move(s));
  }
  return parts;
}

}  // namespace llmkit::tokenizer
