// Hugging Face tokenizer.json, read and written. Files that are GPT-2's byte-level BPE (ByteLevel
// pre-tokenizer without prefix space, ByteLevel or no decoder, special added tokens, an optional
// NFD normaliser read as our Hangul -> jamo step) and our own character model (WordLevel over
// single characters) take the built-in fast path; every other file keeps its pipeline as JSON
// (TokenizerParts::pipeline, run by hf_pipeline.h) and is written back as read. What the
// pipeline does not implement is refused with one line naming the component and the file.
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unordered_map>

#include "llmkit/core/error.h"
#include "llmkit/tokenizer/read_file.h"
#include "llmkit/tokenizer/tokenizer.h"

namespace llmkit::tokenizer {

using json = nlohmann::json;
using ordered_json = nlohmann::ordered_json;

namespace {

// The pre-tokenizer pattern our character model writes: one Unicode character (dot-all).
constexpr const char* kCharPattern = "(?m:.)";

const json& field(const json& obj, const char* key, const std::string& where,
                  const std::string& name) {
  auto it = obj.find(key);
  if (it == obj.end()) fail(name, ": ", where, key, " is missing");
  return *it;
}

bool is_type(const json& j, const char* type) {
  return j.is_object() && j.value("type", std::string{}) == type;
}

// Fills parts.tokens from model.vocab (token -> id), which must use the ids 0..N-1 densely
// once the added tokens are counted.
void read_vocab(const json& vocab, const std::string& name, TokenizerParts& parts) {
  if (!vocab.is_object()) fail(name, ": model.vocab must be an object of token -> id");
  for (const auto& [token, id_json] : vocab.items()) {
    if (!id_json.is_number_integer()) fail(name, ": model.vocab[\"", token, "\"] is not an id");
    const auto id = id_json.get<int64_t>();
    if (id < 0 || id > 10'000'000)
      fail(name, ": model.vocab[\"", token, "\"] = ", id, " is out of range");
    if (parts.tokens.size() <= static_cast<size_t>(id)) parts.tokens.resize(id + 1);
    parts.tokens[id] = token;
  }
}

void read_added_tokens(const json& root, const std::string& name, TokenizerParts& parts) {
  auto it = root.find("added_tokens");
  if (it == root.end() || it->is_null()) return;
  if (!it->is_array()) fail(name, ": added_tokens must be an array");
  for (const json& t : *it) {
    if (!t.is_object() || !t.contains("id") || !t.contains("content") ||
        !t["id"].is_number_integer() || !t["content"].is_string())
      fail(name, ": added_tokens: each entry needs an integer \"id\" and a string \"content\"");
    const auto id = t["id"].get<int64_t>();
    if (id < 0 || id > 10'000'000) fail(name, ": added_tokens: id ", id, " is out of range");
    if (parts.tokens.size() <= static_cast<size_t>(id)) parts.tokens.resize(id + 1);
    const std::string content = t["content"].get<std::string>();
    if (!parts.tokens[id].empty() && parts.tokens[id] != content)
      fail(name, ": added token \"", content, "\" reuses id ", id, " of \"", parts.tokens[id],
           "\"");
    parts.tokens[id] = content;
    parts.special_ids.push_back(static_cast<int32_t>(id));
  }
}

void read_merges(const json& merges, const std::string& name, TokenizerParts& parts) {
  if (!merges.is_array()) fail(name, ": model.merges must be an array");
  std::unordered_map<std::string_view, int32_t> index;
  for (size_t id = 0; id < parts.tokens.size(); ++id)
    index.emplace(parts.tokens[id], static_cast<int32_t>(id));
  size_t rank = 0;
  for (const json& m : merges) {
    std::string a, b;
    if (m.is_string()) {
      const std::string s = m.get<std::string>();
      const size_t sp = s.find(' ');
      if (sp == std::string::npos || sp == 0 || sp + 1 == s.size() ||
          s.find(' ', sp + 1) != std::string::npos)
        fail(name, ": model.merges[", rank, "] = \"", s,
             "\" is not two tokens separated by a space");
      a = s.substr(0, sp), b = s.substr(sp + 1);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      a = m[0].get<std::string>(), b = m[1].get<std::string>();
    } else {
      fail(name, ": model.merges[", rank, "] is neither \"a b\" nor [\"a\", \"b\"]");
    }
    auto ia = index.find(a), ib = index.find(b);
    if (ia == index.end() || ib == index.end())
      fail(name, ": model.merges[", rank, "] uses \"", ia == index.end() ? a : b,
           "\", which is not in model.vocab");
    parts.merges.emplace_back(ia->second, ib->second);
    ++rank;
  }
}

void check_pipeline(const json& root, const std::string& name, Model model, TokenizerParts& parts) {
  const json normalizer = root.value("normalizer", json());
  if (is_type(normalizer, "NFD"))
    parts.hangul_to_jamo = true;
  else if (!normalizer.is_null())
    fail(name, ": normalizer ", normalizer.dump(), " is not supported (only null or NFD)");
  const json pre = root.value("pre_tokenizer", json());
  if (model == Model::kChar) {
    if (!is_type(pre, "Split")) fail(name, ": a WordLevel model needs our Split pre_tokenizer");
    return;
  }
  if (!is_type(pre, "ByteLevel"))
    fail(name, ": pre_tokenizer must be ByteLevel (got ", pre.dump(), ")");
  if (pre.value("add_prefix_space", false))
    fail(name, ": pre_tokenizer.add_prefix_space = true is not supported");
  if (!pre.value("use_regex", true))
    fail(name, ": pre_tokenizer.use_regex = false is not supported");
  const json& m = root["model"];
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (m.contains(key) && !m[key].is_null() && m[key] != "")
      fail(name, ": model.", key, " is not supported");
  }
  if (m.value("byte_fallback", false)) fail(name, ": model.byte_fallback is not supported");
}

// Whether the built-in GPT-2 byte-level BPE (or char model) reproduces this file exactly.
bool is_builtin(const json& root) {
  const json& m = root["model"];
  const std::string type = m.value("type", std::string("BPE"));
  if (type == "WordLevel") return true;
  if (type != "BPE") return false;
  const json normalizer = root.value("normalizer", json());
  if (!normalizer.is_null() && !is_type(normalizer, "NFD")) return false;
  const json pre = root.value("pre_tokenizer", json());
  if (!is_type(pre, "ByteLevel") || pre.value("add_prefix_space", false) ||
      !pre.value("use_regex", true))
    return false;
  for (const char* key : {"decoder", "post_processor"}) {
    const json c = root.value(key, json());
    if (!c.is_null() && !is_type(c, "ByteLevel")) return false;
  }
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix", "unk_token"}) {
    if (m.contains(key) && !m[key].is_null() && m[key] != "") return false;
  }
  if (m.value("byte_fallback", false) || m.value("ignore_merges", false)) return false;
  const json added = root.value("added_tokens", json::array());
  if (!added.is_array()) return true;  // read_added_tokens reports it
  for (const json& t : added) {
    if (!t.is_object() || !t.value("special", true) || t.value("lstrip", false) ||
        t.value("rstrip", false) || t.value("single_word", false))
      return false;
  }
  return true;
}

