// The Hugging Face `tokenizers` pipeline as llmkit runs it (internal to llmkit/tokenizer):
//   added tokens split out -> normalizer -> pre-tokenizer -> model -> post-processor; decoder.
// Each component is built from its tokenizer.json object into a plain function (Sequence
// composes them), following the Rust crate's semantics step by step; a component type we do not
// implement is an llmkit::Error naming the type and the file, never a silent approximation.
// Not here: the GPT-2 legacy path (tokenizer.cpp keeps it) and file I/O (tokenizer_json.cpp).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "llmkit/tokenizer/hash_table.h"

namespace llmkit::tokenizer::hf {

using json = nlohmann::json;

// A stretch of text between the pipeline's stages. at_start: it begins at byte 0 of the input
// (Metaspace's prepend_scheme "first" looks at that).
struct Piece {
  std::string text;
  bool at_start = false;
};

using NormalizeFn = std::function<void(std::string&)>;
using PreTokenizeFn = std::function<void(std::vector<Piece>&)>;
using DecodeFn = std::function<void(std::vector<std::string>&)>;
using PostProcessFn = std::function<void(std::vector<int32_t>&)>;
// Encodes one pre-token, appending ids.
using ModelFn = std::function<void(std::string_view, std::vector<int32_t>&)>;

// The vocabulary a model or post-processor resolves names in.
struct Vocab {
  const std::vector<std::string>* tokens = nullptr;
  const StringIndex* index = nullptr;
  int32_t find(std::string_view t) const { return index->find(t); }
};

// null JSON -> an empty function (the stage is skipped). `file` names the file in errors.
NormalizeFn make_normalizer(const json& j, const std::string& file);
// byte_level is set when the pre-tokenizer ends with ByteLevel (its pieces are then raw bytes
// that the model sees as GPT-2's byte-level characters).
PreTokenizeFn make_pre_tokenizer(const json& j, const std::string& file, bool& byte_level);
DecodeFn make_decoder(const json& j, const std::string& file);
PostProcessFn make_post_processor(const json& j, const std::string& file, const Vocab& vocab);

// Models (bpe_model.cpp, wordpiece.cpp, unigram.cpp). `m` is tokenizer.json's "model" object.
ModelFn make_bpe(const json& m, const std::string& file, const Vocab& vocab,
                 const std::vector<std::pair<int32_t, int32_t>>& merges, bool byte_level);
ModelFn make_wordpiece(const json& m, const std::string& file, const Vocab& vocab);
ModelFn make_unigram(const json& m, const std::string& file, const Vocab& vocab,
                     const std::vector<double>& scores);

// Character helpers with Rust's `char` semantics (normalizer.cpp, from ICU's tables).
bool is_whitespace(int32_t cp);        // char::is_whitespace (White_Space)
bool is_numeric(int32_t cp);           // char::is_numeric (Nd, Nl, No)
bool is_alphanumeric(int32_t cp);      // char::is_alphanumeric
bool is_bert_punctuation(int32_t cp);  // ASCII punctuation or any P* category

// How a Split keeps its delimiters (tokenizers' SplitDelimiterBehavior).
enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };
SplitBehavior parse_behavior(const json& j, const std::string& file);
// Splits every piece at the byte ranges `find` reports (matches, in order, not overlapping),
// the way PreTokenizedString::split with that behavior does; empty pieces are dropped.
using FindFn = std::function<std::vector<std::pair<size_t, size_t>>(std::string_view)>;
void split_pieces(std::vector<Piece>& pieces, const FindFn& find, SplitBehavior behavior,
                  bool invert = false);
// Matches of single characters for which pred(cp) holds.
FindFn find_chars(std::function<bool(int32_t)> pred);

// A PCRE2 regex (UTF + UCP) compiled once; thread-safe. Throws llmkit::Error naming `where`.
class Regex {
 public:
  Regex(const std::string& pattern, const std::string& where);
  std::vector<std::pair<size_t, size_t>> find_all(std::string_view text) const;
  std::string replace_all(std::string_view text, std::string_view with) const;

 private:
  std::shared_ptr<void> code_;
};

// Every occurrence of `needle` (non-overlapping, left to right).
std::vector<std::pair<size_t, size_t>> find_literal(std::string_view text, std::string_view needle);

// One entry of tokenizer.json's added_tokens.
struct AddedToken {
  int32_t id = -1;
  std::string content;
  bool special = true, lstrip = false, rstrip = false, normalized = false, single_word = false;
};

// The whole pipeline of one tokenizer.json (hf_pipeline.cpp). `config` holds the file's
// normalizer, pre_tokenizer, model (without vocab and merges), post_processor, decoder and
// added_tokens; tokens, merges and scores come from TokenizerParts. Immutable, thread-safe.
class Pipeline {
 public:
  Pipeline(const json& config, const std::string& file, const std::vector<std::string>& tokens,
           const StringIndex& index, const std::vector<std::pair<int32_t, int32_t>>& merges,
           const std::vector<double>& scores);
  // allowed[id] = 1 for the special tokens the caller lets match in the text (non-special added
  // tokens always match, as in Hugging Face).
  void encode(std::string_view text, const std::vector<uint8_t>& allowed, bool add_special_tokens,
              std::vector<int32_t>& out) const;
  std::string decode(const std::vector<std::string>& tokens) const;
  const std::vector<AddedToken>& added() const { return added_; }

 private:
  void encode_segment(std::string_view text, bool at_start, const std::vector<uint8_t>& allowed,
                      std::vector<int32_t>& out) const;
  std::vector<AddedToken> added_;
  std::vector<std::string> normalized_content_;  // added_[k].content after the normalizer
  NormalizeFn normalize_;
  PreTokenizeFn pre_tokenize_;
  ModelFn model_;
  PostProcessFn post_process_;
  DecodeFn decode_;
  bool has_decoder_ = false;
};

}  // namespace llmkit::tokenizer::hf
