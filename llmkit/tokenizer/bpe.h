// The byte-level BPE model: token bytes by id and the ranked merge list, and encoding of one
// pre-token ("word") by applying merges lowest rank first. Short words use a simple scan (fast
// for the usual < 20 bytes); long words a heap over a linked list, O(n log n), so a 100 kB run of
// one character is not quadratic. Knows nothing of special tokens or pre-tokenization (see
// tokenizer.h). Immutable after construction, so encoding is thread-safe.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "llmkit/tokenizer/hash_table.h"

namespace llmkit::tokenizer {

// Applies merges lowest rank first to the symbols `sym`, in place. lookup(a, b) returns
// (rank << 32 | merged id) for the pair (a, b), or ~0 when they do not merge. A linked list of
// symbols plus a min-heap of candidate merges keyed (rank, position), O(n log n): entries go stale
// when a neighbour merges, and a popped entry is used only if its pair still has that rank. Shared
// by the byte-level model's long words and the tokenizer.json BPE model.
template <class Lookup>
void merge_by_rank(std::vector<int32_t>& sym, const Lookup& lookup) {
  constexpr uint64_t kNone = ~uint64_t{0};
  const auto n = static_cast<int32_t>(sym.size());
  if (n < 2) return;
  std::vector<int32_t> prev(n), next(n);
  for (int32_t i = 0; i < n; ++i) prev[i] = i - 1, next[i] = i + 1 < n ? i + 1 : -1;
  std::vector<uint64_t> heap;
  auto push = [&](int32_t i) {
    if (i < 0 || next[i] < 0) return;
    const uint64_t m = lookup(sym[i], sym[next[i]]);
    if (m == kNone) return;
    heap.push_back((m >> 32 << 32) | static_cast<uint32_t>(i));
    std::push_heap(heap.begin(), heap.end(), std::greater<>());
  };
  for (int32_t i = 0; i + 1 < n; ++i) push(i);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), std::greater<>());
    const uint64_t top = heap.back();
    heap.pop_back();
    const auto i = static_cast<int32_t>(top & 0xFFFFFFFFu);
    if (sym[i] < 0 || next[i] < 0) continue;
    const uint64_t m = lookup(sym[i], sym[next[i]]);
    if (m == kNone || (m >> 32) != (top >> 32)) continue;  // stale entry
    const int32_t j = next[i];
    sym[i] = static_cast<int32_t>(m & 0xFFFFFFFFu);
    sym[j] = -1;
    next[i] = next[j];
    if (next[j] >= 0) prev[next[j]] = i;
    push(prev[i]);
    push(i);
  }
  std::erase(sym, -1);
}

struct Merge {
  int32_t left = 0, right = 0;  // the pair's token ids
  int32_t merged = 0;           // the id of the token they make
};

class Bpe {
 public:
  Bpe() = default;
  // token_bytes[id] = the raw bytes of token id ("" for ids that are not BPE tokens, such as
  // special tokens); merges in rank order (rank 0 merges first). Throws llmkit::Error when a
  // merge's result is not the concatenation of its parts.
  Bpe(std::vector<std::string> token_bytes, std::vector<Merge> merges);

  // Appends the ids of `word` (raw bytes, one pre-token) to out. Throws llmkit::Error when a byte
  // has no token of its own.
  void encode_word(std::string_view word, std::vector<int32_t>& out) const;
  // The two halves of encode_word, for callers that cache: the id of a word that BPE makes into
  // a single token (h = hash_bytes(word)), else -1; and the merging itself.
  int32_t whole_id(std::string_view word, uint64_t h) const { return whole_.find(word, h); }
  void merge_word(std::string_view word, std::vector<int32_t>& out) const;

  const std::vector<std::string>& token_bytes() const { return token_bytes_; }
  const std::vector<Merge>& merges() const { return merges_; }

 private:
  // Merges without the whole-word shortcut.
  void merge_small(std::string_view word, std::vector<int32_t>& out) const;
  void merge_large(std::string_view word, std::vector<int32_t>& out) const;
  // rank << 32 | merged id of the pair (a, b), or ~0 when it does not merge.
  uint64_t lookup(int32_t a, int32_t b) const {
    const uint64_t* v = pairs_.find(pair_key(a, b));
    return v ? *v : ~uint64_t{0};
  }
  int32_t byte_id(uint8_t b) const;

  std::vector<std::string> token_bytes_;
  std::vector<Merge> merges_;
  std::array<int32_t, 256> byte_ids_{};
  PairMap pairs_;
  // Tokens that BPE produces whole from their own bytes: such a word is one lookup, no merging.
  StringIndex whole_;
};

}  // namespace llmkit::tokenizer
