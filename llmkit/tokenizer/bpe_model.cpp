// The Hugging Face BPE model on one pre-token, as tokenizers' models/bpe does it: characters
// (byte-level characters after a ByteLevel pre-tokenizer) looked up in the vocabulary, with
// continuing_subword_prefix / end_of_word_suffix, byte_fallback to <0xAB> tokens, unk_token
// (fused when fuse_unk), then merges applied lowest rank first, leftmost among equals.
// A plain byte-level BPE (GPT-2, SmolLM2, Qwen2, Llama 3) takes the fast Bpe of bpe.h instead.
#include <algorithm>
#include <functional>

#include "llmkit/core/error.h"
#include "llmkit/tokenizer/bpe.h"
#include "llmkit/tokenizer/hf_pipeline.h"
#include "llmkit/tokenizer/unicode.h"

namespace llmkit::tokenizer::hf {

namespace {

struct BpeConfig {
  std::string prefix, suffix;
  int32_t unk = -1;
  bool byte_fallback = false, fuse_unk = false, ignore_merges = false, byte_level = false;
};

std::string string_or_empty(const json& m, const char* key, const std::string& file) {
  const auto it = m.find(key);
  if (it == m.end() || it->is_null()) return {};
  if (!it->is_string()) fail(file, ": model.", key, " must be a string or null");
  return it->get<std::string>();
}

class CharBpe {
 public:
  CharBpe(BpeConfig c, const Vocab& vocab, const std::vector<std::pair<int32_t, int32_t>>& merges,
          const std::string& file)
      : c_(std::move(c)), vocab_(vocab), pairs_(merges.size() + 1) {
    const auto& tokens = *vocab.tokens;
    for (size_t rank = 0; rank < merges.size(); ++rank) {
      const auto [a, b] = merges[rank];
      const std::string& right = tokens[b];
      const std::string merged = tokens[a] + right.substr(std::min(c_.prefix.size(), right.size()));
      const int32_t id = vocab.find(merged);
      if (id < 0)
        fail(file, ": model.merges[", rank, "] makes \"", merged, "\", which is not in the vocab");
      pairs_[pair_key(a, b)] = (static_cast<uint64_t>(rank) << 32) | static_cast<uint32_t>(id);
    }
    for (int b = 0; b < 256; ++b) {
      char name[8];
      std::snprintf(name, sizeof name, "<0x%02X>", b);
      byte_ids_[b] = vocab.find(name);
    }
  }

  void encode(std::string_view piece, std::vector<int32_t>& out) const {
    std::string converted;
    if (c_.byte_level) converted = to_byte_level(piece), piece = converted;
    if (piece.empty()) return;
    if (c_.ignore_merges) {
      const int32_t id = vocab_.find(piece);
      if (id >= 0) {
        out.push_back(id);
        return;
      }
    }
    std::vector<int32_t> sym = initial_symbols(piece);
    merge(sym);
    out.insert(out.end(), sym.begin(), sym.end());
  }

 private:
  // models/bpe/model.rs merge_word, before the merges.
  std::vector<int32_t> initial_symbols(std::string_view w) const {
    std::vector<int32_t> sym;
    int32_t pending_unk = -1;  // an unk waiting to be emitted (fuse_unk joins runs of them)
    size_t i = 0;
    std::string s;
    while (i < w.size()) {
      int len = 0;
      utf8_decode(w, i, len);
      s.assign(w.substr(i, len));
      if (i != 0) s.insert(0, c_.prefix);
      if (i + len == w.size()) s += c_.suffix;
      i += len;
      const int32_t id = vocab_.find(s);
      if (id >= 0) {
        if (pending_unk >= 0) sym.push_back(pending_unk), pending_unk = -1;
        sym.push_back(id);
        continue;
      }
      if (c_.byte_fallback) {
        bool all = true;
        for (char ch : s) all = all && byte_ids_[static_cast<uint8_t>(ch)] >= 0;
        if (all) {
          for (char ch : s) sym.push_back(byte_ids_[static_cast<uint8_t>(ch)]);
          continue;
        }
      }
      if (c_.unk >= 0) {
        if (pending_unk >= 0 && !c_.fuse_unk) sym.push_back(pending_unk);
        pending_unk = c_.unk;
      }
    }
    if (pending_unk >= 0) sym.push_back(pending_unk);
    return sym;
  }

