// Parallel-corpus files (pairs.h).
#include "llmkit/data/pairs.h"

#include <fstream>

#include "llmkit/core/error.h"

namespace llmkit::data {

std::string unescape_tsv(std::string_view field, std::string* error) {
  std::string out;
  out.reserve(field.size());
  for (size_t i = 0; i < field.size(); ++i) {
    if (field[i] != '\\') {
      out.push_back(field[i]);
      continue;
    }
    const char c = i + 1 < field.size() ? field[i + 1] : '\0';
    if (c == 't')
      out.push_back('\t');
    else if (c == 'n')
      out.push_back('\n');
    else if (c == '\\')
      out.push_back('\\');
    else if (c == 'r')
      out.push_back('\r');
    else {
      if (error) *error = "unknown escape '\\" + std::string(1, c) + "'";
      out.push_back('\\');  // keep it literally
      continue;
    }
    ++i;
  }
  return out;
}

std::string escape_tsv(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '\t')
      out += "\\t";
    else if (c == '\n')
      out += "\\n";
    else if (c == '\r')
      out += "\\r";
    else
      out.push_back(c);
  }
  return out;
}

bool parse_pair_line(std::string_view line, TextPair& out, std::string* error) {
  const size_t tab = line.find('\t');
  if (tab == std::string_view::npos) {
    if (error) *error = "no tab between source and target";
    return false;
  }
  if (line.find('\t', tab + 1) != std::string_view::npos) {
    if (error) *error = "more than one tab (escape tabs inside a message as \\t)";
    return false;
  }
  std::string err;
  out.source = unescape_tsv(line.substr(0, tab), &err);
  out.target = unescape_tsv(line.substr(tab + 1), &err);
  if (out.source.empty() || out.target.empty()) err = "empty source or target";
  if (!err.empty()) {
    if (error) *error = err;
    return false;
  }
  return true;
}

std::vector<TextPair> read_pairs(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  LLMKIT_CHECK(in.good(), "cannot open pairs file '", path, "'");
  std::vector<TextPair> pairs;
  std::string line, err;
  for (int64_t n = 1; std::getline(in, line); ++n) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    TextPair p;
    LLMKIT_CHECK(parse_pair_line(line, p, &err), path, ":", n, ": ", err,
                 " (expected `source<TAB>target`)");
    pairs.push_back(std::move(p));
  }
  LLMKIT_CHECK(!pairs.empty(), "pairs file '", path, "' holds no pairs");
  return pairs;
}

bool is_held_out(const TextPair& pair, double fraction) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a 64
  for (unsigned char c : pair.source) {
    h ^= c;
    h *= 1099511628211ull;
  }
  // FNV's high bits barely change between sources that differ only at the end ("message 1",
  // "message 2"), so finish with splitmix64's mixer before mapping to [0, 1).
  h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ull;
  h = (h ^ (h >> 27)) * 0x94d049bb133111ebull;
  h ^= h >> 31;
  return static_cast<double>(h >> 11) * 0x1.0p-53 < fraction;
}

void split_pairs(std::span<const TextPair> pairs, double fraction, std::vector<TextPair>& train,
                 std::vector<TextPair>& held_out) {
  train.clear();
  held_out.clear();
  for (const TextPair& p : pairs) (is_held_out(p, fraction) ? held_out : train).push_back(p);
}

}  // namespace llmkit::data
