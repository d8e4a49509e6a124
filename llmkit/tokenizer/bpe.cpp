// BPE merging. Both algorithms apply the lowest-ranked mergeable pair first and, among equal
// ranks, the leftmost, which is what GPT-2's bpe() and tiktoken do: a pair made from a token of
// rank r always has a rank above r, so merging one occurrence never creates a better pair.
#include "llmkit/tokenizer/bpe.h"

#include <algorithm>
#include <cstring>
#include <functional>

#include "llmkit/core/error.h"

namespace llmkit::tokenizer {

namespace {
constexpr size_t kSmallWord = 64;  // bytes; longer words take the heap path
constexpr uint64_t kNoMerge = ~uint64_t{0};
}  // namespace

Bpe::Bpe(std::vector<std::string> token_bytes, std::vector<Merge> merges)
    : token_bytes_(std::move(token_bytes)),
      merges_(std::move(merges)),
      pairs_(merges_.size() + 1),
      whole_(token_bytes_.size() + 1) {
  byte_ids_.fill(-1);
  for (size_t id = 0; id < token_bytes_.size(); ++id) {
    const std::string& t = token_bytes_[id];
    if (t.size() == 1 && byte_ids_[static_cast<uint8_t>(t[0])] < 0)
      byte_ids_[static_cast<uint8_t>(t[0])] = static_cast<int32_t>(id);
  }
  const auto n_tokens = static_cast<int32_t>(token_bytes_.size());
  for (size_t rank = 0; rank < merges_.size(); ++rank) {
    const Merge& m = merges_[rank];
    LLMKIT_CHECK(m.left >= 0 && m.left < n_tokens && m.right >= 0 && m.right < n_tokens &&
                     m.merged >= 0 && m.merged < n_tokens,
                 "merge ", rank, " uses a token id outside the vocabulary");
    LLMKIT_CHECK(token_bytes_[m.merged] == token_bytes_[m.left] + token_bytes_[m.right], "merge ",
                 rank, " does not make the token it names (id ", m.merged, ")");
    const uint64_t key = pair_key(m.left, m.right);
    if (pairs_.find(key) != nullptr) continue;  // a repeated pair keeps its first (best) rank
    pairs_[key] = (static_cast<uint64_t>(rank) << 32) | static_cast<uint32_t>(m.merged);
  }
  std::vector<int32_t> ids;
  for (int32_t id = 0; id < n_tokens; ++id) {
    const std::string& t = token_bytes_[id];
    if (t.size() < 2) continue;
    ids.clear();
    if (t.size() <= kSmallWord)
      merge_small(t, ids);
    else
      merge_large(t, ids);
    if (ids.size() == 1 && ids[0] == id) whole_.insert(t, id);
  }
}

int32_t Bpe::byte_id(uint8_t b) const {
  const int32_t id = byte_ids_[b];
  if (id < 0) fail("tokenizer: the vocabulary has no token for byte 0x", std::hex, int{b});
  return id;
}

void Bpe::encode_word(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (word.size() == 1) {
    out.push_back(byte_id(static_cast<uint8_t>(word[0])));
    return;
  }
  const int32_t id = whole_.find(word);
  if (id >= 0)
    out.push_back(id);
  else
    merge_word(word, out);
}

void Bpe::merge_word(std::string_view word, std::vector<int32_t>& out) const {
  if (word.size() <= kSmallWord)
    merge_small(word, out);
  else
    merge_large(word, out);
}

void Bpe::merge_small(std::string_view word, std::vector<int32_t>& out) const {
  int32_t sym[kSmallWord];
  uint64_t rank[kSmallWord];  // rank[i]: the merge of (sym[i], sym[i + 1])
  size_t n = word.size();
  for (size_t i = 0; i < n; ++i) sym[i] = byte_id(static_cast<uint8_t>(word[i]));
  for (size_t i = 0; i + 1 < n; ++i) rank[i] = lookup(sym[i], sym[i + 1]);
  while (n > 1) {
    uint64_t best = kNoMerge;
    size_t at = 0;
    for (size_t i = 0; i + 1 < n; ++i) {
      if (rank[i] < best) best = rank[i], at = i;
    }
    if (best == kNoMerge) break;
    sym[at] = static_cast<int32_t>(best & 0xFFFFFFFFu);
    std::memmove(sym + at + 1, sym + at + 2, (n - at - 2) * sizeof(int32_t));
    if (n >= at + 3) std::memmove(rank + at + 1, rank + at + 2, (n - at - 3) * sizeof(uint64_t));
    --n;
    if (at > 0) rank[at - 1] = lookup(sym[at - 1], sym[at]);
    if (at + 1 < n) rank[at] = lookup(sym[at], sym[at + 1]);
  }
  out.insert(out.end(), sym, sym + n);
}

// Long words: the heap over a linked list (merge_by_rank in bpe.h).
void Bpe::merge_large(std::string_view word, std::vector<int32_t>& out) const {
  std::vector<int32_t> sym(word.size());
  for (size_t i = 0; i < word.size(); ++i) sym[i] = byte_id(static_cast<uint8_t>(word[i]));
  merge_by_rank(sym, [this](int32_t a, int32_t b) { return lookup(a, b); });
  out.insert(out.end(), sym.begin(), sym.end());
}

}  // namespace llmkit::tokenizer