  uint64_t lookup(int32_t a, int32_t b) const {
    const uint64_t* v = pairs_.find(pair_key(a, b));
    return v ? *v : ~uint64_t{0};
  }

  void merge(std::vector<int32_t>& sym) const {
    merge_by_rank(sym, [this](int32_t a, int32_t b) { return lookup(a, b); });
  }

  BpeConfig c_;
  Vocab vocab_;
  PairMap pairs_;
  int32_t byte_ids_[256];
};

// Byte-level BPE without prefixes, suffixes or fallbacks: the tuned merger of bpe.h on raw bytes.
ModelFn make_fast(const Vocab& vocab, const std::vector<std::pair<int32_t, int32_t>>& merges,
                  bool ignore_merges) {
  const auto& tokens = *vocab.tokens;
  std::vector<std::string> bytes(tokens.size());
  auto raw = std::make_shared<StringIndex>(tokens.size());
  for (size_t id = 0; id < static_cast<size_t>(vocab.n_model); ++id) {
    std::string b;
    if (from_byte_level(tokens[id], b)) {
      raw->insert(b, static_cast<int32_t>(id));
      bytes[id] = std::move(b);
    }
  }
  std::vector<Merge> list;
  list.reserve(merges.size());
  for (const auto& [a, b] : merges) {
    // A merge of tokens that are not byte-level text can never apply to byte-level input.
    const int32_t merged = vocab.find(tokens[a] + tokens[b]);
    if (merged >= 0 && !bytes[a].empty() && !bytes[b].empty() && !bytes[merged].empty())
      list.push_back({a, b, merged});
  }
  auto bpe = std::make_shared<Bpe>(std::move(bytes), std::move(list));
  return [bpe, raw, ignore_merges](std::string_view piece, std::vector<int32_t>& out) {
    if (ignore_merges && !piece.empty()) {
      const int32_t id = raw->find(piece);
      if (id >= 0) {
        out.push_back(id);
        return;
      }
    }
    bpe->encode_word(piece, out);
  };
}

}  // namespace

ModelFn make_bpe(const json& m, const std::string& file, const Vocab& vocab,
                 const std::vector<std::pair<int32_t, int32_t>>& merges, bool byte_level) {
  const json dropout = m.value("dropout", json());
  if (!dropout.is_null() && !(dropout.is_number() && dropout.get<double>() == 0.0))
    fail(file, ": model.dropout must be null (BPE dropout is a training-time option)");
  BpeConfig c;
  c.prefix = string_or_empty(m, "continuing_subword_prefix", file);
  c.suffix = string_or_empty(m, "end_of_word_suffix", file);
  const std::string unk = string_or_empty(m, "unk_token", file);
  c.byte_fallback = m.value("byte_fallback", false);
  c.fuse_unk = m.value("fuse_unk", false);
  c.ignore_merges = m.value("ignore_merges", false);
  c.byte_level = byte_level;
  if (!unk.empty()) {
    c.unk = vocab.find(unk);
    if (c.unk < 0) fail(file, ": model.unk_token \"", unk, "\" is not in the vocabulary");
  }
  bool all_bytes = byte_level;
  for (int b = 0; b < 256 && all_bytes; ++b) {
    std::string ch;
    utf8_append(ch, byte_to_unicode(static_cast<uint8_t>(b)));
    all_bytes = vocab.find(ch) >= 0;
  }
  for (const auto& [a, b] : merges)  // the fast merger has no room for prefixes in merges
    if (!all_bytes || vocab.find((*vocab.tokens)[a] + (*vocab.tokens)[b]) < 0) all_bytes = false;
  if (all_bytes && c.prefix.empty() && c.suffix.empty())
    return make_fast(vocab, merges, c.ignore_merges);
  auto model = std::make_shared<CharBpe>(std::move(c), vocab, merges, file);
  return [model](std::string_view piece, std::vector<int32_t>& out) { model->encode(piece, out); };
}

}  // namespace llmkit::tokenizer::hf
