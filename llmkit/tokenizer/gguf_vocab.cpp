// GgufVocab -> the tokenizer.json that describes the same tokenizer, then Tokenizer::from_json.
// The pre-tokenizer for each llama.cpp `pre` name is the one llama.cpp's llama-vocab.cpp uses,
// written as Hugging Face components (its regex lists become Split + ByteLevel without regex;
// a lone \p{N} becomes Digits(individual_digits)). SentencePiece ("llama") vocabularies get
// Llama 2's tokenizer.json pipeline with merges derived from the scores.
#include "llmkit/tokenizer/gguf_vocab.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "llmkit/core/error.h"
#include "llmkit/tokenizer/tokenizer.h"
#include "llmkit/tokenizer/unicode.h"

namespace llmkit::tokenizer {

using json = nlohmann::ordered_json;

namespace {

const char* const kLlama3Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char* const kQwen2Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char* const kBloomRegex = R"( ?[^(\s|.,!?…。，、।۔،)]+)";

json byte_level(bool use_regex) {
  return {{"type", "ByteLevel"},
          {"add_prefix_space", false},
          {"trim_offsets", true},
          {"use_regex", use_regex}};
}

json split_then_bytes(const char* regex) {
  return {{"type", "Sequence"},
          {"pretokenizers",
           {{{"type", "Split"},
             {"pattern", {{"Regex", regex}}},
             {"behavior", "Isolated"},
             {"invert", false}},
            byte_level(false)}}};
}

// llama.cpp's pre-tokenizer for `pre`; ignore_merges is set for the Llama 3 family, whose
// tokenizer (like its tokenizer.json) takes a pre-token that is in the vocabulary whole.
json gpt2_pre_tokenizer(const std::string& pre, bool& ignore_merges) {
  static const char* const kGpt2[] = {
      "default", "gpt-2",      "gpt2",       "phi-2",      "mpt",          "olmo",       "jina-es",
      "jina-de", "jina-v1-en", "jina-v2-es", "jina-v2-de", "jina-v2-code", "roberta-bpe"};
  static const char* const kDigitsThenGpt2[] = {"smollm",    "starcoder", "refact",    "command-r",
                                                "codeshell", "exaone",    "minerva-7b"};
  static const char* const kLlama3[] = {"llama-bpe", "llama3", "llama-v3",
                                        "falcon3",   "dbrx",   "smaug-bpe"};
  static const char* const kQwen2[] = {"qwen2", "stablelm2", "deepseek-r1-qwen"};
  static const char* const kBloom[] = {"bloom", "poro-chat", "gpt3-finnish"};
  auto in = [&](const auto& list) {
    return std::find(std::begin(list), std::end(list), pre) != std::end(list);
  };
  if (in(kGpt2)) return byte_level(true);
  if (in(kDigitsThenGpt2))
    return {
        {"type", "Sequence"},
        {"pretokenizers", {{{"type", "Digits"}, {"individual_digits", true}}, byte_level(true)}}};
  ignore_merges = in(kLlama3);
  if (ignore_merges) return split_then_bytes(kLlama3Regex);
  if (in(kQwen2)) return split_then_bytes(kQwen2Regex);
  if (in(kBloom)) return split_then_bytes(kBloomRegex);
  fail("gguf: tokenizer.ggml.pre \"", pre, "\" is not supported (known: default, gpt-2, phi-2, ",
       "mpt, olmo, jina-*, smollm, starcoder, refact, command-r, codeshell, exaone, minerva-7b, ",
       "llama-bpe, llama3, falcon3, dbrx, smaug-bpe, qwen2, stablelm2, deepseek-r1-qwen, bloom, ",
       "poro-chat, gpt3-finnish)");
}

int32_t type_of(const GgufVocab& v, size_t id) {
  return id < v.token_types.size() ? v.token_types[id] : kGgufTokenNormal;
}

json added_tokens(const GgufVocab& v) {
  json out = json::array();
  for (size_t id = 0; id < v.tokens.size(); ++id) {
    const int32_t t = type_of(v, id);
    // unknown and control tokens are special, as transformers' converters add them
    const bool special = t == kGgufTokenControl || t == kGgufTokenUnknown;
    if (!special && t != kGgufTokenUserDefined) continue;
    if (v.tokens[id].empty()) continue;
    out.push_back({{"id", id},
                   {"content", v.tokens[id]},
                   {"single_word", false},
                   {"lstrip", false},
                   {"rstrip", false},
                   {"normalized", false},
                   {"special", special}});
  }
  return out;
}

json check_id(const GgufVocab& v, int32_t id, const char* what) {
  if (id < 0 || id >= static_cast<int32_t>(v.tokens.size()))
    fail("gguf: tokenizer.ggml.", what, "_token_id ", id, " is outside the vocabulary");
  return v.tokens[id];
}

// [bos] A [eos] as the GGUF flags ask; null when neither is added.
json post_processor(const GgufVocab& v) {
  if (!v.add_bos && !v.add_eos) return nullptr;
  json single = json::array(), specials = json::object();
  auto special = [&](int32_t id, const char* what) {
    const std::string name = check_id(v, id, what);
    single.push_back({{"SpecialToken", {{"id", name}, {"type_id", 0}}}});
    specials[name] = {{"id", name}, {"ids", {id}}, {"tokens", {name}}};
  };
  if (v.add_bos) special(v.bos, "bos");
  single.push_back({{"Sequence", {{"id", "A"}, {"type_id", 0}}}});
  if (v.add_eos) special(v.eos, "eos");
  return {{"type", "TemplateProcessing"},
          {"single", single},
          {"pair", single},
          {"special_tokens", specials}};
}

json vocab_object(const GgufVocab& v) {
  json vocab = json::object();
  auto& entries = vocab.get_ref<json::object_t&>();
  for (size_t id = 0; id < v.tokens.size(); ++id) entries.emplace_back(v.tokens[id], id);
  return vocab;
}

json gpt2_json(const GgufVocab& v) {
  json merges = json::array();
  for (const std::string& m : v.merges) merges.push_back(m);
  bool ignore_merges = false;
  json pre_tokenizer = gpt2_pre_tokenizer(v.pre, ignore_merges);
  return {{"version", "1.0"},
          {"truncation", nullptr},
          {"padding", nullptr},
          {"added_tokens", added_tokens(v)},
          {"normalizer", nullptr},
          {"pre_tokenizer", pre_tokenizer},
          {"post_processor", post_processor(v)},
          {"decoder", byte_level(true)},
          {"model",
           {{"type", "BPE"},
            {"dropout", nullptr},
            {"unk_token", nullptr},
            {"continuing_subword_prefix", nullptr},
            {"end_of_word_suffix", nullptr},
            {"fuse_unk", false},
            {"byte_fallback", false},
            {"ignore_merges", ignore_merges},
            {"vocab", vocab_object(v)},
            {"merges", merges}}}};
}

// transformers' SentencePieceExtractor: every split of a piece into two vocabulary pieces is a
// merge, ranked by the piece's score (higher first; ties by the halves' ids).
json spm_merges(const GgufVocab& v) {
  std::unordered_map<std::string_view, int32_t> index;
  for (size_t id = 0; id < v.tokens.size(); ++id)
    index.emplace(v.tokens[id], static_cast<int32_t>(id));
  struct M {
    int32_t l, r;
    float score;
  };
  std::vector<M> merges;
  for (size_t id = 0; id < v.tokens.size(); ++id) {
    const std::string& t = v.tokens[id];
    std::vector<M> local;
    size_t i = 0;
    int len = 0;
    utf8_decode(t, 0, len);
    for (i = len; i < t.size(); i += len) {
      auto l = index.find(std::string_view(t).substr(0, i));
      auto r = index.find(std::string_view(t).substr(i));
      if (l != index.end() && r != index.end())
        local.push_back({l->second, r->second, v.scores[id]});
      utf8_decode(t, i, len);
    }
    std::sort(local.begin(), local.end(),
              [](const M& a, const M& b) { return std::pair(a.l, a.r) < std::pair(b.l, b.r); });
    merges.insert(merges.end(), local.begin(), local.end());
  }
  std::stable_sort(merges.begin(), merges.end(),
                   [](const M& a, const M& b) { return a.score > b.score; });
  json out = json::array();
  for (const M& m : merges) out.push_back({v.tokens[m.l], v.tokens[m.r]});
  return out;
}

json llama_json(const GgufVocab& v) {
  if (v.scores.size() != v.tokens.size())
    fail("gguf: tokenizer.ggml.scores has ", v.scores.size(), " entries for ", v.tokens.size(),
         " tokens");
  const std::string space = "\xE2\x96\x81";
  json normalizers = json::array();
  if (v.add_space_prefix) normalizers.push_back({{"type", "Prepend"}, {"prepend", space}});
  normalizers.push_back({{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", space}});
  const json decoder = {{"type", "Sequence"},
                        {"decoders",
                         {{{"type", "Replace"}, {"pattern", {{"String", space}}}, {"content", " "}},
                          {{"type", "ByteFallback"}},
                          {{"type", "Fuse"}},
                          {{"type", "Strip"},
                           {"content", " "},
                           {"start", v.add_space_prefix ? 1 : 0},
                           {"stop", 0}}}}};
  return {{"version", "1.0"},
          {"truncation", nullptr},
          {"padding", nullptr},
          {"added_tokens", added_tokens(v)},
          {"normalizer", {{"type", "Sequence"}, {"normalizers", normalizers}}},
          {"pre_tokenizer", nullptr},
          {"post_processor", post_processor(v)},
          {"decoder", decoder},
          {"model",
           {{"type", "BPE"},
            {"dropout", nullptr},
            {"unk_token", v.unk >= 0 ? check_id(v, v.unk, "unknown") : json()},
            {"continuing_subword_prefix", nullptr},
            {"end_of_word_suffix", nullptr},
            {"fuse_unk", true},
            {"byte_fallback", true},
            {"ignore_merges", false},
            {"vocab", vocab_object(v)},
            {"merges", spm_merges(v)}}}};
}

// llama.cpp's converter stores BERT's WordPiece vocabulary with a "phantom space": word-initial
// pieces get "▁", "##" continuations lose their prefix, "[...]" tokens stay. Undone here.
std::string wordpiece_token(const std::string& t) {
  const std::string space = "\xE2\x96\x81";
  if (t.size() >= 2 && t.front() == '[' && t.back() == ']') return t;
  if (t.compare(0, space.size(), space) == 0) return t.substr(space.size());
  return "##" + t;
}

json bert_json(const GgufVocab& given) {
  GgufVocab v = given;
  for (std::string& t : v.tokens) t = wordpiece_token(t);
  return {{"version", "1.0"},
          {"truncation", nullptr},
          {"padding", nullptr},
          {"added_tokens", added_tokens(v)},
          {"normalizer",
           {{"type", "BertNormalizer"},
            {"clean_text", true},
            {"handle_chinese_chars", true},
            {"strip_accents", nullptr},
            {"lowercase", true}}},
          {"pre_tokenizer", {{"type", "BertPreTokenizer"}}},
          {"post_processor", post_processor(v)},
          {"decoder", {{"type", "WordPiece"}, {"prefix", "##"}, {"cleanup", true}}},
          {"model",
           {{"type", "WordPiece"},
            {"unk_token", v.unk >= 0 ? check_id(v, v.unk, "unknown") : json("[UNK]")},
            {"continuing_subword_prefix", "##"},
            {"max_input_chars_per_word", 100},
            {"vocab", vocab_object(v)}}}};
}

}  // namespace

Tokenizer Tokenizer::from_gguf_vocab(const GgufVocab& v) {
  if (v.tokens.empty()) fail("gguf: tokenizer.ggml.tokens is empty");
  if (!v.token_types.empty() && v.token_types.size() != v.tokens.size())
    fail("gguf: tokenizer.ggml.token_type has ", v.token_types.size(), " entries for ",
         v.tokens.size(), " tokens");
  json j;
  if (v.model == "gpt2")
    j = gpt2_json(v);
  else if (v.model == "llama")
    j = llama_json(v);
  else if (v.model == "bert")
    j = bert_json(v);
  else
    fail("gguf: tokenizer.ggml.model \"", v.model, "\" is not supported (gpt2, llama, bert)");
  return from_json(j.dump(-1, ' ', false, json::error_handler_t::replace),
                   "gguf vocabulary (" + v.model + ", pre \"" + v.pre + "\")");
}

}  // namespace llmkit::tokenizer
