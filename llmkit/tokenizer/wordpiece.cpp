// The WordPiece model (BERT, MiniLM) on one pre-token, as tokenizers' models/wordpiece does it:
// greedy longest match from the left, pieces after the first carry continuing_subword_prefix
// ("##"); a word with a part that matches nothing, or longer than max_input_chars_per_word
// characters, becomes the single unk_token.
#include "llmkit/core/error.h"
#include "llmkit/tokenizer/hf_pipeline.h"
#include "llmkit/tokenizer/unicode.h"

namespace llmkit::tokenizer::hf {

namespace {

// Byte length of the character that ends at s[end - 1].
size_t last_char_len(std::string_view s, size_t end) {
  size_t k = end - 1;
  while (k > 0 && end - k < 4 && (static_cast<uint8_t>(s[k]) & 0xC0) == 0x80) --k;
  int len = 0;
  utf8_decode(s, k, len);
  return k + len == end ? static_cast<size_t>(len) : 1;
}

size_t count_chars(std::string_view s) {
  size_t n = 0, i = 0;
  while (i < s.size()) {
    int len = 0;
    utf8_decode(s, i, len);
    i += len, ++n;
  }
  return n;
}

}  // namespace

ModelFn make_wordpiece(const json& m, const std::string& file, const Vocab& vocab) {
  const std::string unk = m.value("unk_token", std::string("[UNK]"));
  const std::string prefix = m.value("continuing_subword_prefix", std::string("##"));
  const size_t max_chars = m.value("max_input_chars_per_word", size_t{100});
  const int32_t unk_id = vocab.find(unk);
  if (unk_id < 0) fail(file, ": model.unk_token \"", unk, "\" is not in the vocabulary");
  return [=](std::string_view word, std::vector<int32_t>& out) {
    if (count_chars(word) > max_chars) {
      out.push_back(unk_id);
      return;
    }
    const size_t before = out.size();
    std::string sub;
    size_t start = 0;
    while (start < word.size()) {
      size_t end = word.size();
      int32_t found = -1;
      while (start < end) {
        sub.assign(start > 0 ? prefix : std::string{}).append(word.substr(start, end - start));
        found = vocab.find(sub);
        if (found >= 0) break;
        end -= last_char_len(word, end);
      }
      if (found < 0) {
        out.resize(before);
        out.push_back(unk_id);
        return;
      }
      out.push_back(found);
      start = end;
    }
  };
}

}  // namespace llmkit::tokenizer::hf
