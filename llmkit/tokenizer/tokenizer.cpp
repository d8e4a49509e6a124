// Tokenizer: assembling the parts, encoding (special-token split -> pre-tokenize -> BPE with a
// per-call cache, threads over big inputs) and decoding. File formats live in tokenizer_json.cpp
// and gpt2_files.cpp, training in bpe_trainer.cpp and char_model.cpp. A tokenizer with a Hugging
// Face pipeline (TokenizerParts::pipeline) hands encode and decode to hf::Pipeline instead.
#include "llmkit/tokenizer/tokenizer.h"

#include <algorithm>

#include "llmkit/core/error.h"
#include "llmkit/core/parallel.h"
#include "llmkit/tokenizer/bpe.h"
#include "llmkit/tokenizer/hash_table.h"
#include "llmkit/tokenizer/hf_pipeline.h"
#include "llmkit/tokenizer/pretokenizer.h"
#include "llmkit/tokenizer/unicode.h"

namespace llmkit::tokenizer {

namespace {
constexpr size_t kCacheMinText = 2048;        // smaller texts skip the word cache
constexpr size_t kCacheMaxBytes = 1 << 20;    // cache keys kept before it is cleared
constexpr size_t kParallelMinText = 1 << 20;  // one text splits across threads above this
}  // namespace

// Words that took several tokens, remembered for the rest of one encode call. Frequent words
// ("Ġthe") are single tokens and never get here; this saves re-merging repeated longer words.
struct WordCache {
  StringIndex index{4096};
  std::vector<int32_t> ids;
  std::vector<std::pair<uint32_t, uint32_t>> spans;  // (offset into ids, count)
};

struct Tokenizer::Impl {
  TokenizerParts parts;
  Bpe bpe;
  StringIndex index;                 // token text -> id
  std::vector<std::string> bytes;    // id -> what decode writes
  std::vector<uint8_t> special;      // id -> 1 if an added token
  std::unique_ptr<hf::Pipeline> hf;  // set when parts.pipeline is

  void encode_piece(std::string_view piece, WordCache* cache, std::vector<int32_t>& out) const;
  void encode_chars(std::string_view text, std::vector<int32_t>& out) const;
  void encode_serial(std::string_view text, std::vector<int32_t>& out) const;
  void encode_ordinary(std::string_view text, std::vector<int32_t>& out) const;
  std::vector<int32_t> allowed_specials(const EncodeOptions& options) const;
  void encode_with_specials(std::string_view text, std::span<const int32_t> specials,
                            std::vector<int32_t>& out) const;
};

Tokenizer::Tokenizer(TokenizerParts parts) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.parts = std::move(parts);
  const auto n = static_cast<int32_t>(m.parts.tokens.size());
  LLMKIT_CHECK(n > 0, "tokenizer: the vocabulary is empty");
  m.special.assign(n, 0);
  for (int32_t id : m.parts.special_ids) {
    LLMKIT_CHECK(id >= 0 && id < n, "tokenizer: special token id ", id, " is out of range");
    m.special[id] = 1;
  }
  m.index = StringIndex(n);
  if (!m.parts.pipeline.empty()) {
    for (int32_t id = 0; id < n; ++id) m.index.insert(m.parts.tokens[id], id);
    nlohmann::json config;
    try {
      config = nlohmann::json::parse(m.parts.pipeline);
    } catch (const nlohmann::json::exception& e) {
      fail("tokenizer: the pipeline is not valid JSON (", e.what(), ")");
    }
    try {
      m.hf = std::make_unique<hf::Pipeline>(config, "tokenizer", m.parts.tokens, m.index,
                                            m.parts.merges, m.parts.scores);
    } catch (const nlohmann::json::exception& e) {  // a field of the wrong JSON type
      fail("tokenizer: a pipeline field has the wrong type (", e.what(), ")");
    }
    return;
  }
  LLMKIT_CHECK(m.parts.model == Model::kBpe || m.parts.model == Model::kChar,
               "tokenizer: WordPiece and Unigram models need a pipeline");
  m.bytes.resize(n);
  std::vector<std::string> bpe_bytes(m.parts.model == Model::kBpe ? n : 0);
  for (int32_t id = 0; id < n; ++id) {
    const std::string& t = m.parts.tokens[id];
    const int32_t dup = m.index.find(t);
    if (dup >= 0) fail("tokenizer: ids ", dup, " and ", id, " are the same token \"", t, "\"");
    m.index.insert(t, id);
    if (m.special[id] || m.parts.model == Model::kChar) {
      m.bytes[id] = t;
    } else if (!from_byte_level(t, m.bytes[id])) {
      fail("tokenizer: token ", id, " (\"", t, "\") is not byte-level text");
    } else {
      bpe_bytes[id] = m.bytes[id];
    }
  }
  if (m.parts.model == Model::kBpe) {
    std::vector<Merge> merges;
    merges.reserve(m.parts.merges.size());
    for (const auto& [a, b] : m.parts.merges) {
      LLMKIT_CHECK(a >= 0 && a < n && b >= 0 && b < n, "tokenizer: a merge uses an unknown id");
      const int32_t merged = m.index.find(m.parts.tokens[a] + m.parts.tokens[b]);
      LLMKIT_CHECK(merged >= 0, "tokenizer: merge \"", m.parts.tokens[a], " ", m.parts.tokens[b],
                   "\" makes a token that is not in the vocabulary");
      merges.push_back({a, b, merged});
    }
    m.bpe = Bpe(std::move(bpe_bytes), std::move(merges));
  }
}

Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

