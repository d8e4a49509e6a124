// The tokenizer.json pipeline put together: added tokens are split out of the raw text first
// (those with normalized = false), then each remaining stretch is normalized and split again at
// the normalized added tokens, pre-tokenized and run through the model; the post-processor adds
// [CLS]/[SEP]/<s> on request. Matching follows tokenizers' AddedVocabulary: leftmost-longest,
// lstrip/rstrip swallow neighbouring whitespace, single_word needs word boundaries.
#include <algorithm>

#include "llmkit/core/error.h"
#include "llmkit/tokenizer/hf_pipeline.h"
#include "llmkit/tokenizer/unicode.h"

namespace llmkit::tokenizer::hf {

namespace {

std::vector<AddedToken> read_added(const json& list, const std::string& file) {
  std::vector<AddedToken> out;
  if (!list.is_array()) return out;
  for (const json& t : list) {
    AddedToken a;
    a.id = t.value("id", -1);
    a.content = t.value("content", std::string{});
    if (a.id < 0 || a.content.empty()) fail(file, ": added_tokens entry ", t.dump(), " is bad");
    a.special = t.value("special", true);
    a.lstrip = t.value("lstrip", false);
    a.rstrip = t.value("rstrip", false);
    a.normalized = t.value("normalized", !a.special);
    a.single_word = t.value("single_word", false);
    out.push_back(std::move(a));
  }
  return out;
}

bool is_word_char(int32_t cp) {
  return cp == '_' || is_alphanumeric(cp);
}

// The character ending at s[end - 1] / starting at s[begin], -1 when there is none.
int32_t char_before(std::string_view s, size_t end) {
  if (end == 0) return -1;
  size_t k = end - 1;
  while (k > 0 && end - k < 4 && (static_cast<uint8_t>(s[k]) & 0xC0) == 0x80) --k;
  int len = 0;
  const int32_t cp = utf8_decode(s, k, len);
  return k + len == end ? cp : -1;
}

int32_t char_at(std::string_view s, size_t begin) {
  if (begin >= s.size()) return -1;
  int len = 0;
  return utf8_decode(s, begin, len);
}

struct Match {
  size_t b, e;
  int32_t id;  // -1: ordinary text
};

// added_vocabulary.rs find_matches: the pieces of s, alternating text and added tokens.
// `which[k]` says whether candidate k takes part; contents[k] is what it looks like here.
std::vector<Match> find_added(std::string_view s, const std::vector<AddedToken>& added,
                              const std::vector<std::string>& contents,
                              const std::vector<uint8_t>& which) {
  std::vector<Match> out;
  std::vector<size_t> next(added.size(), std::string_view::npos);
  for (size_t k = 0; k < added.size(); ++k)
    if (which[k] && !contents[k].empty()) next[k] = s.find(contents[k]);
  size_t pos = 0, done = 0;  // pos: where the search goes on; done: end of the last piece
  while (true) {
    size_t best = std::string_view::npos, best_len = 0, best_k = 0;
    for (size_t k = 0; k < added.size(); ++k) {
      if (next[k] == std::string_view::npos) continue;
      if (next[k] < pos) next[k] = s.find(contents[k], pos);
      if (next[k] == std::string_view::npos) continue;
      if (next[k] < best || (next[k] == best && contents[k].size() > best_len))
        best = next[k], best_len = contents[k].size(), best_k = k;
    }
    if (best == std::string_view::npos) break;
    const AddedToken& a = added[best_k];
    size_t b = best, e = best + best_len;
    pos = e;
    if (a.single_word && (is_word_char(char_before(s, b)) || is_word_char(char_at(s, e)))) continue;
    if (a.lstrip) {
      size_t nb = b;
      while (nb > 0 && is_whitespace(char_before(s, nb))) {
        --nb;
        while (nb > 0 && (static_cast<uint8_t>(s[nb]) & 0xC0) == 0x80) --nb;
      }
      b = std::max(nb, done);
    }
    if (a.rstrip) {
      int len = 0;
      while (e < s.size() && is_whitespace(utf8_decode(s, e, len))) e += len;
    }
    if (done < b) out.push_back({done, b, -1});
    out.push_back({b, e, a.id});
    done = e;
  }
  if (done < s.size()) out.push_back({done, s.size(), -1});
  return out;
}

}  // namespace

Pipeline::Pipeline(const json& config, const std::string& file,
                   const std::vector<std::string>& tokens, const StringIndex& index,
                   const std::vector<std::pair<int32_t, int32_t>>& merges,
                   const std::vector<double>& scores) {
  const Vocab vocab{&tokens, &index};
  added_ = read_added(config.value("added_tokens", json::array()), file);
  for (const AddedToken& a : added_) {
    if (a.id >= static_cast<int32_t>(tokens.size()) || tokens[a.id] != a.content)
      fail(file, ": added token \"", a.content, "\" does not match the vocabulary at id ", a.id);
  }
  normalize_ = make_normalizer(config.value("normalizer", json()), file);
  bool byte_level = false;
  pre_tokenize_ = make_pre_tokenizer(config.value("pre_tokenizer", json()), file, byte_level);
  const json model = config.value("model", json::object());
  const std::string type = model.value("type", std::string("BPE"));
  if (type == "BPE") {
    model_ = make_bpe(model, file, vocab, merges, byte_level);
  } else if (type == "WordPiece" || type == "Unigram") {
    ModelFn m = type == "WordPiece" ? make_wordpiece(model, file, vocab)
                                    : make_unigram(model, file, vocab, scores);
    if (byte_level)
      model_ = [m](std::string_view p, std::vector<int32_t>& out) { m(to_byte_level(p), out); };
    else
      model_ = std::move(m);
  } else {
    fail(file, ": model \"", type, "\" is not supported (BPE, WordPiece, Unigram)");
  }
  post_process_ = make_post_processor(config.value("post_processor", json()), file, vocab);
  decode_ = make_decoder(config.value("decoder", json()), file);
  has_decoder_ = static_cast<bool>(decode_);
  for (const AddedToken& a : added_) {
    std::string c = a.content;
    if (a.normalized && normalize_) normalize_(c);
    normalized_content_.push_back(std::move(c));
  }
}

void Pipeline::encode_segment(std::string_view text, bool at_start,
                              const std::vector<uint8_t>& allowed,
                              std::vector<int32_t>& out) const {
  std::string normalized(text);
  if (normalize_) normalize_(normalized);
  std::vector<uint8_t> which(added_.size());
  for (size_t k = 0; k < added_.size(); ++k)
    which[k] = added_[k].normalized && (!added_[k].special || allowed[added_[k].id]);
  std::vector<Piece> pieces;
  for (const Match& m : find_added(normalized, added_, normalized_content_, which)) {
    if (m.id >= 0) {
      out.push_back(m.id);
      continue;
    }
    pieces.assign(1, Piece{normalized.substr(m.b, m.e - m.b), at_start && m.b == 0});
    if (pre_tokenize_) pre_tokenize_(pieces);
    for (const Piece& p : pieces) model_(p.text, out);
  }
}

void Pipeline::encode(std::string_view text, const std::vector<uint8_t>& allowed,
                      bool add_special_tokens, std::vector<int32_t>& out) const {
  const size_t before = out.size();
  std::vector<uint8_t> which(added_.size());
  std::vector<std::string> contents(added_.size());
  for (size_t k = 0; k < added_.size(); ++k) {
    which[k] = !added_[k].normalized && (!added_[k].special || allowed[added_[k].id]);
    contents[k] = added_[k].content;
  }
  for (const Match& m : find_added(text, added_, contents, which)) {
    if (m.id >= 0)
      out.push_back(m.id);
    else
      encode_segment(text.substr(m.b, m.e - m.b), m.b == 0, allowed, out);
  }
  if (add_special_tokens && post_process_) {
    std::vector<int32_t> ids(out.begin() + before, out.end());
    post_process_(ids);
    out.resize(before);
    out.insert(out.end(), ids.begin(), ids.end());
  }
}

std::string Pipeline::decode(const std::vector<std::string>& tokens) const {
  std::vector<std::string> t = tokens;
  std::string text;
  if (has_decoder_) {
    decode_(t);
    for (const std::string& s : t) text += s;
  } else {
    for (size_t i = 0; i < t.size(); ++i) (i ? text += ' ' : text) += t[i];
  }
  return utf8_repair(text);
}

}  // namespace llmkit::tokenizer::hf
