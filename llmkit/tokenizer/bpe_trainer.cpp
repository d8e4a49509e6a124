// BPE training from word counts. Classic incremental algorithm (as in Hugging Face tokenizers):
// count every adjacent pair once, keep the counts in a max-heap, and after each merge update only
// the words that contain the merged pair (an index pair -> words says which), adjusting the counts
// of their neighbouring pairs. Heap entries go stale when counts drop and are re-queued when
// popped. Ties go to the pair with the smaller ids, so training is deterministic.
#include <algorithm>
#include <queue>
#include <unordered_set>

#include "llmkit/core/error.h"
#include "llmkit/tokenizer/corpus.h"
#include "llmkit/tokenizer/hash_table.h"
#include "llmkit/tokenizer/unicode.h"

namespace llmkit::tokenizer {

namespace {

struct Candidate {
  int64_t count;
  uint64_t pair;
  bool operator<(const Candidate& o) const {  // max-heap: larger count, then smaller pair
    return count != o.count ? count < o.count : pair > o.pair;
  }
};

// All words as one array of symbols: word w is sym[start[w] .. start[w] + len[w]).
struct Words {
  std::vector<int32_t> sym;
  std::vector<int64_t> start;
  std::vector<int32_t> len;
  std::vector<int64_t> count;
};

class Trainer {
 public:
  Trainer(const WordCounts& wc, int32_t first_byte_id);
  // Merges the best pair into token `id`; false when no pair reaches min_frequency.
  bool merge_next(int32_t id, int64_t min_frequency, std::pair<int32_t, int32_t>& merged);

 private:
  void add(uint64_t pair, int64_t delta, int32_t word);
  void merge_word(int32_t w, int32_t a, int32_t b, int32_t z);