void Tokenizer::Impl::encode_piece(std::string_view piece, WordCache* cache,
                                   std::vector<int32_t>& out) const {
  if (piece.size() < 2) {
    bpe.encode_word(piece, out);
    return;
  }
  const uint64_t h = hash_bytes(piece);
  const int32_t whole = bpe.whole_id(piece, h);
  if (whole >= 0) {
    out.push_back(whole);
    return;
  }
  if (cache == nullptr) {
    bpe.merge_word(piece, out);
    return;
  }
  const int32_t hit = cache->index.find(piece, h);
  if (hit >= 0) {
    const auto [offset, count] = cache->spans[hit];
    out.insert(out.end(), cache->ids.begin() + offset, cache->ids.begin() + offset + count);
    return;
  }
  const size_t before = out.size();
  bpe.merge_word(piece, out);
  const size_t count = out.size() - before;
  if (count < 2) return;
  if (cache->index.arena_bytes() > kCacheMaxBytes) {
    cache->index.clear();
    cache->ids.clear();
    cache->spans.clear();
  }
  cache->index.insert(piece, h, static_cast<int32_t>(cache->spans.size()));
  cache->spans.emplace_back(static_cast<uint32_t>(cache->ids.size()), static_cast<uint32_t>(count));
  cache->ids.insert(cache->ids.end(), out.begin() + before, out.end());
}

void Tokenizer::Impl::encode_chars(std::string_view text, std::vector<int32_t>& out) const {
  size_t i = 0;
  while (i < text.size()) {
    int len = 0;
    utf8_decode(text, i, len);
    int32_t id = index.find(text.substr(i, len));
    if (id < 0 || special[id]) id = parts.unk_id;
    if (id < 0) {
      fail("tokenizer: the character at byte ", i, " is not in the vocabulary and there is no ",
           "[UNK] token");
    }
    out.push_back(id);
    i += len;
  }
}

void Tokenizer::Impl::encode_serial(std::string_view text, std::vector<int32_t>& out) const {
  if (parts.model == Model::kChar) {
    encode_chars(text, out);
    return;
  }
  WordCache cache;
  WordCache* c = text.size() >= kCacheMinText ? &cache : nullptr;
  gpt2_split(text, [&](std::string_view piece) { encode_piece(piece, c, out); });
}

// Big texts: cut at safe points (see gpt2_safe_cut), encode the parts on all threads, join.
void Tokenizer::Impl::encode_ordinary(std::string_view text, std::vector<int32_t>& out) const {
  const int nt = num_threads();
  if (text.size() < kParallelMinText || nt <= 1) {
    encode_serial(text, out);
    return;
  }
  const size_t n_parts = static_cast<size_t>(nt) * 4;
  std::vector<size_t> cuts{0};
  for (size_t k = 1; k < n_parts; ++k) {
    const size_t c = gpt2_safe_cut(text, std::max(cuts.back() + 1, text.size() * k / n_parts));
    if (c == std::string_view::npos) break;
    cuts.push_back(c);
  }
  cuts.push_back(text.size());
  std::vector<std::vector<int32_t>> pieces(cuts.size() - 1);
  parallel_for(static_cast<int64_t>(pieces.size()), 1, [&](int64_t b, int64_t e) {
    for (int64_t k = b; k < e; ++k)
      encode_serial(text.substr(cuts[k], cuts[k + 1] - cuts[k]), pieces[k]);
  });
  for (const auto& p : pieces) out.insert(out.end(), p.begin(), p.end());
}

std::vector<int32_t> Tokenizer::Impl::allowed_specials(const EncodeOptions& options) const {
  std::vector<int32_t> ids;
  if (options.allow_special) {
    ids = parts.special_ids;
  } else {
    for (const std::string& s : options.allowed_special) {
      const int32_t id = index.find(s);
      if (id < 0 || !special[id]) fail("tokenizer: \"", s, "\" is not a special token");
      ids.push_back(id);
    }
  }
  std::erase_if(ids, [&](int32_t id) { return parts.tokens[id].empty(); });
  return ids;
}

