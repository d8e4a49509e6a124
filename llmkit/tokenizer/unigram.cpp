// The Unigram model (T5, ALBERT, XLNet style SentencePiece) on one pre-token, as tokenizers'
// models/unigram encode_optimized does it: Viterbi over every vocabulary piece that matches at
// each character boundary, score = sum of piece log-probabilities, an unknown character costs
// min_score - 10 and becomes unk_id (runs of them fused); pieces not in the vocabulary fall
// back to <0xAB> byte tokens when byte_fallback is set.
#include <algorithm>

#include "llmkit/core/error.h"
#include "llmkit/tokenizer/hf_pipeline.h"
#include "llmkit/tokenizer/unicode.h"

namespace llmkit::tokenizer::hf {

namespace {
constexpr double kUnkPenalty = 10.0;
}  // namespace

ModelFn make_unigram(const json& m, const std::string& file, const Vocab& vocab,
                     const std::vector<double>& scores) {
  const auto n = static_cast<int64_t>(vocab.tokens->size());
  if (static_cast<int64_t>(scores.size()) != n)
    fail(file, ": model.vocab of a Unigram needs a score for every piece");
  const json unk_json = m.value("unk_id", json());
  int32_t unk = -1;
  if (unk_json.is_number_integer()) {
    unk = unk_json.get<int32_t>();
    if (unk < 0 || unk >= n) fail(file, ": model.unk_id ", unk, " is outside the vocabulary");
  } else if (!unk_json.is_null()) {
    fail(file, ": model.unk_id must be an integer or null");
  }
  const bool byte_fallback = m.value("byte_fallback", false);
  double min_score = 0;
  size_t max_len = 0;
  for (int64_t id = 0; id < n; ++id) {
    min_score = id == 0 ? scores[id] : std::min(min_score, scores[id]);
    max_len = std::max(max_len, (*vocab.tokens)[id].size());
  }
  const double unk_score = min_score - kUnkPenalty;
  std::vector<int32_t> byte_ids(256);
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    byte_ids[b] = vocab.find(name);
  }
  return [=, &scores](std::string_view s, std::vector<int32_t>& out) {
    struct Node {
      int32_t id = -1;
      double score = 0;
      int64_t from = -1;  // start of the best piece ending here; -1 = unreached
    };
    std::vector<Node> best(s.size() + 1);
    size_t start = 0;
    while (start < s.size()) {
      const double here = best[start].score;
      int mblen = 0;
      utf8_decode(s, start, mblen);
      bool single = false;
      for (size_t end = start + 1; end <= s.size() && end - start <= max_len; ++end) {
        const int32_t id = vocab.find(s.substr(start, end - start));
        if (id < 0) continue;
        const double cand = here + scores[id];
        Node& t = best[end];
        if (t.from < 0 || cand > t.score) t = {id, cand, static_cast<int64_t>(start)};
        if (end - start == static_cast<size_t>(mblen)) single = true;
      }
      if (!single) {
        if (unk < 0) fail(file, ": a Unigram without unk_id met a character it cannot encode");
        Node& t = best[start + mblen];
        const double cand = here + unk_score;
        if (t.from < 0 || cand > t.score) t = {unk, cand, static_cast<int64_t>(start)};
      }
      start += mblen;
    }
    // Walk back; consecutive unknown pieces fuse into one (fuse_unk is always on for Unigram).
    std::vector<std::pair<size_t, size_t>> pieces;
    std::vector<int32_t> ids;
    for (size_t end = s.size(); end > 0;) {
      const Node& node = best[end];
      const auto from = static_cast<size_t>(node.from);
      if (node.id == unk && !ids.empty() && ids.back() == unk)
        pieces.back().first = from;
      else
        pieces.emplace_back(from, end), ids.push_back(node.id);
      end = from;
    }
    for (size_t k = pieces.size(); k-- > 0;) {
      const std::string_view piece = s.substr(pieces[k].first, pieces[k].second - pieces[k].first);
      const int32_t id = vocab.find(piece);
      if (id >= 0) {
        out.push_back(id);
        continue;
      }
      bool all = byte_fallback;
      for (char c : piece) all = all && byte_ids[static_cast<uint8_t>(c)] >= 0;
      if (all) {
        for (char c : piece) out.push_back(byte_ids[static_cast<uint8_t>(c)]);
      } else {
        out.push_back(unk);
      }
    }
  };
}

}  // namespace llmkit::tokenizer::hf