// Unigram's vocab: [[piece, score], ...] in id order.
void read_unigram_vocab(const json& vocab, const std::string& name, TokenizerParts& parts) {
  if (!vocab.is_array()) fail(name, ": model.vocab of a Unigram must be a list of [piece, score]");
  for (const json& e : vocab) {
    if (!e.is_array() || e.size() != 2 || !e[0].is_string() || !e[1].is_number())
      fail(name, ": model.vocab[", parts.tokens.size(), "] is not [piece, score]");
    parts.tokens.push_back(e[0].get<std::string>());
    parts.scores.push_back(e[1].get<double>());
  }
}

// A file the built-in path cannot run: keep its pipeline and let hf::Pipeline run it.
TokenizerParts read_pipeline(const json& root, const std::string& name) {
  const json& model = root["model"];
  const std::string type = model.value("type", std::string("BPE"));
  TokenizerParts parts;
  if (type == "BPE") {
    parts.model = Model::kBpe;
    read_vocab(field(model, "vocab", "model.", name), name, parts);
  } else if (type == "WordPiece") {
    parts.model = Model::kWordPiece;
    read_vocab(field(model, "vocab", "model.", name), name, parts);
  } else if (type == "Unigram") {
    parts.model = Model::kUnigram;
    read_unigram_vocab(field(model, "vocab", "model.", name), name, parts);
  } else {
    fail(name, ": model.type \"", type, "\" is not supported (BPE, WordPiece, Unigram, WordLevel)");
  }
  read_added_tokens(root, name, parts);
  for (size_t id = 0; id < parts.tokens.size(); ++id) {
    if (parts.tokens[id].empty() && parts.model != Model::kUnigram)
      fail(name, ": no token has id ", id);
  }
  if (parts.model == Model::kUnigram) parts.scores.resize(parts.tokens.size(), 0.0);
  parts.special_ids.clear();
  for (const json& t : root.value("added_tokens", json::array()))
    if (t.value("special", true)) parts.special_ids.push_back(t["id"].get<int32_t>());
  if (parts.model == Model::kBpe) read_merges(field(model, "merges", "model.", name), name, parts);
  json config;
  for (const char* key : {"normalizer", "pre_tokenizer", "post_processor", "decoder",
                          "added_tokens", "truncation", "padding"})
    config[key] = root.value(key, json());
  config["model"] = model;
  config["model"].erase("vocab");
  config["model"].erase("merges");
  parts.pipeline = config.dump();
  return parts;
}