// Splits text at the allowed special tokens (earliest match, longest at equal positions) and
// encodes the ordinary text between them.
void Tokenizer::Impl::encode_with_specials(std::string_view text, std::span<const int32_t> specials,
                                           std::vector<int32_t>& out) const {
  std::vector<size_t> next(specials.size(), 0);  // next occurrence of each, npos if none
  for (size_t k = 0; k < specials.size(); ++k) next[k] = text.find(parts.tokens[specials[k]]);
  size_t pos = 0;
  while (true) {
    size_t best = std::string_view::npos, best_len = 0;
    int32_t best_id = -1;
    for (size_t k = 0; k < specials.size(); ++k) {
      const std::string& s = parts.tokens[specials[k]];
      if (next[k] != std::string_view::npos && next[k] < pos) next[k] = text.find(s, pos);
      if (next[k] < best ||
          (next[k] == best && next[k] != std::string_view::npos && s.size() > best_len)) {
        best = next[k], best_len = s.size(), best_id = specials[k];
      }
    }
    if (best == std::string_view::npos) break;
    encode_ordinary(text.substr(pos, best - pos), out);
    out.push_back(best_id);
    pos = best + best_len;
  }
  encode_ordinary(text.substr(pos), out);
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, const EncodeOptions& options) const {
  std::string normalized;
  if (impl_->parts.hangul_to_jamo) {
    normalized = decompose_hangul(text);
    text = normalized;
  }
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 16);
  const std::vector<int32_t> specials = impl_->allowed_specials(options);
  if (impl_->hf) {
    std::vector<uint8_t> allowed(impl_->parts.tokens.size(), 0);
    for (int32_t id : specials) allowed[id] = 1;
    impl_->hf->encode(text, allowed, options.add_special_tokens, out);
  } else if (specials.empty())
    impl_->encode_ordinary(text, out);
  else
    impl_->encode_with_specials(text, specials, out);
  return out;
}

std::vector<std::vector<int32_t>> Tokenizer::encode_batch(std::span<const std::string> texts,
                                                          const EncodeOptions& options) const {
  std::vector<std::vector<int32_t>> out(texts.size());
  impl_->allowed_specials(options);  // report a bad option once, on this thread
  parallel_for(static_cast<int64_t>(texts.size()), 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) out[i] = encode(texts[i], options);
  });
  return out;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special) const {
  const Impl& m = *impl_;
  if (m.hf) {
    std::vector<std::string> tokens;
    for (int32_t id : ids) {
      if (id < 0 || id >= vocab_size())
        fail("decode: id ", id, " is out of range (vocabulary size ", vocab_size(), ")");
      if (!(skip_special && m.special[id])) tokens.push_back(m.parts.tokens[id]);
    }
    return m.hf->decode(tokens);
  }
  std::string bytes;
  for (int32_t id : ids) {
    if (id < 0 || id >= vocab_size())
      fail("decode: id ", id, " is out of range (vocabulary size ", vocab_size(), ")");
    if (skip_special && m.special[id]) continue;
    bytes += m.bytes[id];
  }
  if (m.parts.hangul_to_jamo) bytes = compose_hangul(bytes);
  return utf8_repair(bytes);
}

int32_t Tokenizer::vocab_size() const {
  return static_cast<int32_t>(impl_->parts.tokens.size());
}

std::optional<int32_t> Tokenizer::find_token(std::string_view token) const {
  const int32_t id = impl_->index.find(token);
  if (id < 0) return std::nullopt;
  return id;
}

int32_t Tokenizer::token_to_id(std::string_view token) const {
  const int32_t id = impl_->index.find(token);
  if (id < 0) fail("tokenizer: no token \"", token, "\" in the vocabulary");
  return id;
}

const std::string& Tokenizer::id_to_token(int32_t id) const {
  if (id < 0 || id >= vocab_size())
    fail("tokenizer: id ", id, " is out of range (vocabulary size ", vocab_size(), ")");
  return impl_->parts.tokens[id];
}

bool Tokenizer::is_special(int32_t id) const {
  return id >= 0 && id < vocab_size() && impl_->special[id];
}

std::vector<std::string> Tokenizer::special_tokens() const {
  std::vector<std::string> out;
  for (int32_t id = 0; id < vocab_size(); ++id)
    if (impl_->special[id]) out.push_back(impl_->parts.tokens[id]);
  return out;
}

const TokenizerParts& Tokenizer::parts() const {
  return impl_->parts;
}
Model Tokenizer::model() const {
  return impl_->parts.model;
}

}  // namespace llmkit::tokenizer