  Words words_;
  PairMap counts_;                           // pair -> count (int64 in uint64)
  PairMap where_;                            // pair -> index into lists_
  std::vector<std::vector<int32_t>> lists_;  // words that (may) contain the pair
  std::priority_queue<Candidate> heap_;
  std::vector<uint64_t> grown_;  // pairs whose count rose during the current merge
};

Trainer::Trainer(const WordCounts& wc, int32_t first_byte_id) : counts_(1 << 16), where_(1 << 16) {
  size_t n_sym = 0;
  for (const std::string& w : wc.words) n_sym += w.size();
  words_.sym.reserve(n_sym);
  for (size_t w = 0; w < wc.words.size(); ++w) {
    words_.start.push_back(static_cast<int64_t>(words_.sym.size()));
    words_.len.push_back(static_cast<int32_t>(wc.words[w].size()));
    words_.count.push_back(wc.counts[w]);
    for (char c : wc.words[w]) words_.sym.push_back(first_byte_id + static_cast<uint8_t>(c));
  }
  for (size_t w = 0; w < wc.words.size(); ++w) {
    const int32_t* s = words_.sym.data() + words_.start[w];
    for (int32_t i = 0; i + 1 < words_.len[w]; ++i)
      add(pair_key(s[i], s[i + 1]), words_.count[w], static_cast<int32_t>(w));
  }
  counts_.for_each([&](uint64_t pair, uint64_t c) { heap_.push({static_cast<int64_t>(c), pair}); });
  grown_.clear();
}

// Adds delta to the pair's count; a word that gains the pair is indexed under it.
void Trainer::add(uint64_t pair, int64_t delta, int32_t word) {
  uint64_t& c = counts_[pair];
  c = static_cast<uint64_t>(static_cast<int64_t>(c) + delta);
  if (delta <= 0) return;
  uint64_t& slot = where_[pair];
  if (slot == 0) {
    lists_.emplace_back();
    slot = lists_.size();  // 1-based so that 0 means "no list yet"
  }
  auto& list = lists_[slot - 1];
  if (list.empty() || list.back() != word) list.push_back(word);
  grown_.push_back(pair);
}

// Replaces every (a, b) in word w by z, left to right, updating neighbour pair counts.
void Trainer::merge_word(int32_t w, int32_t a, int32_t b, int32_t z) {
  int32_t* s = words_.sym.data() + words_.start[w];
  const int32_t n = words_.len[w];
  const int64_t c = words_.count[w];
  int32_t out = 0;
  for (int32_t i = 0; i < n;) {
    if (i + 1 < n && s[i] == a && s[i + 1] == b) {
      add(pair_key(a, b), -c, w);
      if (out > 0) {
        add(pair_key(s[out - 1], a), -c, w);
        add(pair_key(s[out - 1], z), c, w);
      }
      if (i + 2 < n) {
        add(pair_key(b, s[i + 2]), -c, w);
        add(pair_key(z, s[i + 2]), c, w);
      }
      s[out++] = z;
      i += 2;
    } else {
      s[out++] = s[i++];
    }
  }
  words_.len[w] = out;
}

bool Trainer::merge_next(int32_t id, int64_t min_frequency, std::pair<int32_t, int32_t>& merged) {
  while (!heap_.empty()) {
    const Candidate top = heap_.top();
    heap_.pop();
    const uint64_t* current = counts_.find(top.pair);
    const int64_t count = current ? static_cast<int64_t>(*current) : 0;
    if (count != top.count) {  // stale: the count dropped since this entry was queued
      if (count > 0) heap_.push({count, top.pair});
      continue;
    }
    if (count < std::max<int64_t>(min_frequency, 1)) return false;
    const auto a = static_cast<int32_t>(top.pair >> 32), b = static_cast<int32_t>(top.pair);
    const uint64_t* slot = where_.find(top.pair);
    std::vector<int32_t> list = slot ? std::move(lists_[*slot - 1]) : std::vector<int32_t>{};
    std::sort(list.begin(), list.end());
    list.erase(std::unique(list.begin(), list.end()), list.end());
    grown_.clear();
    for (int32_t w : list) merge_word(w, a, b, id);
    std::sort(grown_.begin(), grown_.end());
    grown_.erase(std::unique(grown_.begin(), grown_.end()), grown_.end());
    for (uint64_t p : grown_) heap_.push({static_cast<int64_t>(*counts_.find(p)), p});
    merged = {a, b};
    return true;
  }
  return false;
}

}  // namespace

TokenizerParts train_bpe(const WordCounts& wc, const TrainOptions& options) {
  TokenizerParts parts;
  parts.model = Model::kBpe;
  parts.hangul_to_jamo = options.hangul_to_jamo;
  std::unordered_set<std::string> seen;
  for (const std::string& s : options.special_tokens) {
    if (s.empty()) fail("train: a special token is empty");
    if (!seen.insert(s).second) fail("train: special token \"", s, "\" is listed twice");
    parts.special_ids.push_back(static_cast<int32_t>(parts.tokens.size()));
    parts.tokens.push_back(s);
  }
  const auto first_byte = static_cast<int32_t>(parts.tokens.size());
  if (options.vocab_size < first_byte + 256)
    fail("train: vocab size ", options.vocab_size, " is too small; byte-level BPE needs at least ",
         first_byte + 256, " (", first_byte, " special tokens + 256 bytes)");
  for (int b = 0; b < 256; ++b) {
    parts.tokens.push_back(to_byte_level(std::string(1, static_cast<char>(b))));
    if (seen.count(parts.tokens.back()))
      fail("train: special token \"", parts.tokens.back(), "\" is also a byte token");
  }
  Trainer trainer(wc, first_byte);
  const int64_t n_merges = options.vocab_size - static_cast<int64_t>(parts.tokens.size());
  std::pair<int32_t, int32_t> m;
  for (int64_t k = 0; k < n_merges; ++k) {
    const auto id = static_cast<int32_t>(parts.tokens.size());
    if (!trainer.merge_next(id, options.min_frequency, m)) break;
    parts.tokens.push_back(parts.tokens[m.first] + parts.tokens[m.second]);
    parts.merges.push_back(m);
    if (options.on_progress && ((k + 1) % 64 == 0 || k + 1 == n_merges))
      options.on_progress({"merge", k + 1, n_merges});
  }
  return parts;
}

// "a.txt, b.txt" for error messages (the first few names, then how many more).
static std::string file_list(std::span<const std::string> files) {
  std::string s;
  for (size_t i = 0; i < files.size() && i < 3; ++i) s += (i ? ", " : "") + files[i];
  if (files.size() > 3) s += " and " + std::to_string(files.size() - 3) + " more";
  return s;
}

Tokenizer Tokenizer::train(std::span<const std::string> files, const TrainOptions& options) {
  if (files.empty()) fail("train: no input files");
  if (options.model == Model::kChar) {
    TokenizerParts parts = train_chars(files, {}, options);
    if (parts.tokens.size() == parts.special_ids.size())
      fail("train: the input files hold no text (", file_list(files), ")");
    return Tokenizer(std::move(parts));
  }
  const WordCounts wc = count_words(files, options);
  if (wc.n_bytes == 0) fail("train: the input files are empty (", file_list(files), ")");
  return Tokenizer(train_bpe(wc, options));
}

Tokenizer Tokenizer::train_from_text(std::string_view text, const TrainOptions& options) {
  if (options.model == Model::kChar) return Tokenizer(train_chars({}, text, options));
  return Tokenizer(train_bpe(count_words_in_text(text, options), options));
}

}  // namespace llmkit::tokenizer