ordered_json write_pipeline(const TokenizerParts& p) {
  const json config = json::parse(p.pipeline);
  ordered_json root;
  root["version"] = "1.0";
  for (const char* key : {"truncation", "padding", "added_tokens", "normalizer", "pre_tokenizer",
                          "post_processor", "decoder"})
    root[key] = config.value(key, json());
  ordered_json model = config["model"];
  if (p.model == Model::kUnigram) {
    ordered_json vocab = ordered_json::array();
    for (size_t id = 0; id < p.tokens.size(); ++id) vocab.push_back({p.tokens[id], p.scores[id]});
    model["vocab"] = std::move(vocab);
  } else {
    ordered_json vocab = ordered_json::object();
    auto& entries = vocab.get_ref<ordered_json::object_t&>();
    for (size_t id = 0; id < p.tokens.size(); ++id) entries.emplace_back(p.tokens[id], id);
    model["vocab"] = std::move(vocab);
  }
  if (p.model == Model::kBpe) {
    ordered_json merges = ordered_json::array();
    for (const auto& [a, b] : p.merges) merges.push_back({p.tokens[a], p.tokens[b]});
    model["merges"] = std::move(merges);
  }
  root["model"] = std::move(model);
  return root;
}

}  // namespace

Tokenizer Tokenizer::from_json(std::string_view text, const std::string& name) {
  json root;
  try {
    root = json::parse(text);
  } catch (const json::exception& e) {  // parse_error, or out_of_range for a number like 1e999
    std::string what = e.what();
    const size_t p = what.find("parse error");
    fail(name, ": not valid JSON (", p == std::string::npos ? what : what.substr(p), ")");
  }
  if (!root.is_object()) fail(name, ": expected a JSON object");
  const json& model = field(root, "model", "", name);
  // A string field of `model`, `fallback` when absent or null; any other type is an Error.
  auto model_string = [&](const char* key, const std::string& fallback) {
    const auto it = model.find(key);
    if (it == model.end() || it->is_null()) return fallback;
    if (!it->is_string()) fail(name, ": model.", key, " must be a string");
    return it->get<std::string>();
  };
  const std::string type = model.is_object() ? model_string("type", "BPE") : "";
  bool builtin = true;
  TokenizerParts pipeline_parts;
  try {
    builtin = !model.is_object() || is_builtin(root);
    if (!builtin) pipeline_parts = read_pipeline(root, name);
  } catch (const json::exception& e) {  // a field of the wrong JSON type
    fail(name, ": a field has the wrong JSON type (", e.what(), ")");
  }
  if (!builtin) {
    TokenizerParts parts = std::move(pipeline_parts);
    try {
      return Tokenizer(std::move(parts));
    } catch (const Error& e) {
      fail(name, ": ", e.what());
    }
  }
  TokenizerParts parts;
  if (type == "BPE")
    parts.model = Model::kBpe;
  else if (type == "WordLevel")
    parts.model = Model::kChar;
  else
    fail(name, ": model.type \"", type, "\" is not supported (BPE or WordLevel)");
  read_vocab(field(model, "vocab", "model.", name), name, parts);
  read_added_tokens(root, name, parts);
  for (size_t id = 0; id < parts.tokens.size(); ++id) {
    if (parts.tokens[id].empty()) fail(name, ": no token has id ", id);
  }
  check_pipeline(root, name, parts.model, parts);
  if (parts.model == Model::kBpe) {
    read_merges(field(model, "merges", "model.", name), name, parts);
  } else {
    const std::string unk = model_string("unk_token", "");
    for (size_t id = 0; id < parts.tokens.size(); ++id)
      if (!unk.empty() && parts.tokens[id] == unk) parts.unk_id = static_cast<int32_t>(id);
  }
  try {
    return Tokenizer(std::move(parts));
  } catch (const Error& e) {
    fail(name, ": ", e.what());
  }
}

