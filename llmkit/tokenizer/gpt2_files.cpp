// GPT-2's own vocabulary files: encoder.json (byte-level token text -> id) and vocab.bpe (a
// "#version" line, then one merge "a b" per line, best first). <|endoftext|> becomes a special
// token. A merge list shorter than the vocabulary needs is reported as a truncated file: those
// tokens could never be produced, so encoding would silently differ from GPT-2's.
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "llmkit/core/error.h"
#include "llmkit/tokenizer/read_file.h"
#include "llmkit/tokenizer/tokenizer.h"
#include "llmkit/tokenizer/unicode.h"

namespace llmkit::tokenizer {

namespace {

TokenizerParts read_encoder_json(const std::string& path) {
  nlohmann::json root;
  try {
    root = nlohmann::json::parse(read_file(path));
  } catch (const nlohmann::json::parse_error& e) {
    const std::string what = e.what();
    const size_t p = what.find("parse error");
    fail(path, ": not valid JSON (", p == std::string::npos ? what : what.substr(p), ")");
  }
  if (!root.is_object() || root.empty()) fail(path, ": expected a JSON object of token -> id");
  TokenizerParts parts;
  for (const auto& [token, id_json] : root.items()) {
    if (!id_json.is_number_integer()) fail(path, ": the id of \"", token, "\" is not an integer");
    const auto id = id_json.get<int64_t>();
    if (id < 0 || id >= static_cast<int64_t>(root.size()))
      fail(path, ": id ", id, " of \"", token, "\" is outside 0..", root.size() - 1);
    if (parts.tokens.size() <= static_cast<size_t>(id)) parts.tokens.resize(id + 1);
    if (!parts.tokens[id].empty()) fail(path, ": id ", id, " is used twice");
    parts.tokens[id] = token;
  }
  for (size_t id = 0; id < parts.tokens.size(); ++id) {
    if (parts.tokens[id] == "<|endoftext|>") parts.special_ids.push_back(static_cast<int32_t>(id));
  }
  return parts;
}

void read_vocab_bpe(const std::string& path, TokenizerParts& parts) {
  const std::string text = read_file(path);
  if (text.empty()) fail(path, ": the file is empty");
  std::unordered_map<std::string_view, int32_t> index;
  for (size_t id = 0; id < parts.tokens.size(); ++id)
    index.emplace(parts.tokens[id], static_cast<int32_t>(id));
  size_t pos = 0, line_no = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || (line_no == 1 && line.starts_with("#version"))) continue;
    const size_t sp = line.find(' ');
    if (sp == 0 || sp == std::string_view::npos || sp + 1 == line.size() ||
        line.find(' ', sp + 1) != std::string_view::npos)
      fail(path, ": line ", line_no, ": expected two tokens separated by one space");
    auto a = index.find(line.substr(0, sp)), b = index.find(line.substr(sp + 1));
    if (a == index.end() || b == index.end())
      fail(path, ": line ", line_no, ": token \"", line.substr(a == index.end() ? 0 : sp + 1),
           "\" is not in the encoder.json");
    parts.merges.emplace_back(a->second, b->second);
  }
  // Every token of more than one character, except <|endoftext|>, must come from a merge.
  size_t n_multi = 0;
  for (const std::string& t : parts.tokens) {
    if (t.empty() || t == "<|endoftext|>") continue;
    int len = 0;
    utf8_decode(t, 0, len);
    n_multi += static_cast<size_t>(len) < t.size();
  }
  if (parts.merges.size() < n_multi)
    fail(path, ": only ", parts.merges.size(), " merges for ", n_multi,
         " merged tokens in the encoder.json; the file looks truncated");
}

}  // namespace

Tokenizer Tokenizer::load_gpt2(const std::string& encoder_json, const std::string& vocab_bpe) {
  TokenizerParts parts = read_encoder_json(encoder_json);
  read_vocab_bpe(vocab_bpe, parts);
  try {
    return Tokenizer(std::move(parts));
  } catch (const Error& e) {
    fail(encoder_json, " + ", vocab_bpe, ": ", e.what());
  }
}

}  // namespace llmkit::tokenizer