std::string Tokenizer::to_json() const {
  const TokenizerParts& p = parts();
  if (!p.pipeline.empty())
    return write_pipeline(p).dump(2, ' ', false, json::error_handler_t::replace);
  ordered_json root;
  root["version"] = "1.0";
  root["truncation"] = nullptr;
  root["padding"] = nullptr;
  ordered_json added = ordered_json::array();
  for (int32_t id : p.special_ids) {
    added.push_back({{"id", id},
                     {"content", p.tokens[id]},
                     {"single_word", false},
                     {"lstrip", false},
                     {"rstrip", false},
                     {"normalized", false},
                     {"special", true}});
  }
  root["added_tokens"] = added;
  root["normalizer"] = p.hangul_to_jamo ? ordered_json{{"type", "NFD"}} : ordered_json();
  // ordered_json's operator[] searches linearly; the ids are distinct, so append directly.
  ordered_json vocab = ordered_json::object();
  auto& entries = vocab.get_ref<ordered_json::object_t&>();
  entries.reserve(p.tokens.size());
  for (size_t id = 0; id < p.tokens.size(); ++id) entries.emplace_back(p.tokens[id], id);
  if (p.model == Model::kBpe) {
    const ordered_json byte_level = {{"type", "ByteLevel"},
                                     {"add_prefix_space", false},
                                     {"trim_offsets", true},
                                     {"use_regex", true}};
    root["pre_tokenizer"] = byte_level;
    root["post_processor"] = byte_level;
    root["decoder"] = byte_level;
    ordered_json merges = ordered_json::array();
    for (const auto& [a, b] : p.merges) merges.push_back(p.tokens[a] + " " + p.tokens[b]);
    root["model"] = {{"type", "BPE"},
                     {"dropout", nullptr},
                     {"unk_token", nullptr},
                     {"continuing_subword_prefix", ""},
                     {"end_of_word_suffix", ""},
                     {"fuse_unk", false},
                     {"byte_fallback", false},
                     {"ignore_merges", false},
                     {"vocab", vocab},
                     {"merges", merges}};
  } else {
    root["pre_tokenizer"] = {{"type", "Split"},
                             {"pattern", {{"Regex", kCharPattern}}},
                             {"behavior", "Isolated"},
                             {"invert", false}};
    root["post_processor"] = nullptr;
    root["decoder"] = {{"type", "Fuse"}};
    root["model"] = {{"type", "WordLevel"},
                     {"vocab", vocab},
                     {"unk_token", p.unk_id >= 0 ? p.tokens[p.unk_id] : ""}};
  }
  return root.dump(2, ' ', false, json::error_handler_t::replace);
}

void Tokenizer::save(const std::string& path) const {
  const std::string text = to_json();
  std::ofstream out(path, std::ios::binary);
  if (!out) fail(path, ": cannot open the file for writing");
  out << text << '\n';
  if (!out) fail(path, ": write failed");
}

// tokenizer.json, or GPT-2's encoder.json (vocab.bpe beside it), or a directory holding either.
Tokenizer Tokenizer::load(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    const fs::path dir(path);
    if (fs::exists(dir / "tokenizer.json")) return load((dir / "tokenizer.json").string());
    if (fs::exists(dir / "encoder.json"))
      return load_gpt2((dir / "encoder.json").string(), (dir / "vocab.bpe").string());
    fail(path, ": the directory holds neither tokenizer.json nor encoder.json + vocab.bpe");
  }
  if (fs::path(path).filename() == "encoder.json")
    return load_gpt2(path, (fs::path(path).parent_path() / "vocab.bpe").string());
  if (fs::path(path).extension() == ".bpe")
    fail(path, ": a vocab.bpe needs its encoder.json; pass the encoder.json or their directory");
  return from_json(read_file(path), path);
}

}  // namespace llmkit::tokenizer
